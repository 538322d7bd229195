"""Per-recording feature normalisation (`--feature_normalisation`): each input feature centred on its own recording's
median (`recording_centre`) and also divided by the spread between its 10th and 90th percentiles (`recording`).

Why: a rig, a tracker or an animal shifts whole feature distributions (a noisier tracker raises every speed at rest,
another body shape moves every distance), while behaviours keep their place relative to the recording's own spread.
Expressed against its recording, a feature keeps the contrast between behaviours and loses the rig's offset
(bench/README.md, "Per-recording normalisation"). The price: a recording spent almost entirely in one behaviour is
described relative to that behaviour, so the statistics need recordings of several minutes with some variety.

Features are 0 where a keypoint is missing (utils.features.motion): such values are left out of the statistics and
stay 0, the recording's median after normalisation, instead of becoming a value far from every behaviour.

Training takes the statistics over every window of a recording in its split, inference over every window of the
video or pose file (windows overlap evenly, so each frame counts about equally often). Inference therefore holds a
recording's window inputs until its last frame (about 10 KB a window), which is why only models that do not see
frames take this setting, and why live mode cannot.
"""
from dataclasses import dataclass

import numpy as np

from utils.features.motion import CLIP

LOW, HIGH = 10, 90  # percentiles whose distance is the spread: robust to a few outlying frames
MIN_SPREAD = 1e-3  # a (nearly) constant feature, such as a confidence that is always 1, is only centred
MODES = ("none", "recording", "recording_centre")


@dataclass
class RecordingNorm:
    """Centre and spread of every pose and box-motion feature of one recording (None where the input is absent)."""
    pose_centre: np.ndarray = None
    pose_spread: np.ndarray = None
    motion_centre: np.ndarray = None
    motion_spread: np.ndarray = None

    @classmethod
    def from_windows(cls, poses: list, motions: list, mode: str = "recording") -> "RecordingNorm":
        """From the windows' inputs ([T, D] arrays; None for a window without that input); `mode` one of MODES but
        none (recording_centre: every spread 1)."""
        pose = [p for p in poses if p is not None]
        motion = [m for m in motions if m is not None]
        norm = cls(*_centre_and_spread(pose), *_centre_and_spread(motion))
        if mode == "recording_centre":
            norm.pose_spread = None if norm.pose_spread is None else np.ones_like(norm.pose_spread)
            norm.motion_spread = None if norm.motion_spread is None else np.ones_like(norm.motion_spread)
        return norm

    def apply(self, pose, motion) -> tuple:
        """(pose, motion) of one window expressed against this recording; each clipped to +-CLIP like the features."""
        return _scaled(pose, self.pose_centre, self.pose_spread), _scaled(motion, self.motion_centre, self.motion_spread)


def _centre_and_spread(windows: list) -> tuple:
    if not windows:
        return None, None
    rows = np.concatenate(windows)
    centre, spread = np.zeros(rows.shape[1], np.float32), np.ones(rows.shape[1], np.float32)
    for column, values in enumerate(rows.T):
        values = values[values != 0]  # a missing keypoint's value: left out of the statistics
        if values.size:  # a feature that is always missing stays 0
            low, centre[column], high = np.percentile(values, [LOW, 50, HIGH])
            spread[column] = high - low if high - low >= MIN_SPREAD else 1.0
    return centre, spread


def _scaled(x, centre, spread):
    if x is None or centre is None:
        return x
    # missing stays 0, which is now the recording's median: a gap reads as typical, not as a value far off
    return np.where(x == 0, 0.0, np.clip((x - centre) / spread, -CLIP, CLIP)).astype(np.float32)
