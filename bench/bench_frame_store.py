"""Prepared data with each frame stored once (a crop store per video) against the previous layout (every window's
crops in its own npz): size per hour of video, preprocessing time, training epoch time.

Sizes: the same prepared windows in both layouts, in one run. The previous layout is written from the new one
exactly as the previous writer did (each window's npz with its `frames`, deflate level 1) and is still readable
(manifest schema_version 2), so training reads both in the same run, alternating, with the feature cache on and
off. Preprocessing time: this checkout's prepare_sequences_from_yolo.py against a checkout of the previous version
(--baseline), alternating, on the same videos. Figures are medians over --repeats.

Usage:
    git worktree add /tmp/bs_baseline <previous commit>
    YOLO_OFFLINE=1 python bench/bench_frame_store.py --work /tmp/fs --baseline /tmp/bs_baseline \\
        --output bench/results_frame_store.json
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from training.engine import train, training_config  # noqa: E402
from utils.data.crop_store import CropStoreReader  # noqa: E402
from utils.io import atomic_save_npz  # noqa: E402
from utils.synthetic import make_long_video_dataset  # noqa: E402

FRAMES_PER_HOUR = 30 * 3600


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for videos, prepared data and runs")
    parser.add_argument("--baseline", default=None, help="a checkout of the previous version, whose preprocessing "
                        "is timed against this one's (omitted: preprocessing is timed for this version only)")
    parser.add_argument("--yolo_weights", default=str(ROOT / "tests" / "fixtures" / "tiny_yolo_pose.pt"))
    parser.add_argument("--videos", type=int, default=4, help="generated long videos")
    parser.add_argument("--num_frames", type=int, default=900, help="frames per video (30 fps)")
    parser.add_argument("--crop_size", type=int, default=96)
    parser.add_argument("--window_size", type=int, default=30)
    parser.add_argument("--window_stride", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def prepare_command(repo: Path, videos: Path, out: Path, args) -> list:
    return [sys.executable, str(repo / "prepare_sequences_from_yolo.py"), "--dataset_root", str(videos),
            "--output_root", str(out), "--yolo_weights", args.yolo_weights, "--yolo_imgsz", "320", "--device", "cpu",
            "--crop_size", str(args.crop_size), "--window_size", str(args.window_size), "--window_stride",
            str(args.window_stride), "--split_strategy", "video", "--train_ratio", "0.75", "--val_ratio", "0.25",
            "--test_ratio", "0"]


def timed_prepare(repo: Path, videos: Path, out: Path, args) -> float:
    start = time.perf_counter()
    subprocess.run(prepare_command(repo, videos, out, args), check=True, capture_output=True)
    return time.perf_counter() - start


def folder_bytes(*folders: Path) -> int:
    return sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())


def write_previous_layout(prepared: Path, legacy: Path) -> Path:
    """The same windows as the previous writer laid them out: each npz with its own crops; manifest version 2."""
    manifest = json.loads((prepared / "sequence_manifest.json").read_text())
    manifest["schema_version"] = 2
    for entries in manifest["splits"].values():
        for e in entries:
            with np.load(prepared / e["npz"]) as npz:
                arrays = {k: npz[k] for k in npz.files}
            crops = CropStoreReader(prepared / e.pop("crop_store")).frames(e["start_frame"], e["end_frame"])
            e["npz"] = str((legacy / e["npz"]).resolve())
            atomic_save_npz(e["npz"], **arrays, frames=crops)
    path = legacy / "sequence_manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def epoch_seconds(manifest: Path, runs: Path, name: str, cache: bool, args) -> float:
    """Median seconds of an epoch (training and validation) of a frozen mobilenet_v3_small + LSTM."""
    train(training_config("--no_pretrained_backbone", "--feature_cache" if cache else "--no-feature_cache",
                          manifest_path=manifest, output_dir=runs, run_name=name, epochs=args.epochs, patience=0,
                          device="cpu", num_workers=2, batch_size=8))
    return float(pd.read_csv(runs / name / "metrics.csv")["seconds"].median())


def main(args) -> dict:
    work = Path(args.work)
    videos = work / "videos"
    if len(list(videos.glob("*.mp4"))) != args.videos:
        make_long_video_dataset(videos, args.videos, args.num_frames, seed=3, truth=False)
    prepare_seconds = {"store": [], "previous": []}
    for r in range(args.repeats):
        prepare_seconds["store"].append(timed_prepare(ROOT, videos, work / f"prepared_{r}", args))
        if args.baseline:
            prepare_seconds["previous"].append(timed_prepare(Path(args.baseline), videos, work / f"baseline_{r}", args))
    prepared = work / "prepared_0"
    legacy_manifest = write_previous_layout(prepared, work / "legacy")
    frames = sum(v["frames"] for v in json.loads((prepared / "sequence_manifest.json").read_text())["videos"].values())
    store_bytes = folder_bytes(prepared / "sequence_npz", prepared / "frames")
    previous_bytes = folder_bytes(work / "legacy" / "sequence_npz")
    epochs = {f"{layout}_cache_{cache}": [] for layout in ("store", "previous") for cache in ("on", "off")}
    for r in range(args.repeats):
        for cache in (True, False):
            for layout, manifest in (("store", prepared / "sequence_manifest.json"), ("previous", legacy_manifest)):
                name = f"{layout}_{'cache' if cache else 'plain'}_{r}"
                epochs[f"{layout}_cache_{'on' if cache else 'off'}"].append(
                    epoch_seconds(manifest, work / "runs", name, cache, args))
    median = (lambda values: round(statistics.median(values), 2) if values else None)
    report = {
        "frames": frames, "crop_size": args.crop_size, "window": [args.window_size, args.window_stride],
        "gb_per_hour_store": round(store_bytes / frames * FRAMES_PER_HOUR / 1e9, 3),
        "gb_per_hour_previous": round(previous_bytes / frames * FRAMES_PER_HOUR / 1e9, 3),
        "size_ratio": round(store_bytes / previous_bytes, 3),
        "prepare_seconds": {k: median(v) for k, v in prepare_seconds.items()},
        "epoch_seconds": {k: median(v) for k, v in epochs.items()},
        "runs": {"prepare_seconds": prepare_seconds, "epoch_seconds": epochs},
    }
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
