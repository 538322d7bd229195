"""Checkpoints: a state_dict plus JSON-serialisable metadata, written atomically, read with weights_only=True.

Keys: format_version, model (state_dict), optimizer, scheduler, scaler, epoch, best_metric, model_args
(dict: rebuilds the model), config ({section: settings} as resolved), features (pose_features_version,
min_keypoint_conf: how pose features were computed; inference applies the same), class_names, preprocessing (the
manifest's meta: crop_size, pad_ratio, window, detector settings, keypoint layout), selection (how the
weights were chosen: best validation accuracy / macro-F1 at an epoch, or the last epoch when there is no
validation split), drift (utils.drift: the reference that scores how unlike the training videos a new
video looks; absent without a validation split), rng (for exact resume).
"""
import json
from pathlib import Path

import torch

from utils.errors import UserError
from utils.io import atomic_path

FORMAT_VERSION = 1


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
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} has checkpoint format {ckpt.get('format_version')}; this version reads "
                        f"{FORMAT_VERSION}")
    return ckpt
