"""Window npz writing: time and size at each deflate level, on real crops of generated video.

Preprocessing writes one compressed npz per window (frames [T, S, S, 3] uint8 plus small arrays). numpy's
savez_compressed deflates at level 6; utils.io.atomic_save_npz uses NPZ_COMPRESSLEVEL. Each level writes the same
window in memory; medians of --repeats writes, every level alternating within a repeat.

Usage:
    python bench/bench_npz.py --crop_size 96 224 --repeats 5
"""
import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from utils.io import write_npz  # noqa: E402
from utils.synthetic import render_video, sample_label_sequence  # noqa: E402


def window_arrays(crop_size: int, window: int) -> dict:
    """A window as preprocessing stores it: crops around the animal's box plus the small per-frame arrays."""
    video = render_video(sample_label_sequence(window, np.random.default_rng(0)), seed=4)
    frames = []
    for frame, box in zip(video.frames, video.bboxes):
        cx, cy = (box[:2] + box[2:]) / 2
        side = int(max(box[2:] - box[:2]) * 1.4)
        x1, y1 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
        frames.append(cv2.resize(frame[y1:y1 + side, x1:x1 + side], (crop_size, crop_size))[..., ::-1])
    t = len(frames)
    return {"frames": np.stack(frames), "bbox_xyxy": video.bboxes.astype(np.float32),
            "keypoints_xy_raw": video.keypoints.astype(np.float32), "frame_index": np.arange(t)}


def measure(arrays: dict, levels, repeats: int) -> dict:
    seconds, sizes = {lv: [] for lv in levels}, {}
    for _ in range(repeats):
        for level in levels:
            buffer = io.BytesIO()
            start = time.perf_counter()
            write_npz(buffer, arrays, level)
            seconds[level].append(time.perf_counter() - start)
            sizes[level] = buffer.getbuffer().nbytes
    return {lv: {"ms": round(1000 * statistics.median(seconds[lv]), 1), "mb": round(sizes[lv] / 1e6, 3)}
            for lv in levels}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crop_size", type=int, nargs="+", default=[96, 224])
    parser.add_argument("--window_size", type=int, default=30)
    parser.add_argument("--levels", type=int, nargs="+", default=[6, 1, 0], help="deflate levels (0 = stored)")
    parser.add_argument("--repeats", type=int, default=5)
    return parser


def main(args) -> dict:
    report = {}
    for size in args.crop_size:
        arrays = window_arrays(size, args.window_size)
        report[size] = measure(arrays, args.levels, args.repeats)
        base = report[size][args.levels[0]]
        for level, r in report[size].items():
            print(f"crop {size:4d}  level {level}  {r['ms']:7.1f} ms  {r['mb']:.3f} MB  "
                  f"({base['ms'] / max(r['ms'], 1e-9):.1f}x the speed, {r['mb'] / base['mb']:.2f}x the size of level "
                  f"{args.levels[0]})")
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
