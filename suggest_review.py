"""Suggest what to review next: the bouts of many classified recordings, most worth a look first.

Usage:
    python suggest_review.py --results_dir results/ --count 20
    # writes results/review_queue.csv (docs/formats.md, section 9): one bout per row, its recording's frames.csv
    # relative to the queue; the dashboard's Review tab works through it (Queue…, then n: the next bout)

Ranking (utils/results/review.py: suggest_bouts): the bout's doubtful frames (1 - the margin between the two most
probable classes, summed over the bout) times (0.5 + 0.5 rarity of its label) times (1 + its share of frames beyond
the drift limit), taken in turns by label. bench/README.md ("Which bouts to review") measures what it buys against
bouts picked at random.
"""
import argparse
import os
from pathlib import Path

import pandas as pd

from utils.errors import UserError, run_cli
from utils.io import atomic_write_csv
from utils.results.review import suggest_bouts


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results_dir", required=True, help="folder searched recursively for <video>.frames.csv "
                                                             "(inference or batch outputs)")
    parser.add_argument("--count", type=int, default=20, help="how many bouts to suggest")
    parser.add_argument("--output", default=None, help="the queue CSV (default <results_dir>/review_queue.csv)")
    return parser


def main(args) -> pd.DataFrame:
    root = Path(args.results_dir)
    tables = {str(path): pd.read_csv(path) for path in sorted(root.rglob("*.frames.csv"))}
    if not tables:
        raise UserError(f"no <video>.frames.csv under {root}: classify the recordings first (infer_behavior_lstm.py "
                        f"or batch_process_videos.py)")
    queue = suggest_bouts(tables, args.count)
    output = Path(args.output or root / "review_queue.csv")
    # each recording's frames.csv relative to the queue: the Review tab finds them wherever the folder is moved
    queue["recording"] = [os.path.relpath(Path(r).resolve(), output.resolve().parent) for r in queue["recording"]]
    atomic_write_csv(output, queue)
    print(queue.to_string(index=False))
    print(f"{len(queue)} bouts of {len(tables)} recordings to review first: {output}")
    return queue


if __name__ == "__main__":
    run_cli(main, get_args_parser())
