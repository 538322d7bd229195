"""Background decoding (prefetched): same items in order, errors reach the caller, early stop ends the thread."""
import threading

import numpy as np
import pytest

from utils.errors import UserError
from utils.synthetic import render_video, write_video
from utils.data.video_io import iter_frame_batches, prefetched


def test_prefetched_batches_equal_direct_decoding(tmp_path):
    write_video(tmp_path / "v.mp4", render_video(["walk"] * 37, seed=2).frames)
    direct = list(iter_frame_batches(tmp_path / "v.mp4", 8))
    ahead = list(prefetched(iter_frame_batches(tmp_path / "v.mp4", 8), depth=2))
    assert [first for first, _ in ahead] == [0, 8, 16, 24, 32] == [first for first, _ in direct]
    assert all(np.array_equal(a, b) for (_, x), (_, y) in zip(ahead, direct) for a, b in zip(x, y))


def test_error_in_the_decoding_thread_reaches_the_caller(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(UserError, match="bad.mp4"):
        list(prefetched(iter_frame_batches(tmp_path / "bad.mp4", 8)))


def test_stopping_early_ends_the_thread_and_closes_the_source():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    items = prefetched(endless(), depth=2)
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    items.close()  # what a `with closing(...)` does when the caller fails or is interrupted
    assert closed.is_set() and not any(t.name == "prefetch" for t in threading.enumerate())
