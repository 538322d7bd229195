"""The one windowing rule of preprocessing and inference.

Windows of `size` frames start every `stride` frames from frame 0; when the last of them does not end on the
video's last frame, one more window is aligned to that last frame, so the tail of a video is always covered
(e.g. 100 frames, size 30, stride 15: starts 0, 15, 30, 45, 60 and 70). A window is usable only when the
animal was found (detected, or reused with keep_last_box) on every one of its frames.
"""
from collections import deque


def window_starts(num_frames: int, size: int, stride: int) -> list:
    """Start frames of every window of a video of num_frames frames (none when it is shorter than a window)."""
    if num_frames < size:
        return []
    starts = list(range(0, num_frames - size + 1, stride))
    if starts[-1] != num_frames - size:
        starts.append(num_frames - size)
    return starts


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
