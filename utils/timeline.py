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


def segment_f1(true_labels, pred_labels, class_names: list, iou_threshold: float = 0.5) -> dict:
    """Bout-level F1 per class: a predicted bout matches an unmatched true bout of the same class when their
    frame IoU >= iou_threshold (one-to-one, best IoU first). Frames whose true label is None are ignored
    for true bouts. Returns {class: {"precision", "recall", "f1", "true_bouts", "pred_bouts"}} and "macro_f1"."""
    true_bouts = [b for b in to_bouts(np.asarray(true_labels, dtype=object), np.zeros(len(true_labels)))
                  if b.behavior != "None"]
    pred_bouts = to_bouts(np.asarray(pred_labels, dtype=object), np.zeros(len(pred_labels)))
    result = {}
    for name in class_names:
        t = [(b.start_frame, b.end_frame) for b in true_bouts if b.behavior == name]
        p = [(b.start_frame, b.end_frame) for b in pred_bouts if b.behavior == name]
        pairs = sorted(((_iou(a, b), i, j) for i, a in enumerate(t) for j, b in enumerate(p)), reverse=True)
        used_t, used_p, matched = set(), set(), 0
        for iou, i, j in pairs:
            if iou >= iou_threshold and i not in used_t and j not in used_p:
                used_t.add(i)
                used_p.add(j)
                matched += 1
        precision = matched / len(p) if p else 0.0
        recall = matched / len(t) if t else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[name] = {"precision": precision, "recall": recall, "f1": f1, "true_bouts": len(t), "pred_bouts": len(p)}
    present = [c for c in class_names if result[c]["true_bouts"] or result[c]["pred_bouts"]]
    result["macro_f1"] = float(np.mean([result[c]["f1"] for c in present])) if present else 0.0
    return result


def _iou(a: tuple, b: tuple) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    return max(inter, 0) / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - max(inter, 0))
