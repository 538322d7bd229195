"""Per-frame features of a recording's sensor streams (utils.readers.sensors): for each channel the mean of its
samples in the frame's interval and their spread; for each vector of three channels named <name>_x, <name>_y,
<name>_z (an accelerometer, a gyroscope) the length of its mean and its total spread (the root of the summed
squared spreads), which do not depend on how the sensor sits on the animal; then the share of channels present.
Physical units are kept (networks scale every input by training statistics; trees need no scaling); a missing value
reads 0 with the share telling that it is missing."""
import re

import numpy as np

AXIS = re.compile(r"^(.+?)[_.-]?([xyz])$", re.IGNORECASE)


def vector_groups(channels) -> list:
    """[(name, [index of x, y, z])] of the channel triplets that form vectors, in the order they first appear."""
    found = {}
    for index, channel in enumerate(channels):
        match = AXIS.match(channel)
        if match:
            found.setdefault(match.group(1), {})[match.group(2).lower()] = index
    return [(name, [axes[a] for a in "xyz"]) for name, axes in found.items() if len(axes) == 3]


def sensor_feature_dim(channels) -> int:
    return 2 * len(channels) + 2 * len(vector_groups(channels)) + 1 if channels else 0


def sensor_feature_names(channels) -> list:
    if not channels:
        return []
    vectors = [n for name, _ in vector_groups(channels) for n in (f"{name}_length", f"{name}_spread")]
    return [f"{c}_mean" for c in channels] + [f"{c}_spread" for c in channels] + vectors + ["sensor_present"]


def sensor_features(raw: np.ndarray, channels) -> np.ndarray:
    """[T, C, 2] aligned stream (mean, spread per frame) -> [T, sensor_feature_dim] float32 (module docstring)."""
    mean, spread = raw[..., 0], raw[..., 1]
    parts = [mean, spread]
    for _, axes in vector_groups(channels):
        parts += [np.linalg.norm(mean[:, axes], axis=1, keepdims=True),
                  np.sqrt((spread[:, axes] ** 2).sum(1, keepdims=True))]
    values = np.nan_to_num(np.concatenate(parts, 1), nan=0.0, posinf=0.0, neginf=0.0)
    present = np.isfinite(mean).mean(1, keepdims=True)
    return np.concatenate([values, present], 1).astype(np.float32)
