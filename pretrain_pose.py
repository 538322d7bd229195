"""Self-supervised pretraining of a dense model (mstcn, dense_transformer) on recordings without labels: spans of
frames have their pose and box-motion features hidden and the model learns to predict them (masked modelling, as
BehavERT pretrains on keypoint sequences). Fine-tune it on labelled frames with train_behavior_lstm.py --init_from.

Usage:
    python pretrain_pose.py --manifest_path prepared/sequence_manifest.json --pose_dir unlabelled_pose_files/ \
        --classifier mstcn --use_pose --run_name pretrained
    python train_behavior_lstm.py --manifest_path prepared/sequence_manifest.json --classifier mstcn --use_pose \
        --init_from runs/pretrained/best_model.pt
    python pretrain_pose.py --config my_lab.yaml --resume runs/pretrained/last_checkpoint.pt

Recordings: every window of the manifest (all splits, their labels unused) stitched back into recordings, and every
pose file under --pose_dir (read with the manifest's preprocessing settings: prepare the labelled recordings with
--detector pose_file). The model settings (--classifier, --dense_*), features (--pose_features, --min_keypoint_conf,
--track_smoothing_s), --lr, --epochs, --batch_size and the augmentation are those of training; --mask_ratio and
--mask_span shape the masks. A tenth of the chunks is held out: their loss selects best_model.pt.

Outputs in <output_dir>/<run_name>/: best_model.pt, last_checkpoint.pt, metrics.csv (masked-feature loss per
epoch, train and held out), training_curves.png, config.yaml, pretrain.log. Ctrl-C, SIGTERM or a file named STOP
in the run folder ends it after the current batch; --resume continues.
"""
import argparse
import logging
import sys

from training.pretrain import pretrain
from training.run import REQUIRED
from utils.config import add_config_arguments, resolve_config
from utils.errors import run_cli
from utils.schema import AugmentConfig, ModelSettings, PretrainConfig, TrainingConfig

log = logging.getLogger("train")
SECTIONS = (AugmentConfig, ModelSettings, TrainingConfig, PretrainConfig)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, SECTIONS, required=REQUIRED)
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="continue from a last_checkpoint.pt (same run folder, same settings)")
    return parser


def main(args):
    cfg = resolve_config(args, SECTIONS, required=REQUIRED)
    result = pretrain(cfg, resume=args.resume, command=" ".join(sys.argv))
    log.info("outputs in %s", result.run_dir)
    return result


if __name__ == "__main__":
    run_cli(main, get_args_parser())
