"""Baselines the benches set beside the project's models: what a lab would otherwise use.

`SimpleForest` is a SimBA-style random forest as a lab builds one in SimBA: a few per-frame features from the
pose in calibrated units (centroid speed, head angular speed, two body lengths between keypoints, ear distance,
the keypoints' box area), each with its rolling mean and standard deviation over windows given in seconds (SimBA's
rolling windows are in milliseconds, converted with the video's frame rate), keypoints below a likelihood of 0.3
interpolated first (as SimBA interpolates missing body parts), a random forest of 300 trees classifying every
frame. It is written here (SimBA itself is a GUI application whose feature extractors need its project folders),
so it is a baseline of the method, not of the tool.
"""
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

ROLLING_S = (1 / 6, 0.5, 1.0)  # 5, 15 and 31 frames at 30 fps
MIN_LIKELIHOOD = 0.3


def interpolate_low_likelihood(xy: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Keypoints [T, K, 2] with those below MIN_LIKELIHOOD replaced by linear interpolation in time."""
    out = xy.astype(np.float64).copy()
    out[conf < MIN_LIKELIHOOD] = np.nan
    for k in range(out.shape[1]):
        out[:, k] = pd.DataFrame(out[:, k]).interpolate(limit_direction="both").to_numpy()
    return out


def simple_features(xy: np.ndarray, conf: np.ndarray, names: list, px_per_cm: float, fps: float,
                    roles: dict = None) -> np.ndarray:
    """[T, F]: six per-frame features in cm, cm/s and rad/s, each with rolling means and standard deviations.
    `roles` names the tracker's keypoints for nose, left_ear, right_ear, neck (the front of the body: a mid-back
    where there is no neck) and tail_base; default: those names themselves."""
    xy = interpolate_low_likelihood(xy, conf) / px_per_cm
    roles = {role: role for role in ("nose", "left_ear", "right_ear", "neck", "tail_base")} | dict(roles or {})
    part = {role: xy[:, names.index(name)] for role, name in roles.items()}
    centroid = xy.mean(1)
    speed = np.r_[0.0, np.linalg.norm(np.diff(centroid, axis=0), axis=1)] * fps
    head = part["nose"] - part["neck"]
    angle = np.unwrap(np.arctan2(head[:, 1], head[:, 0]))
    head_turn = np.abs(np.r_[0.0, np.diff(angle)]) * fps
    span = xy.max(1) - xy.min(1)
    per_frame = pd.DataFrame({
        "centroid_speed": speed, "head_angular_speed": head_turn,
        "nose_to_tail_base": np.linalg.norm(part["nose"] - part["tail_base"], axis=1),
        "neck_to_tail_base": np.linalg.norm(part["neck"] - part["tail_base"], axis=1),
        "ear_distance": np.linalg.norm(part["left_ear"] - part["right_ear"], axis=1),
        "box_area": span[:, 0] * span[:, 1]})
    columns = [per_frame]
    for seconds in ROLLING_S:
        rolling = per_frame.rolling(max(2, int(round(seconds * fps)) | 1), center=True, min_periods=1)
        columns += [rolling.mean().add_suffix(f"_mean_{seconds:.2f}s"),
                    rolling.std().fillna(0).add_suffix(f"_std_{seconds:.2f}s")]
    return pd.concat(columns, axis=1).to_numpy(np.float32)


class SimpleForest:
    """Fit on recordings' per-frame features and labels; predict per frame."""

    def __init__(self, seed: int = 0):
        self.forest = RandomForestClassifier(n_estimators=300, n_jobs=-1, random_state=seed)

    def fit(self, features: list, labels: list) -> "SimpleForest":
        self.forest.fit(np.concatenate(features), np.concatenate(labels))
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.forest.predict(features)
