"""Per-frame probabilities -> labels -> bouts: the post-processing of inference, pure NumPy.

Order: frames whose top probability is below prob_threshold become `unknown`; labels are smoothed (median
of class indices is meaningless, so `median` smooths the probabilities over time before the argmax, and
`majority` takes the most frequent label in a centred window); bouts shorter than min_bout_frames are merged
into the longer neighbour. Frames no window covered keep the label `no_window` (e.g. missed detections).
"""
from dataclasses import dataclass

import numpy as np

UNKNOWN, NO_WINDOW = "unknown", "no_window"


@dataclass
class Bout:
    start_frame: int
    end_frame: int  # inclusive
    behavior: str
    mean_confidence: float


def smooth_probabilities(probs: np.ndarray, window: int) -> np.ndarray:
    """Running median of each class's probability over `window` frames (edges use the frames available)."""
    if window <= 1:
        return probs
    half = window // 2
    padded = np.pad(probs, ((half, half), (0, 0)), mode="edge")
    stacked = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # (N, C, window)
    return np.median(stacked, axis=-1)


def majority_filter(labels: np.ndarray, window: int) -> np.ndarray:
    """Most frequent label index in a centred window (ties: the current label)."""
    if window <= 1:
        return labels
    half, out = window // 2, labels.copy()
    for i in range(len(labels)):
        values, counts = np.unique(labels[max(0, i - half): i + half + 1], return_counts=True)
        best = counts.max()
        out[i] = labels[i] if counts[values == labels[i]].sum() == best else values[counts.argmax()]
    return out


def frame_labels(probs: np.ndarray, covered: np.ndarray, class_names: list, prob_threshold: float = 0.0,
                 smoothing: str = "none", smoothing_window: int = 1) -> tuple:
    """(label names [N], confidence [N]) from per-frame probabilities [N, C]; covered [N] marks frames that
    at least one window classified."""
    probs = smooth_probabilities(probs, smoothing_window) if smoothing == "median" else probs
    index = probs.argmax(1)
    if smoothing == "majority":
        index = majority_filter(index, smoothing_window)
    confidence = probs[np.arange(len(probs)), index]
    names = np.array(class_names + [UNKNOWN, NO_WINDOW], dtype=object)
    index = np.where(confidence < prob_threshold, len(class_names), index)
    index = np.where(covered, index, len(class_names) + 1)
    return names[index], np.where(covered, confidence, 0.0)


def to_bouts(labels: np.ndarray, confidence: np.ndarray) -> list:
    """Runs of equal labels as Bouts: non-overlapping, covering every frame in order."""
    bouts, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            bouts.append(Bout(start, i - 1, str(labels[start]), float(np.mean(confidence[start:i]))))
            start = i
    return bouts


def merge_short_bouts(labels: np.ndarray, min_frames: int) -> np.ndarray:
    """Relabel bouts shorter than min_frames with their longer neighbour's label, shortest first."""
    labels = labels.copy()
    while min_frames > 1:
        bouts = to_bouts(labels, np.zeros(len(labels)))
        short = [i for i, b in enumerate(bouts) if b.end_frame - b.start_frame + 1 < min_frames]
        if not short or len(bouts) == 1:
            break
        i = min(short, key=lambda j: bouts[j].end_frame - bouts[j].start_frame)
        neighbours = [bouts[j] for j in (i - 1, i + 1) if 0 <= j < len(bouts)]
        target = max(neighbours, key=lambda b: b.end_frame - b.start_frame)
        labels[bouts[i].start_frame: bouts[i].end_frame + 1] = target.behavior
    return labels
