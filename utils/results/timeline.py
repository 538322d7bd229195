"""Per-frame probabilities -> labels -> bouts: the post-processing of inference, pure NumPy.

Order: frames whose top probability is below prob_threshold become `unknown`; labels are smoothed (median
of class indices is meaningless, so `median` smooths the probabilities over time before the argmax, and
`majority` takes the most frequent label in a centred window); bouts shorter than min_bout_s seconds
(`bout_frames`) are merged into the longer neighbour. Frames no window covered keep the label `no_window` (e.g. missed detections).
"""
import heapq
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
    """Most frequent label index in a centred window (ties: the current label, else the smallest index).
    Counts come from one cumulative sum per class: O(frames x classes)."""
    if window <= 1 or len(labels) == 0:
        return labels
    half, n = window // 2, len(labels)
    one_hot = np.zeros((n + 1, int(labels.max()) + 1), np.int32)
    one_hot[np.arange(1, n + 1), labels] = 1
    cumulative = one_hot.cumsum(0)
    lo, hi = np.maximum(np.arange(n) - half, 0), np.minimum(np.arange(n) + half + 1, n)
    counts = cumulative[hi] - cumulative[lo]  # (N, C) label counts in each centred window
    best = counts.argmax(1)
    keep = counts[np.arange(n), labels] == counts[np.arange(n), best]
    return np.where(keep, labels, best)


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
    labels = np.asarray(labels, dtype=object)
    if len(labels) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], len(labels)]
    sums = np.r_[0.0, np.cumsum(np.asarray(confidence, np.float64))]
    return [Bout(int(s), int(e) - 1, str(labels[s]), float((sums[e] - sums[s]) / (e - s)))
            for s, e in zip(starts, ends)]


def bout_frames(seconds: float, fps: float) -> int:
    """The shortest bout in frames for a duration in seconds at this frame rate (at least one frame)."""
    return max(1, int(round(seconds * fps)))


def merge_short_bouts(labels: np.ndarray, min_frames: int) -> np.ndarray:
    """Relabel bouts shorter than min_frames with their longer neighbour's label (equal: the earlier one),
    shortest first (ties: the earliest); a merge joins equal neighbours into one bout, which may then be long
    enough. A heap of runs and a linked list of neighbours: O(n log n) instead of re-scanning every bout."""
    labels = np.asarray(labels, dtype=object).copy()
    bouts = to_bouts(labels, np.zeros(len(labels)))
    if min_frames <= 1 or len(bouts) <= 1:
        return labels
    start = [b.start_frame for b in bouts]
    end = [b.end_frame for b in bouts]
    name = [b.behavior for b in bouts]
    prev = list(range(-1, len(bouts) - 1))
    nxt = list(range(1, len(bouts) + 1))
    nxt[-1] = -1
    alive = [True] * len(bouts)
    length = lambda i: end[i] - start[i]  # noqa: E731  (frames - 1, as the order of merging is defined)
    heap = [(length(i), start[i], i) for i in range(len(bouts)) if length(i) + 1 < min_frames]
    heapq.heapify(heap)
    count = len(bouts)

    def absorb(keep: int, gone: int) -> None:  # `gone` lies next to `keep` and has its label now
        start[keep], end[keep] = min(start[keep], start[gone]), max(end[keep], end[gone])
        alive[gone] = False
        left, right = prev[gone], nxt[gone]
        if left != -1:
            nxt[left] = right
        if right != -1:
            prev[right] = left

    while heap and count > 1:
        size, first, i = heapq.heappop(heap)
        if not alive[i] or (size, first) != (length(i), start[i]) or size + 1 >= min_frames:
            continue  # a stale entry: the bout has grown or gone since
        neighbours = [j for j in (prev[i], nxt[i]) if j != -1]
        target = max(neighbours, key=length)  # max keeps the first of equals: the earlier neighbour
        absorb(target, i)
        count -= 1
        for j in (prev[target], nxt[target]):  # equal labels meet across the merged bout: join them
            if j != -1 and alive[j] and name[j] == name[target]:
                absorb(target, j)
                count -= 1
        if length(target) + 1 < min_frames:
            heapq.heappush(heap, (length(target), start[target], target))
    for i in range(len(bouts)):
        if alive[i]:
            labels[start[i]:end[i] + 1] = name[i]
    return labels
