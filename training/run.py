"""A training run's state in one object: settings, device, datasets, the run folder and the stop request.

Every part of training (the network loop, ensembles, trees, drift references, the test split) takes the run;
an ensemble member's run is the run with its own settings and folder (`TrainingRun.for_member`).
"""
import copy
import logging
import random
import signal
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data import WindowDataset
from model import ModelConfig, model_args
from utils import distributed
from utils.config import dump_config, settings_dict
from utils.data.splits import teaching_problems
from utils.errors import UserError
from utils.device import resolve_device, set_cpu_threads
from utils.data.recordings import recording_key
from utils.features.recording_norm import coverage_problem, mix_problem
from utils.features.sensors import sensor_feature_dim
from utils.schema import DENSE_KINDS
from utils.io import atomic_write_csv, ensure_dir
from utils.logging_utils import setup_logging
from utils.schema import AugmentConfig, ModelSettings, TrainingConfig

log = logging.getLogger("train")
SECTIONS = (AugmentConfig, ModelSettings, TrainingConfig)
REQUIRED = ("manifest_path",)


class StopFlag:
    """Set by SIGINT, SIGTERM or a stop file; checked between batches so every output is still written."""

    def __init__(self, stop_file: Path):
        self.stop_file, self.reason = stop_file, None
        self._old = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handler(self, signum, frame):
        self.reason = signal.Signals(signum).name

    def __bool__(self):
        if self.reason is None and self.stop_file.exists():
            self.reason = f"stop file {self.stop_file}"
        return self.reason is not None

    def restore(self):
        for s, handler in self._old.items():
            signal.signal(s, handler)


@dataclass
class TrainingRun:
    """cfg: the resolved sections (augmentation, model, training); mcfg: the model config built from them and the
    data; datasets: train/val/test (replaced by cached features when the backbone is frozen); resume: the
    last_checkpoint.pt to continue from."""
    cfg: object
    run_dir: Path
    device: str
    datasets: dict
    mcfg: ModelConfig
    stop: StopFlag = None
    resume: Path = None

    @property
    def manifest(self) -> dict:
        return self.datasets["train"].manifest

    @property
    def class_names(self) -> list:
        return class_names_of(self.manifest)

    @property
    def has_validation(self) -> bool:
        return len(self.datasets["val"]) > 0

    def for_member(self, index: int, run_dir: Path, resume) -> "TrainingRun":
        """An ensemble member's run: one network (ensemble_members 1), seed + index (batch order, sampler, dropout
        and augmentation), its own folder."""
        cfg = copy.copy(self.cfg)
        cfg.training = replace(self.cfg.training, seed=self.cfg.training.seed + index)
        return replace(self, cfg=cfg, run_dir=run_dir, mcfg=replace(self.mcfg, ensemble_members=1), resume=resume)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_names_of(manifest) -> list:
    return [manifest["idx_to_class"][str(i)] for i in range(len(manifest["idx_to_class"]))]


def run_name_of(cfg) -> str:
    """run_name, or one made from the clock when it is not given."""
    return cfg.training.run_name or datetime.now().strftime("behavior_%Y%m%d_%H%M%S")


def make_run_dir(cfg) -> Path:
    return ensure_dir(Path(cfg.training.output_dir) / run_name_of(cfg), "run folder")


def open_run_folder(cfg, resume, command: str, log_name: str) -> tuple:
    """(run folder, device) of a training or pretraining run: resume checked, the folder made, its log and
    config.yaml written, seeds set, the device resolved and torch given every core."""
    if resume and not Path(resume).is_file():
        raise UserError(f"--resume {resume}: no such checkpoint; pass the last_checkpoint.pt of the run to continue")
    run_dir = make_run_dir(cfg)
    setup_logging(run_dir / log_name)
    if command:
        log.info("command: %s", command)
    dump_config(cfg, run_dir / "config.yaml")
    seed_everything(cfg.training.seed)
    device = resolve_device(cfg.training.device)
    if not distributed.active():  # torchrun's processes share the cores (utils.distributed.start)
        set_cpu_threads(0)
    return run_dir, device


# ------------------------------------------------------------------------------------------------ datasets
def needs_frames(cfg) -> bool:
    """The model reads frames: a neural one with a backbone, or a dense one with frame features (whose windows then
    bring their frames for the drift reference and decision weights, as inference sees them)."""
    if cfg.model.classifier in DENSE_KINDS:
        return cfg.model.use_frame_features
    return cfg.model.classifier == "neural" and cfg.model.backbone != "none"


def dataset_of(cfg, split: str, augment=None) -> WindowDataset:
    return WindowDataset(cfg.training.manifest_path, split, augment, cfg.model.use_pose, cfg.training.min_keypoint_conf,
                         cfg.training.seed, cfg.training.pose_features, cfg.model.use_box_motion,
                         load_frames=needs_frames(cfg), track_smoothing_s=cfg.training.track_smoothing_s,
                         use_sensors=cfg.model.use_sensors,
                         feature_normalisation=cfg.training.feature_normalisation)


