"""Suggest what to review next: the bouts of many classified recordings, most worth a look first.

Usage:
    python suggest_review.py --results_dir results/ --count 20
    # writes results/review_queue.csv: recording (its frames.csv), start_frame, end_frame, label, frames,
    # doubt, rarity, score; open each in the dashboard's Review tab and correct or confirm it

Ranking (utils/results/review.py: suggest_bouts): doubt (1 - the mean margin between the two most probable
classes over the bout) times (0.5 + 0.5 rarity), rarity being how rare the bout's label is among all predicted
frames. bench/README.md ("Which bouts to review") measures what it buys against bouts picked at random.
"""
import argparse
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
    atomic_write_csv(output, queue)
    print(queue.to_string(index=False))
    print(f"{len(queue)} bouts of {len(tables)} recordings to review first: {output}")
    return queue


if __name__ == "__main__":
    run_cli(main, get_args_parser())
