"""Stage C-E training: a frame backbone + temporal head (optionally fused with pose) on prepared windows.

Usage:
    python train_behavior_lstm.py --manifest_path prepared/sequence_manifest.json --run_name mobilenet_lstm
    python train_behavior_lstm.py --manifest_path prepared/sequence_manifest.json --backbone none --use_pose
    python train_behavior_lstm.py --config my_lab.yaml --resume runs/mobilenet_lstm/last_checkpoint.pt

Outputs in <output_dir>/<run_name>/: config.yaml, best_model.pt (best validation accuracy),
best_model_macro_f1.pt, last_checkpoint.pt, metrics.csv, training_curves.png, train.log, per best checkpoint
the confusion matrix (counts and normalised) and per-class precision/recall/F1 as CSV, and start-up previews
(startup_crops_preview.png; with keypoints startup_pose_preview_{train,val}.png, startup_pose_aug_preview_train.png).
When the manifest has a test split, best_model_macro_f1.pt is evaluated on it once at the end (never used for
selection): test_metrics.json (per-window and per-frame accuracy and macro-F1, per-class F1),
confusion_matrix_test*.csv and per_class_metrics_test.csv. Ctrl-C, SIGTERM or a file named STOP in the run
folder ends training after the current batch and still writes every output.

With --ensemble_members N > 1 the members are trained one after another in member_<i>/ (each a whole run with
seed + i); the run's best_model*.pt average them, each at its own best epoch (docs/formats.md, section 5). Resume
with the interrupted member's checkpoint: --resume runs/<run_name>/member_<i>/last_checkpoint.pt.
"""
import argparse
import logging
import sys

from training.engine import train
from training.run import REQUIRED, SECTIONS
from utils.config import add_config_arguments, resolve_config
from utils.errors import run_cli

log = logging.getLogger("train")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, SECTIONS, required=REQUIRED)
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="continue from a last_checkpoint.pt (same run folder, same settings)")
    return parser


def main(args):
    cfg = resolve_config(args, SECTIONS, required=REQUIRED)
    result = train(cfg, resume=args.resume, command=" ".join(sys.argv))
    log.info("outputs in %s", result.run_dir)
    return result


if __name__ == "__main__":
    run_cli(main, get_args_parser())