def build_datasets(cfg) -> dict:
    if cfg.training.feature_normalisation != "none" and needs_frames(cfg):
        raise UserError(f"feature_normalisation {cfg.training.feature_normalisation} holds every window's inputs "
                        f"until a recording ends, which a model that sees frames (classifier {cfg.model.classifier}, "
                        f"backbone {cfg.model.backbone}) cannot afford; use it with pose-only models (--backbone none, "
                        f"gbt, or dense models without --use_frame_features) or set --feature_normalisation none")
    aug = copy.deepcopy(cfg.augmentation)  # the dataset fills in flip_idx from the manifest
    datasets = {split: dataset_of(cfg, split, aug if split == "train" else None) for split in ("train", "val", "test")}
    train = datasets["train"]
    check_frames_available(train.manifest, cfg)
    if len(train) == 0:
        raise UserError(f"{cfg.training.manifest_path} has no training windows; re-run preprocessing with a train_ratio > 0")
    check_teaching(datasets, cfg)
    if cfg.training.feature_normalisation != "none":
        warn_normalisation_assumptions(datasets)
    counts = np.bincount(train.labels, minlength=len(train.manifest["class_to_idx"]))
    empty = [c for c, i in train.manifest["class_to_idx"].items() if counts[i] == 0]
    if empty:
        raise UserError(f"class(es) {', '.join(empty)} have no training windows in {cfg.training.manifest_path}; add videos "
                        f"of them or re-split (e.g. --split_strategy window for a quick test)")
    return datasets


def warn_normalisation_assumptions(datasets: dict) -> None:
    """Per-recording normalisation: loud warnings when the labelled recordings differ in their mix of behaviours, or
    are labelled in stretches (their statistics in training would not be those inference takes)."""
    entries = [e for split in ("train", "val") for e in datasets[split].entries]
    keys = [recording_key(e) for e in entries]
    for problem in (mix_problem(keys, [e["class_name"] for e in entries]),
                    coverage_problem(entries, datasets["train"].manifest.get("videos") or {}, keys)):
        if problem:
            log.warning("DATASET: %s", problem)


def check_teaching(datasets: dict, cfg) -> None:
    """One class: refused (nothing to learn, a perfect score that means nothing). The rest (rare classes, an empty
    or one-class validation split): loud warnings, repeated where the scores are reported."""
    manifest = datasets["train"].manifest
    names = {i: c for c, i in manifest["class_to_idx"].items()}
    classes = {s: [names[int(y)] for y in d.labels] for s, d in datasets.items()}
    recordings = {s: {e["source_video"].split("#")[0] for e in manifest["splits"].get(s, [])} for s in datasets}
    problems = teaching_problems(classes, recordings, manifest["meta"].get("split_strategy", "video"))
    if len(manifest["class_to_idx"]) < 2:
        raise UserError(f"{cfg.training.manifest_path}: {problems[0]}")
    for problem in problems:
        log.warning("DATASET: %s", problem)


def check_frames_available(manifest: dict, cfg) -> None:
    """Windows prepared from pose files without video hold no frames: only pose-only and gbt models train on
    them. Stop before anything is built."""
    if manifest["meta"].get("has_frames", True):
        return
    if needs_frames(cfg) and cfg.model.classifier in DENSE_KINDS:
        raise UserError(f"{cfg.training.manifest_path} was prepared from pose files without video (no frames), but "
                        f"use_frame_features reads every frame's crop; drop --use_frame_features, or put the videos "
                        f"beside the pose files and prepare again")
    if needs_frames(cfg):
        raise UserError(f"{cfg.training.manifest_path} was prepared from pose files without video (no frames), but "
                        f"backbone {cfg.model.backbone} classifies frames; use --backbone none --use_pose (or "
                        f"--classifier gbt), or put the videos beside the pose files and prepare again")
    if cfg.training.pose_features == "crop":
        raise UserError(f"{cfg.training.manifest_path} has no frames for the crop pose features, which move with the "
                        f"frames' augmentation; use --pose_features body")


def build_model_config(cfg, datasets) -> ModelConfig:
    train = datasets["train"]
    meta = train.manifest["meta"]
    return ModelConfig(**settings_dict(cfg.model), num_classes=len(train.manifest["class_to_idx"]),
                       pose_dim=train.pose_dim, box_motion_dim=train.motion_dim,
                       sensor_dim=sensor_feature_dim(train.spec.sensor_channels), input_stats=True,
                       crop_size=meta["crop_size"], window_size=meta["window_size"])


# ------------------------------------------------------------------------------------------------ files
def checkpoint_fields(run: TrainingRun, state: dict, epoch: int, best, mcfg: ModelConfig = None, optimizer=None,
                      scheduler=None, scaler=None) -> dict:
    """Everything a checkpoint holds, as plain types (utils.checkpoint): weights, training state, settings by
    section, features, preprocessing meta and class names."""
    config = {section: settings_dict(values) for section, values in vars(run.cfg).items()}
    return dict(model=state, optimizer=optimizer.state_dict() if optimizer is not None else None,
                scheduler=scheduler.state_dict() if scheduler is not None else None,
                scaler=scaler.state_dict() if scaler is not None else None,
                epoch=epoch, best_metric=dict(best) if best else None, model_args=model_args(mcfg or run.mcfg),
                config=config, features=run.datasets["train"].spec.recorded(), class_names=run.class_names,
                preprocessing=run.manifest["meta"],
                rng={"torch": torch.get_rng_state(), "python": list(random.getstate()[1])})


def write_evaluation(run_dir: Path, tag: str, result: dict, class_names: list) -> None:
    """Confusion matrix (counts and row-normalised) and per-class precision/recall/F1, as CSV."""
    scores = result["scores"]
    cm = np.array(scores["confusion"]["counts"])
    atomic_write_csv(run_dir / f"confusion_matrix_{tag}.csv", pd.DataFrame(cm, index=class_names, columns=class_names)
                     .rename_axis("true").reset_index())
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    atomic_write_csv(run_dir / f"confusion_matrix_{tag}_normalized.csv",
                     pd.DataFrame(norm.round(4), index=class_names, columns=class_names).rename_axis("true").reset_index())
    per_class = [scores["per_class"][i] for i in range(len(class_names))]
    atomic_write_csv(run_dir / f"per_class_metrics_{tag}.csv", pd.DataFrame(
        {"class": class_names, **{k: [c[k] for c in per_class] for k in ("precision", "recall", "f1", "support")}}))
