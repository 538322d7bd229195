"""Retrain a model with reviewed corrections, and compare it with the current one on the same held-out windows.

Usage:
    python retrain_behavior_model.py --model_path runs/gbt/best_model_macro_f1.pt --review_dir review/corrected
    # review/corrected: <video>.csv (frame,behavior: the frames you reviewed, as the Review tab exports them)
    # beside each <video>.mp4 (or a link to it)

What it does (training/retrain.py): prepares the corrected videos with the model's own settings; adds their
windows to the data the model was trained on (its manifest, recorded in the checkpoint, or --manifest_path),
holding back the last 20% of each corrected video's reviewed windows; trains with the model's settings (from its
weights where the kind and classes allow); scores the current and the new model on the same held-out windows
(the original validation and test windows and the held-back corrections) and writes
<review_dir>/../retrain/runs/<run_name>/comparison.json and comparison.csv. The current model is never replaced:
the new one is used only when you choose it. A new model more than 0.01 macro-F1 below the current one is
marked worse; only a better one (more than 0.01 above) is recommended, as one within 0.01 can still be worse on
other recordings (bench/README.md, "Which bouts to review").
"""
import argparse
import logging
import subprocess
import sys

from training.engine import train, training_config
from training.retrain import (compare_models, merge_corrections, original_manifest_of, plan_retrain,
                              write_comparison)
from utils.checkpoint import load_checkpoint
from utils.device import resolve_device
from utils.errors import UserError, run_cli
from utils.jobs import script_command
from utils.logging_utils import setup_logging
from utils.schema import NETWORKS

log = logging.getLogger("retrain")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_path", required=True, help="the current model (a checkpoint, *.pt)")
    parser.add_argument("--review_dir", required=True, help="folder of corrected videos: <video>.csv labels (reviewed "
                                                            "frames only) beside each video")
    parser.add_argument("--manifest_path", default=None, help="the manifest the model was trained on (default: the "
                                                              "one its checkpoint records)")
    parser.add_argument("--run_name", default=None, help="name of the new run (default retrain_<date>_<time>)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda:N, for training and the comparison")
    return parser


def main(args) -> dict:
    checkpoint = load_checkpoint(args.model_path)
    original = original_manifest_of(checkpoint, args.model_path, args.manifest_path)
    plan = plan_retrain(args.model_path, args.review_dir, manifest_path=original, run_name=args.run_name)
    setup_logging(plan.folder / "retrain.log")
    prepare = subprocess.run(script_command("prepare_sequences_from_yolo.py", plan.prepare_config))
    if prepare.returncode:
        raise UserError(f"preparing the corrected videos in {args.review_dir} failed (exit {prepare.returncode}; "
                        f"the reason is above and in {plan.folder / 'prepared' / 'prepare.log'})")
    merged = merge_corrections(original, plan.corrections_manifest, plan.merged_manifest)
    start = starting_weights(checkpoint, merged, args.model_path)
    result = train(training_config(config=str(plan.train_config), init_from=start, device=args.device),
                   command=" ".join(sys.argv))
    if result.stopped or not plan.new_model.is_file():
        log.warning("retraining stopped (%s): no new model to compare; the current model is unchanged",
                    result.stopped or "no checkpoint")
        return {"stopped": result.stopped}
    comparison = compare_models(args.model_path, plan.new_model, plan.merged_manifest, resolve_device(args.device))
    table = write_comparison(comparison, plan.comparison)
    log.info("held-out windows, current vs new model:\n%s", table.to_string(index=False))
    log.info("verdict: the new model is %s (macro-F1 %+.3f on all held-out windows); recommended: %s; the current "
             "model is unchanged at %s; the new one is %s; comparison: %s", comparison["verdict"].upper(),
             comparison["macro_f1_change"], "use the new model" if comparison["recommended"] == "new" else
             "keep the current model", args.model_path, plan.new_model, plan.comparison)
    return comparison


def starting_weights(checkpoint: dict, merged: dict, model_path):
    """The current model's weights when training can start from them (a network, window or dense, with the same
    classes); else None, said: trees are fitted anew, and a behaviour added during review needs a new output layer."""
    if checkpoint["model_args"].get("classifier", "neural") not in NETWORKS["classifier"]:
        log.info("the %s classifier is fitted anew on all the data", checkpoint["model_args"]["classifier"])
        return None
    if sorted(checkpoint["class_names"]) != sorted(merged["class_to_idx"]):
        log.info("classes changed (%s -> %s): training from the start, not from the current weights",
                 checkpoint["class_names"], sorted(merged["class_to_idx"]))
        return None
    return str(model_path)


if __name__ == "__main__":
    run_cli(main, get_args_parser())
