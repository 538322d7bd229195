"""Per-frame ceiling of window classification: the macro-F1 a perfect window classifier would reach.

Every window gets the true label of its centre frame (what preprocessing trains on and a perfect model would
predict); frames then get their label the way inference does it (utils.data.windows: window_starts, and either flat
or centre-weighted frame_weights). What is lost is lost to the windowing alone: bouts shorter than a window,
boundaries blurred over half a window. Label sequences come from the generator's sample_label_sequence (bouts
of min..max frames, no two alike in a row), 20 sequences of 900 frames per bout range.

Usage:
    python bench/bench_ceiling.py
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from utils.results.metrics import classification_scores  # noqa: E402
from utils.synthetic import BEHAVIORS, sample_label_sequence  # noqa: E402
from utils.data.windows import frame_weights, window_starts  # noqa: E402


def ceiling(labels: np.ndarray, size: int, stride: int, weighted: bool, num_classes: int) -> tuple:
    """(truth, predicted) per covered frame when every window is labelled by its true centre frame."""
    votes = np.zeros((len(labels), num_classes))
    weights = frame_weights(size) if weighted else np.ones(size)
    for start in window_starts(len(labels), size, stride):
        votes[start:start + size, labels[start + size // 2]] += weights
    covered = votes.sum(1) > 0
    return labels[covered], votes[covered].argmax(1)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window_size", type=int, default=30)
    parser.add_argument("--strides", type=int, nargs="+", default=[15, 5, 1])
    parser.add_argument("--sequences", type=int, default=20)
    return parser


def main(args) -> dict:
    results = {}
    print(f"| bouts (frames) | {' | '.join(f'stride {s} {w}' for s in args.strides for w in ('flat', 'centre'))} |")
    print("|---|" + "---|" * (2 * len(args.strides)))
    for bouts in ((20, 75), (30, 150), (45, 300)):
        rng = np.random.default_rng(0)
        sequences = [np.array([BEHAVIORS.index(b) for b in sample_label_sequence(900, rng, *bouts)])
                     for _ in range(args.sequences)]
        row = {}
        for stride in args.strides:
            for weighted in (False, True):
                pairs = [ceiling(s, args.window_size, stride, weighted, len(BEHAVIORS)) for s in sequences]
                truth, predicted = (np.concatenate(p).tolist() for p in zip(*pairs))
                row[(stride, weighted)] = classification_scores(truth, predicted, list(range(len(BEHAVIORS))))[
                    "macro_f1"]
        results[bouts] = row
        print(f"| {bouts[0]}-{bouts[1]} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |")
    return results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
