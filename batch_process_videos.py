"""Run inference on every video under a folder (recursive), mirroring the folder layout in the output.

Usage:
    python batch_process_videos.py --input_dir videos/ --output_root results/ --model_path best.pt
    # one job of a cluster array of 8 (each job takes every 8th video, by sorted path):
    python batch_process_videos.py --input_dir videos/ --output_root results/ --model_path best.pt --shard 3/8

A failing video does not stop the batch: it is reported in the summary (batch_summary_<shard>.csv) and the
exit status is 1 when any video failed. A video (or pose file) that is missing frames (cut short, rows lost) is
classified as far as it goes and reported `damaged`, with what was lost in the error column, never `ok`. With
--skip_existing, videos whose bouts CSV exists are skipped.
Every inference setting of infer_behavior_lstm.py (and --config) applies to all videos; the model and
detector are loaded once per process. A model trained on pose files (detector pose_file) takes the videos with a
pose file beside them and the pose files alone.
"""
import argparse
import logging
from pathlib import Path

import pandas as pd

import inference
from utils.errors import UserError, first_line, run_cli
from utils.io import atomic_write_csv
from utils.readers.pose_io import find_recordings, recording_name

log = logging.getLogger("batch")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = inference.get_folder_args_parser(__doc__, "every video in it is classified", add_help)
    parser.add_argument("--skip_existing", action="store_true", help="skip videos whose <video>.behavior.csv exists")
    parser.add_argument("--shard", default="1/1", metavar="I/N", help="process shard I of N (1-based), e.g. 3/8")
    return parser


def parse_shard(text: str) -> tuple:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected I/N, e.g. 2/8") from None
    if not 1 <= i <= n:
        raise UserError(f"--shard {text}: I must lie in 1..N")
    return i, n


def shard_videos(videos: list, shard: tuple) -> list:
    """Every N-th video of the sorted list, starting at I-1: shards are disjoint and cover the folder."""
    i, n = shard
    return videos[i - 1::n]


def main(args) -> pd.DataFrame:
    shard = parse_shard(args.shard)
    root, out_root = Path(args.input_dir), Path(args.output_root)
    if not root.is_dir():
        raise UserError(f"--input_dir {root} is not a folder")
    cfg, predictor = inference.load_folder_predictor(args)  # loaded once: a bad model stops before any video
    videos = shard_videos(find_recordings(root, predictor.detector.reads_pose_files, []), shard)
    rows = []
    for video in videos:
        rel = video.relative_to(root)
        out_dir = out_root / rel.parent
        if args.skip_existing and (out_dir / f"{recording_name(video)}.behavior.csv").is_file():
            rows.append({"video": rel.as_posix(), "status": "skipped (exists)", "error": ""})
            continue
        try:
            result = inference.classify_in_tree(predictor, cfg, root, out_root, video)
            drift = result["drift"] or {}
            rows.append({"video": rel.as_posix(), "status": "damaged" if result["damage"] else "ok",
                         "frames": result["frames"], "bouts": len(result["bouts"]),
                         "drift_score": drift.get("drift_score"), "drift_warning": drift.get("drift_warning"),
                         "error": "; ".join(result["damage"])})
        except (UserError, OSError, RuntimeError, ValueError) as exc:  # one bad video must not stop the batch
            log.error("%s failed: %s", rel, exc)
            rows.append({"video": rel.as_posix(), "status": "failed", "error": first_line(exc)})
    summary = pd.DataFrame(rows, columns=["video", "status", "frames", "bouts", "drift_score", "drift_warning", "error"])
    out_root.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(out_root / f"batch_summary_{shard[0]}of{shard[1]}.csv", summary)
    print(summary.to_string(index=False) if len(summary) else "no videos in this shard")
    if (summary["status"] == "failed").any():
        raise SystemExit(1)
    return summary


if __name__ == "__main__":
    run_cli(main, get_args_parser())
