"""Train a YOLO-pose detector for your arena: from DeepLabCut labelled frames (plus, optionally, a tracker's
predictions on whole videos as pseudo-labels), or from an existing Ultralytics YOLO-pose dataset.

    # DeepLabCut labelled frames, trained from scratch (nothing is downloaded)
    python3 train_detector.py --dlc_labels my_project/labeled-data --output_dir detector_runs/arena1
    # many more frames: DeepLabCut's predictions on a whole video, filtered by likelihood and jumps
    python3 train_detector.py --dlc_labels my_project/labeled-data --pseudo_videos session1.mp4 \
        --pseudo_pose session1DLC_resnet50_arenaOct30shuffle1_6000.h5 --imgsz 640 --epochs 100
    # an existing YOLO-pose dataset, continued from local weights
    python3 train_detector.py --yolo_data my_yolo/data.yaml --model weights/mouse_pose.pt

Writes in --output_dir: dataset/ (images, YOLO labels, data.yaml with keypoint names and flip_idx), the
Ultralytics run (train/), best.pt (keypoint names inside, so detectors.py reports them), and report.json: box mAP50
(Ultralytics val) and keypoint pixel error on the held-out hand-labelled frames. Use best.pt as --yolo_weights.
"""
import argparse
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from utils.config import add_config_arguments, dump_config, resolve_config
from utils.detection.safe_weights import check_detector_weights
from utils.device import resolve_device, set_cpu_threads
from utils.errors import UserError, run_cli
from utils.io import atomic_write_json
from utils.logging_utils import setup_logging
from utils.readers.pose_io import find_pose_file
from utils.schema import DetectorTrainingConfig
from utils.detection.yolo_dataset import (find_dlc_label_files, keypoint_errors, pseudo_labels, read_dlc_labels,
                                          split_images, write_yolo_dataset)

log = logging.getLogger("train_detector")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     add_help=add_help)
    add_config_arguments(parser, (DetectorTrainingConfig,))
    return parser


def hand_labelled_images(cfg) -> tuple:
    """(keypoint names, images) of every DeepLabCut label file; all files must name the same keypoints."""
    names, images = None, []
    for label_file in (f for root in cfg.dlc_labels for f in find_dlc_label_files(root)):
        file_names, file_images = read_dlc_labels(label_file)
        if names is not None and file_names != names:
            raise UserError(f"{label_file} labels {file_names}, but earlier files label {names}; one detector "
                            f"needs one keypoint layout")
        names = file_names
        images += file_images
        log.info("%s: %d labelled frames", label_file, len(file_images))
    return names, images


def pseudo_labelled_images(cfg, names: list, frames_dir: Path) -> list:
    """Frames of --pseudo_videos with their tracker's keypoints (utils.detection.yolo_dataset.pseudo_labels)."""
    images = []
    for number, video in enumerate(cfg.pseudo_videos or []):
        pose = cfg.pseudo_pose[number] if cfg.pseudo_pose else find_pose_file(video)
        if pose is None:
            raise UserError(f"no pose file beside {video}; name it with --pseudo_pose")
        pose_names, video_images = pseudo_labels(video, pose, frames_dir, cfg.pseudo_min_likelihood,
                                                 cfg.pseudo_every, cfg.pseudo_max_jump)
        if pose_names != names:
            raise UserError(f"{pose} has keypoints {pose_names}, but the labelled frames have {names}; the "
                            f"pseudo-labels must use the same body parts in the same order")
        images += video_images
    return images


def build_dataset(cfg, out: Path) -> Path:
    """The Ultralytics dataset under out/dataset (rebuilt each run); returns its data.yaml."""
    names, images = hand_labelled_images(cfg)
    dataset = out / "dataset"
    shutil.rmtree(dataset, ignore_errors=True)
    train, val = split_images(images, cfg.val_fraction, np.random.default_rng(cfg.seed))
    train += pseudo_labelled_images(cfg, names, out / "pseudo_frames")
    log.info("dataset: %d training images (%d pseudo-labelled), %d validation images, keypoints %s", len(train),
             sum(i.group.startswith("pseudo:") for i in train), len(val), names)
    if not val:
        log.warning("no validation frames (--val_fraction 0 or a single labelled frame): the report reuses a "
                    "training frame and says nothing about new frames")
    return write_yolo_dataset(dataset, train, val, names, cfg.box_margin)


