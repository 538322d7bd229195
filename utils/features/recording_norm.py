"""Per-recording feature normalisation (`--feature_normalisation recording`): each input feature mapped so that its
own recording's 10th percentile is 0 and its 90th percentile 1.

Why: a rig, a tracker or an animal shifts whole feature distributions (a noisier tracker raises every speed at rest,
another body shape moves every distance), while behaviours keep their place within the recording's own range.
Expressed against its recording, a feature keeps the contrast between behaviours and loses the rig's offset and gain
(bench/README.md, "Per-recording normalisation").
Why the 10th and 90th percentiles and not the median: a recording's median moves with how much of it is spent in
each behaviour (a fear-conditioning session can freeze for 10% or 70% of the time), its extremes much less, as long
as the lowest and the highest state each fill more than a tenth of it. On generated recordings where one behaviour
took two thirds of the time, centring on the median lost 0.05-0.19 of macro-F1, these percentiles 0.04-0.05
(bench/README.md). The price stays: a recording spent almost entirely in one behaviour is described relative to
that behaviour, so the statistics need recordings of a few minutes that show the animal both still and moving.

Features are 0 where a keypoint is missing (utils.features.motion): such values are left out of the statistics and
stay 0, instead of becoming a value far from every behaviour.

Training takes the statistics over every window of a recording in its split (dense models: over the recording's
stitched frames), inference over every window of the video or pose file (windows overlap evenly, so each frame
counts about equally often). Inference therefore holds a recording's window inputs until its last frame (about 10 KB
a window), which is why only models that do not see frames take this setting, and why live mode cannot.
"""
from dataclasses import dataclass

import numpy as np

from utils.features.motion import CLIP

LOW, HIGH = 10, 90  # percentiles mapped to 0 and 1
MIN_SPREAD = 1e-3  # a (nearly) constant feature, such as a confidence that is always 1, is only shifted
MODES = ("none", "recording")


@dataclass
class RecordingNorm:
    """Low percentile and spread (high - low) of every pose and box-motion feature of one recording (None where the
    input is absent)."""
    pose_low: np.ndarray = None
    pose_spread: np.ndarray = None
    motion_low: np.ndarray = None
    motion_spread: np.ndarray = None

    @classmethod
    def from_windows(cls, poses: list, motions: list) -> "RecordingNorm":
        """From the windows' inputs ([T, D] arrays; None for a window without that input)."""
        pose = [p for p in poses if p is not None]
        motion = [m for m in motions if m is not None]
        return cls(*_low_and_spread(pose), *_low_and_spread(motion))

    def apply(self, pose, motion) -> tuple:
        """(pose, motion) of one window expressed against this recording; each clipped to +-CLIP like the features."""
        return _scaled(pose, self.pose_low, self.pose_spread), _scaled(motion, self.motion_low, self.motion_spread)


def _low_and_spread(windows: list) -> tuple:
    if not windows:
        return None, None
    rows = np.concatenate(windows)
    low, spread = np.zeros(rows.shape[1], np.float32), np.ones(rows.shape[1], np.float32)
    for column, values in enumerate(rows.T):
        values = values[values != 0]  # a missing keypoint's value: left out of the statistics
        if values.size:  # a feature that is always missing stays 0
            low[column], high = np.percentile(values, [LOW, HIGH])
            spread[column] = high - low[column] if high - low[column] >= MIN_SPREAD else 1.0
    return low, spread


def _scaled(x, low, spread):
    if x is None or low is None:
        return x
    return np.where(x == 0, 0.0, np.clip((x - low) / spread, -CLIP, CLIP)).astype(np.float32)  # missing stays 0


MIX_GAP = 0.3  # a behaviour's share of windows differing this much between recordings moves their percentiles
MIN_WINDOWS = 20  # recordings with fewer windows are too short to judge


def mix_problem(recordings: list, labels: list):
    """A one-line warning when the recordings (one key per window, beside its label name) show such different mixes
    of behaviours that their statistics would differ by behaviour rather than by rig; None otherwise."""
    windows = {}
    for key, label in zip(recordings, labels):
        windows.setdefault(key, []).append(label)
    windows = {k: v for k, v in windows.items() if len(v) >= MIN_WINDOWS}
    worst = (0.0, None, None, None)
    for label in sorted(set(labels)):
        shares = {k: v.count(label) / len(v) for k, v in windows.items()}
        low, high = min(shares, key=shares.get, default=None), max(shares, key=shares.get, default=None)
        if low is not None and shares[high] - shares[low] > worst[0]:
            worst = (shares[high] - shares[low], label, (low, shares[low]), (high, shares[high]))
    gap, label, low, high = worst
    if gap <= MIX_GAP:
        return None
    return (f"feature_normalisation recording assumes every recording shows a similar mix of behaviours, but {label} "
            f"fills {low[1]:.0%} of the windows of {low[0]} and {high[1]:.0%} of {high[0]}: their statistics then "
            f"differ by behaviour, not by rig, and the model can fail (bench/README.md, 'Per-recording "
            f"normalisation'); use --feature_normalisation none unless every recording is long and alike in mix")


MIN_COVERAGE = 0.8  # below this share of its frames in windows, a recording's statistics are not the whole recording's


def coverage_problem(entries: list, videos: dict, keys: list):
    """A one-line warning when a recording's windows (manifest entries, each with its recording key) cover less than
    MIN_COVERAGE of its frames (manifest `videos`): training then takes its statistics from the labelled stretches,
    inference from every frame. None otherwise."""
    covered, sources = {}, {}
    for entry, key in zip(entries, keys):
        covered.setdefault(key, set()).update(range(entry["start_frame"], entry["end_frame"] + 1))
        sources[key] = entry["source_video"].split("#")[0]
    shares = {k: len(frames) / videos[sources[k]]["frames"] for k, frames in covered.items()
              if videos.get(sources[k], {}).get("frames")}
    worst = min(shares, key=shares.get, default=None)
    if worst is None or shares[worst] >= MIN_COVERAGE:
        return None
    return (f"feature_normalisation recording: the windows of {sources[worst]} cover {shares[worst]:.0%} of its "
            f"frames (labelled in stretches), so training takes its statistics from those stretches while inference "
            f"takes them from every frame; label recordings whole, or use --feature_normalisation none")
