"""Per-frame features of a recording's sensor streams (utils.readers.sensors): for each channel the mean of its
samples in the frame's interval and their spread, then the share of channels present. Physical units are kept
(networks scale every input by training statistics; trees need no scaling); a missing value reads 0 with the share
telling that it is missing."""
import numpy as np


def sensor_feature_dim(channels) -> int:
    return 2 * len(channels) + 1 if channels else 0


def sensor_feature_names(channels) -> list:
    return [f"{c}_mean" for c in channels] + [f"{c}_spread" for c in channels] + ["sensor_present"] if channels else []


def sensor_features(raw: np.ndarray) -> np.ndarray:
    """[T, C, 2] aligned stream (mean, spread per frame) -> [T, 2C + 1] float32 (module docstring)."""
    present = np.isfinite(raw[..., 0]).mean(1, keepdims=True)
    values = np.nan_to_num(np.concatenate([raw[..., 0], raw[..., 1]], 1), nan=0.0, posinf=0.0, neginf=0.0)
    return np.concatenate([values, present], 1).astype(np.float32)