def train(cfg, data_yaml: Path, out: Path, device: str) -> Path:
    from ultralytics import YOLO
    if not cfg.model.endswith((".yaml", ".yml")) and not Path(cfg.model).is_file():
        raise UserError(f"--model {cfg.model} is neither a model YAML (e.g. yolov8n-pose.yaml) nor a local weights "
                        f"file; nothing is downloaded")
    check_detector_weights(cfg.model)
    model = YOLO(cfg.model)
    shutil.rmtree(out / "train", ignore_errors=True)
    model.train(data=str(data_yaml), imgsz=cfg.imgsz, epochs=cfg.epochs, batch=cfg.batch, device=device,
                workers=cfg.workers, project=str(out.resolve()), name="train", exist_ok=True, seed=cfg.seed,
                pretrained=not cfg.model.endswith((".yaml", ".yml")), patience=cfg.patience, plots=False,
                deterministic=False, amp=device != "cpu", verbose=False,
                # the animal's look changes with lighting and its pose with rotation: augment for both
                degrees=30.0, hsv_v=0.5, fliplr=0.5, scale=0.3)
    best = out / "train" / "weights" / "best.pt"
    if not best.is_file():
        raise UserError(f"training ended without {best}; see the Ultralytics output above")
    return best


def report(weights: Path, data_yaml: Path, cfg, device: str) -> dict:
    """Box mAP50 and keypoint pixel error on the validation frames."""
    from ultralytics import YOLO
    model = YOLO(str(weights))
    root = data_yaml.parent
    metrics = model.val(data=str(data_yaml), imgsz=cfg.imgsz, batch=cfg.batch, device=device, plots=False,
                        verbose=False, project=str((root.parent / "val").resolve()), exist_ok=True)
    errors = keypoint_errors(model, root / "images" / "val", root / "labels" / "val", cfg.imgsz, device)
    return {"weights": str(weights), "box_map50": float(metrics.box.map50), "pose_map50": float(metrics.pose.map50),
            "imgsz": cfg.imgsz, **errors}


def _px(value) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def main(args):
    os.environ.setdefault("YOLO_OFFLINE", "1")
    cfg = resolve_config(args, DetectorTrainingConfig)
    if bool(cfg.dlc_labels) == bool(cfg.yolo_data):
        raise UserError("give either --dlc_labels (DeepLabCut labelled frames) or --yolo_data (a YOLO data.yaml)")
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup_logging(out / "train_detector.log")
    dump_config([cfg], out / "config.yaml")
    device = resolve_device(cfg.device)
    data_yaml = Path(cfg.yolo_data) if cfg.yolo_data else build_dataset(cfg, out)
    best = train(cfg, data_yaml, out, "cpu" if device == "cpu" else device.replace("cuda:", ""))
    set_cpu_threads(0)  # Ultralytics lowers torch's thread count on CPU
    shutil.copyfile(best, out / "best.pt")
    result = report(out / "best.pt", data_yaml, cfg, "cpu" if device == "cpu" else device.replace("cuda:", ""))
    atomic_write_json(out / "report.json", result)
    log.info("box mAP50 %.3f; keypoint error on %d held-out animals: median %s px, 90th percentile %s px, "
             "%.0f%% within 10 px; missed %d", result["box_map50"], result["animals"],
             _px(result["keypoint_error_px_median"]), _px(result["keypoint_error_px_p90"]),
             100 * result["keypoints_within_10px"], result["animals_missed"])
    log.info("weights: %s (use as --yolo_weights); report: %s", out / "best.pt", out / "report.json")
    return result


if __name__ == "__main__":
    run_cli(main, get_args_parser())
