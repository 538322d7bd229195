"""Checkpoints: a state_dict plus JSON-serialisable metadata, written atomically, read with weights_only=True.

Keys: format_version, model (state_dict), optimizer, scheduler, scaler, epoch, best_metric, model_args
(dict: rebuilds the model), config ({section: settings} as resolved), features (pose_features_version,
min_keypoint_conf: how pose features were computed; inference applies the same), class_names, preprocessing (the
manifest's meta: crop_size, pad_ratio, window, detector settings, keypoint layout), selection (how the
weights were chosen: best validation accuracy / macro-F1 at an epoch, or the last epoch when there is no
validation split), drift (utils.results.drift: the reference that scores how unlike the training videos a new
video looks; absent without a validation split), rng (for exact resume).

Checkpoints of an older format go through `migrate_checkpoint` when they are loaded, one step per format version,
so every reader (training, the predictor, the dashboard) sees the current format and no reader keeps rules for
old files. Format 2 (this version) states every setting the model was built with: format 1 files written before a
setting existed lack it, and meant the behaviour of before.
"""
import json
from pathlib import Path

import torch

from utils.errors import UserError
from utils.io import atomic_path

FORMAT_VERSION = 2
# settings that format 1 checkpoints may lack, with the value those models were trained with
FORMAT_1_MODEL_DEFAULTS = {
    "box_motion_dim": 0, "use_box_motion": False,  # before box motion
    "use_sensors": False,  # before sensor streams
    "input_stats": False,  # before input scaling
    "input_scaling": "standard",  # before quantile scaling: mean and spread
    "feature_shift": 0.0,  # before feature shift
}


def save_checkpoint(path, **fields) -> None:
    """Save atomically; metadata fields must be JSON-serialisable (checked, so no pickled objects creep in)."""
    meta = {k: v for k, v in fields.items() if k in ("model_args", "config", "class_names", "preprocessing", "selection",
                                                       "features", "drift")}
    json.dumps(meta)  # raises TypeError on anything that is not plain data
    with atomic_path(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, **fields}, tmp)


def load_checkpoint(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise UserError(f"cannot read checkpoint {path} safely ({type(exc).__name__}); it is damaged or not a "
                        f"BehaviorScope checkpoint") from None
    return migrate_checkpoint(ckpt, path)


def migrate_checkpoint(ckpt: dict, source) -> dict:
    """The checkpoint in the current format: each older format brought forward one version at a time."""
    version = ckpt.get("format_version")
    if version not in MIGRATIONS and version != FORMAT_VERSION:
        raise UserError(f"{source} has checkpoint format {version}; this version reads formats "
                        f"{', '.join(map(str, sorted([*MIGRATIONS, FORMAT_VERSION])))}: train it again with this "
                        f"version, or use the BehaviorScope that wrote it")
    while version != FORMAT_VERSION:
        ckpt = MIGRATIONS[version](dict(ckpt))
        version = ckpt["format_version"]
    return ckpt


def _format_1_to_2(ckpt: dict) -> dict:
    """Every setting stated: model settings that did not exist yet get the value the model was trained with;
    `features` from before feature version 2 (no `pose_features`: crop-pixel features, no box motion,
    min_keypoint_conf in a flat `config`) is written out; a flat `config` of before sections is split by section."""
    from utils.config import section_options
    from utils.schema import AugmentConfig, ModelSettings, TrainingConfig
    ckpt["model_args"] = {**FORMAT_1_MODEL_DEFAULTS, **ckpt["model_args"]}
    config = ckpt.get("config") or {}
    sections = {cls: section_options(cls) for cls in (AugmentConfig, ModelSettings, TrainingConfig)}
    if not any(next(iter(options.values())).section in config for options in sections.values()):
        config = {next(iter(options.values())).section: {k: v for k, v in config.items() if k in options}
                  for options in sections.values()}
    ckpt["config"] = config
    features, trained = dict(ckpt.get("features") or {}), ckpt["preprocessing"]
    if "pose_features" not in features:
        conf = features.get("min_keypoint_conf", config["training"].get("min_keypoint_conf", 0.0))
        features = {"pose_features_version": 1, "pose_features": "crop",
                    "num_keypoints": trained.get("num_keypoints", 0), "body_axis": [0, 0], "min_keypoint_conf": conf,
                    "crop_size": trained["crop_size"], "box_motion": False, "social": False}
    elif features["pose_features"] != "crop":
        features.setdefault("pose_features_version", 2)  # the body set before the steady rates
    ckpt["features"] = features
    ckpt["format_version"] = 2
    return ckpt


MIGRATIONS = {1: _format_1_to_2}  # format -> the step to the next one
