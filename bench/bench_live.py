"""Live mode: does the pipeline keep up with a camera, and how long after a window's last frame is its label out?

A generated 640x480 video is played at its frame rate (`infer_behavior_lstm.py --live`, as a camera would
deliver it) through a real checkpoint (mobilenet_v3_small + LSTM, one epoch on data prepared at this imgsz,
as in bench_infer.py). Reported per run: frames kept and dropped, the latency of every window's label from the
capture of its last frame (median, 95th percentile, max, from <video>.live.csv), and the window's length in
seconds for comparison.

Usage:
    YOLO_OFFLINE=1 python bench/bench_live.py --yolo_imgsz 320 --crop_size 128 --num_frames 1800 --repeats 3
"""
import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import infer_behavior_lstm as infer  # noqa: E402
from bench.bench_infer import make_checkpoint  # noqa: E402
from utils.synthetic import make_long_video_dataset  # noqa: E402


def run_live(checkpoint: Path, video: Path, out: Path, args) -> dict:
    result = infer.main(infer.get_args_parser().parse_args([
        "--model_path", str(checkpoint), "--video_path", str(video), "--output_dir", str(out), "--device", "cpu",
        "--live", "--detector_backend", args.detector_backend, "--detect_every", str(args.detect_every)]))
    latency = pd.read_csv(out / f"{video.stem}.live.csv")["latency_s"].to_numpy()
    metadata = result["sheets"]["metadata"].set_index("key")["value"]
    return {"frames": result["frames"], "dropped": int(metadata["frames_dropped"]), "windows": len(latency),
            "latency_median_s": float(np.median(latency)), "latency_p95_s": float(np.percentile(latency, 95)),
            "latency_max_s": float(latency.max())}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yolo_weights", default=str(ROOT / "tests" / "fixtures" / "tiny_yolo_pose.pt"))
    parser.add_argument("--yolo_imgsz", type=int, default=320)
    parser.add_argument("--crop_size", type=int, default=128)
    parser.add_argument("--backbone", default="mobilenet_v3_small")
    parser.add_argument("--window_size", type=int, default=30)
    parser.add_argument("--window_stride", type=int, default=15)
    parser.add_argument("--num_frames", type=int, default=1800, help="frames of the played video (30 fps)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--detector_backend", default="auto")
    parser.add_argument("--detect_every", type=int, default=1)
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def main(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = make_long_video_dataset(work / "video", 1, args.num_frames, seed=17, truth=False)[0]
        checkpoint = make_checkpoint(work, args.yolo_imgsz, args.crop_size, args)
        runs = [run_live(checkpoint, video, work / f"out{r}", args) for r in range(args.repeats)]
    summary = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    summary["window_seconds"] = args.window_size / 30.0
    print(f"live at imgsz {args.yolo_imgsz}: {summary['frames']:.0f} frames kept, {summary['dropped']:.0f} dropped; "
          f"latency from a window's last frame to its label: median {summary['latency_median_s']:.3f} s, p95 "
          f"{summary['latency_p95_s']:.3f} s, max {summary['latency_max_s']:.3f} s (a window lasts "
          f"{summary['window_seconds']:.1f} s; medians of {len(runs)} runs)", flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps({"args": vars(args), "runs": runs, "median": summary}, indent=2))
    return {"runs": runs, "median": summary}


if __name__ == "__main__":
    main(get_args_parser().parse_args())
