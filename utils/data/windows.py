"""The one windowing rule of preprocessing and inference.

Windows of `size` frames start every `stride` frames from frame 0; when the last of them does not end on the
video's last frame, one more window is aligned to that last frame, so the tail of a video is always covered
(e.g. 100 frames, size 30, stride 15: starts 0, 15, 30, 45, 60 and 70). A window is usable only when the
animal was found (detected, or reused with keep_last_box) on every one of its frames.

A window is labelled (training) and classified (inference) by its centre frame, so a frame's probabilities are
the mean of the windows covering it weighted by how close the frame lies to each window's centre
(`frame_weights`). With flat weights a window's label spreads to frames half a window away: on bouts of 20-75
frames, window 30 / stride 15, even a perfect window classifier scores per-frame macro-F1 0.85 flat against
0.92 centre-weighted, and 0.97 at stride 5 (`python bench/bench_ceiling.py`, bench/README.md).
"""
from collections import deque
from functools import lru_cache

import numpy as np


FRAME_RATE_TOLERANCE = 0.05  # a recording whose frame rate is further from the training data's is "another rate"


def frame_rate_differs(fps: float, trained_fps) -> bool:
    """True when a recording's frame rate is more than FRAME_RATE_TOLERANCE away from the training data's."""
    return bool(trained_fps) and abs(fps / trained_fps - 1) > FRAME_RATE_TOLERANCE


def window_starts(num_frames: int, size: int, stride: int) -> list:
    """Start frames of every window of a video of num_frames frames (none when it is shorter than a window)."""
    if num_frames < size:
        return []
    starts = list(range(0, num_frames - size + 1, stride))
    if starts[-1] != num_frames - size:
        starts.append(num_frames - size)
    return starts


@lru_cache(maxsize=8)
def frame_weights(size: int) -> np.ndarray:
    """Weight of each frame of a window in its frames' probabilities: a Gaussian over the window (sigma a sixth
    of it) peaking at the centre frame; the edges keep a small weight so every covered frame has one. Computed
    once per size (read-only: every window shares it)."""
    offset = np.arange(size) - (size - 1) / 2
    weights = np.exp(-0.5 * (offset / max(size / 6, 0.5)) ** 2)
    weights.flags.writeable = False
    return weights


def inference_stride(size: int, encodes_every_window: bool) -> int:
    """Default stride at inference: a sixth of the window, so each frame's label comes from windows centred
    near it; half the window for video backbones, which encode every window anew (three times the cost)."""
    return max(size // (2 if encodes_every_window else 6), 1)


def dropout_index(index: np.ndarray, probability: float, rng) -> np.ndarray:
    """Frame dropout (training augmentation): each frame after the first replaced by its predecessor with
    `probability` (rng: random.Random), as tracks sampled more coarsely (bench/README.md, "Augmenting for other
    trackers and frame rates")."""
    index = index.copy()
    for i in range(1, len(index)):
        if rng.random() < probability:
            index[i] = index[i - 1]
    return index


class Windower:
    """Streaming form of window_starts: push frames in order, get each window as soon as it is complete; the
    tail window comes from finish(). Keeps only the last `size` items."""

    def __init__(self, size: int, stride: int):
        self.size, self.stride = size, stride
        self.buffer = deque(maxlen=size)
        self.count, self.last_start = 0, None

    def push(self, item) -> list:
        """[(start, [items])] of the window that `item` completes, or []."""
        self.buffer.append(item)
        self.count += 1
        start = self.count - self.size
        if start >= 0 and start % self.stride == 0:
            self.last_start = start
            return [(start, list(self.buffer))]
        return []

    def finish(self) -> list:
        """[(start, [items])] of the tail window aligned to the last frame, when the strided ones missed it."""
        start = self.count - self.size
        if start >= 0 and start != self.last_start:
            self.last_start = start
            return [(start, list(self.buffer))]
        return []


def usable(records) -> bool:
    """True when no frame of the window was missed (every frame has a crop)."""
    return not any(r.missed for r in records)
