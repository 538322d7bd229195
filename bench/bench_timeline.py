"""Timeline post-processing time against video length, on noisy per-frame probabilities.

The whole post-processing of inference (utils/results/timeline.py): median smoothing of the probabilities, argmax,
threshold, minimum bout length (merge_short_bouts), bouts; also majority smoothing and, for the lengths where
it finishes in reasonable time, the former quadratic merge_short_bouts (kept in tests/test_timeline.py as the
oracle of the linear one), measured in the same run. Noisy input: each frame's class is drawn at random
(3 classes), the worst case for bout merging. Medians of --repeats runs.

Usage:
    python bench/bench_timeline.py --repeats 5                    # 3000 .. 108000 frames (one hour at 30 fps)
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from test_timeline import reference_merge_short_bouts  # noqa: E402
from utils.results.timeline import frame_labels, majority_filter, merge_short_bouts, to_bouts  # noqa: E402

CLASSES = ["walk", "rest", "groom"]


def noisy_probabilities(frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(len(CLASSES)) * 0.3, size=frames)  # peaked, with a random winner per frame
    return probs


def post_process(probs: np.ndarray, min_bout_frames: int = 5) -> list:
    labels, conf = frame_labels(probs, np.ones(len(probs), bool), CLASSES, 0.0, "median", 5)
    return to_bouts(merge_short_bouts(labels, min_bout_frames), conf)


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(args) -> list:
    rows = []
    print(f"{'frames':>8}{'post-process s':>16}{'us/frame':>10}{'majority s':>12}{'merge s':>10}{'old merge s':>13}")
    for n in args.frames:
        probs = noisy_probabilities(n)
        raw = np.array(CLASSES, dtype=object)[probs.argmax(1)]  # unsmoothed: the most bouts to merge
        row = {"frames": n, "post_process_s": median_seconds(lambda: post_process(probs), args.repeats),
               "majority_s": median_seconds(lambda: majority_filter(probs.argmax(1), 5), args.repeats),
               "merge_s": median_seconds(lambda: merge_short_bouts(raw, 5), args.repeats),
               "old_merge_s": (median_seconds(lambda: reference_merge_short_bouts(raw, 5), 1)
                               if n <= args.old_up_to else None)}
        rows.append(row)
        old = f"{row['old_merge_s']:>13.2f}" if row["old_merge_s"] is not None else f"{'-':>13}"
        print(f"{n:>8}{row['post_process_s']:>16.3f}{1e6 * row['post_process_s'] / n:>10.1f}"
              f"{row['majority_s']:>12.3f}{row['merge_s']:>10.3f}{old}")
    return rows


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Benchmark timeline post-processing against video length.")
    parser.add_argument("--frames", type=int, nargs="+", default=[3000, 9000, 27000, 108000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--old_up_to", type=int, default=9000, help="run the old quadratic merge up to this length")
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
