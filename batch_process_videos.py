"""Run inference on every video under a folder (recursive), mirroring the folder layout in the output.

Usage:
    python batch_process_videos.py --input_dir videos/ --output_root results/ --model_path best.pt
    # one job of a cluster array of 8 (each job takes every 8th video, by sorted path):
    python batch_process_videos.py --input_dir videos/ --output_root results/ --model_path best.pt --shard 3/8

A failing video does not stop the batch: it is reported in the summary (batch_summary_<shard>.csv) and the
exit status is 1 when any video failed. With --skip_existing, videos whose bouts CSV exists are skipped.
Every inference setting of infer_behavior_lstm.py (and --config) applies to all videos.
"""
import argparse
import copy
import logging
import sys
from pathlib import Path

import pandas as pd

import infer_behavior_lstm as infer
from utils.errors import UserError, run_cli
from utils.io import atomic_write_csv
from utils.video_io import is_video_file

log = logging.getLogger("batch")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[infer.get_args_parser(add_help=False)], conflict_handler="resolve")
    parser.add_argument("--input_dir", required=True, help="folder searched recursively for videos")
    parser.add_argument("--output_root", required=True, help="outputs go to output_root/<same relative folder>/")
    parser.add_argument("--skip_existing", action="store_true", help="skip videos whose <video>.behavior.csv exists")
    parser.add_argument("--shard", default="1/1", metavar="I/N", help="process shard I of N (1-based), e.g. 3/8")
    parser.add_argument("--video_path", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # set per video
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
    videos = shard_videos(sorted(p for p in root.rglob("*") if p.is_file() and is_video_file(p)), shard)
    rows = []
    for video in videos:
        rel = video.relative_to(root)
        out_dir = out_root / rel.parent
        if args.skip_existing and (out_dir / f"{video.stem}.behavior.csv").is_file():
            rows.append({"video": rel.as_posix(), "status": "skipped (exists)", "frames": None, "bouts": None, "error": ""})
            continue
        video_args = copy.copy(args)
        video_args.video_path, video_args.output_dir = str(video), str(out_dir)
        try:
            result = infer.main(video_args)
            rows.append({"video": rel.as_posix(), "status": "ok", "frames": result["frames"],
                         "bouts": len(result["bouts"]), "error": ""})
        except (UserError, OSError, RuntimeError, ValueError) as exc:  # one bad video must not stop the batch
            log.error("%s failed: %s", rel, exc)
            rows.append({"video": rel.as_posix(), "status": "failed", "frames": None, "bouts": None,
                         "error": str(exc).splitlines()[0]})
    summary = pd.DataFrame(rows, columns=["video", "status", "frames", "bouts", "error"])
    out_root.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(out_root / f"batch_summary_{shard[0]}of{shard[1]}.csv", summary)
    print(summary.to_string(index=False) if len(summary) else "no videos in this shard")
    if (summary["status"] == "failed").any():
        raise SystemExit(1)
    return summary


if __name__ == "__main__":
    run_cli(main, get_args_parser())
