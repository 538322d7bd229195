"""Learning rate, schedule and early stopping: the training defaults, chosen on validation.

Each setting of the grid trains the same model on the same prepared data (the accuracy bench's, by default a
pose-only LSTM with box motion) and is judged by what a user sees without a test set: the best validation
macro-F1, the epoch it was reached at, and the epochs and seconds the run took until early stopping. Every
setting runs with each seed; medians over seeds are quoted. Nothing here looks at the held-out test videos.

Usage:
    YOLO_OFFLINE=1 python bench/bench_schedule.py --manifest /tmp/acc/prepared_s5/sequence_manifest.json \
        --lrs 5e-5 3e-4 1e-3 3e-3 --schedulers plateau cosine --seeds 0 1 --output /tmp/schedule.json
"""
import argparse
import itertools
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from training.engine import train, training_config  # noqa: E402


def run_setting(manifest: str, lr: float, scheduler: str, seed: int, args, out: Path) -> dict:
    argv = ["--manifest_path", manifest, "--output_dir", str(out), "--run_name", f"lr{lr}_{scheduler}_s{seed}",
            "--device", "cpu", "--num_workers", "0", "--seed", str(seed), "--lr", str(lr), "--scheduler", scheduler,
            "--epochs", str(args.epochs), "--patience", str(args.patience), *args.model_flags]
    start = time.perf_counter()
    history = train(training_config(*argv)).history
    best = max(history, key=lambda h: h["val_macro_f1"])
    return {"best_val_macro_f1": round(best["val_macro_f1"], 4), "best_epoch": int(best["epoch"]),
            "epochs_run": len(history), "seconds": round(time.perf_counter() - start, 1)}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True, help="prepared sequence_manifest.json with a val split")
    parser.add_argument("--lrs", type=float, nargs="+", default=[5e-5, 3e-4, 1e-3, 3e-3])
    parser.add_argument("--schedulers", nargs="+", default=["plateau", "cosine"], choices=["none", "plateau", "cosine"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=60, help="maximum epochs of every run")
    parser.add_argument("--patience", type=int, default=12, help="early stopping patience of every run")
    parser.add_argument("--model_flags", nargs=argparse.REMAINDER, default=["--backbone", "none", "--use_pose"],
                        help="model flags of every run (last on the line)")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def main(args) -> dict:
    logging.basicConfig(level=logging.WARNING)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lr, scheduler in itertools.product(args.lrs, args.schedulers):
            runs = [run_setting(args.manifest, lr, scheduler, seed, args, Path(tmp)) for seed in args.seeds]
            summary = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            results[f"lr {lr:g}, {scheduler}"] = {"median": summary, "runs": runs}
            print(f"lr {lr:<7g} {scheduler:8s} best val macro-F1 {summary['best_val_macro_f1']:.3f} at epoch "
                  f"{summary['best_epoch']:.0f}, {summary['epochs_run']:.0f} epochs, {summary['seconds']:.0f} s "
                  f"(median of {len(runs)} seeds)", flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
