"""Suggest what to review next: the bouts of many classified recordings, most worth a look first.

Usage:
    python suggest_review.py --results_dir results/ --count 20
    python suggest_review.py --results_dir results/ --other_results seed1/ seed2/   # where other models disagree
    # writes results/review_queue.csv (docs/formats.md, section 9): one bout per row, its recording's frames.csv
    # relative to the queue; the dashboard's Review tab works through it (Queue…, then n: the next bout)

Ranking (utils/results/review.py: suggest_bouts): the bout's doubtful frames (per frame 1 - the margin between the
two most probable classes, or where --other_results' models say another label, summed over the bout) times
(0.5 + 0.5 rarity of its label) times (1 + its share of frames beyond the drift limit), taken in turns by label.
bench/README.md ("Which bouts to review") measures what it buys against bouts picked at random.
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
    parser.add_argument("--other_results", nargs="+", default=[],
                        help="folders of the same recordings classified by other models (other seeds, the members "
                             "of an ensemble run alone, another classifier), matched by their path under each "
                             "folder: bouts where they say another label rank higher")
    parser.add_argument("--output", default=None, help="the queue CSV (default <results_dir>/review_queue.csv)")
    return parser


def main(args) -> pd.DataFrame:
    root = Path(args.results_dir)
    others = [Path(o).resolve() for o in args.other_results]
    # other models' folders may lie inside results_dir: their recordings are not this model's
    tables = {str(path): pd.read_csv(path) for path in sorted(root.rglob("*.frames.csv"))
              if not any(path.resolve().is_relative_to(o) for o in others)}
    if not tables:
        raise UserError(f"no <video>.frames.csv under {root}: classify the recordings first (infer_behavior_lstm.py "
                        f"or batch_process_videos.py)")
    queue = suggest_bouts(tables, args.count, [other_models_tables(root, Path(o), tables) for o in args.other_results])
    output = Path(args.output or root / "review_queue.csv")
    # each recording's frames.csv relative to the queue: the Review tab finds them wherever the folder is moved
    queue["recording"] = [os.path.relpath(Path(r).resolve(), output.resolve().parent) for r in queue["recording"]]
    atomic_write_csv(output, queue)
    print(queue.to_string(index=False))
    print(f"{len(queue)} bouts of {len(tables)} recordings to review first: {output}")
    return queue


def other_models_tables(root: Path, other: Path, tables: dict) -> dict:
    """{results_dir's frames.csv path: the table at the same relative path under `other`}; a recording `other`
    lacks is named in a warning and ranked by the models that have it."""
    found, missing = {}, []
    for path in tables:
        twin = other / Path(path).relative_to(root)
        if twin.is_file():
            found[path] = pd.read_csv(twin)
        else:
            missing.append(twin)
    if not found:
        raise UserError(f"--other_results {other}: none of the {len(tables)} recordings of {root} is there (looked "
                        f"for {missing[0]}); give folders written by classifying the same recordings")
    if missing:
        print(f"warning: {other} lacks {len(missing)} recording(s) of {root}, e.g. {missing[0]}")
    return found


if __name__ == "__main__":
    run_cli(main, get_args_parser())
