"""The one windowing rule (utils/data/windows.py): strided starts plus a tail window aligned to the last frame."""
import pytest

from utils.data.windows import Windower, window_starts


@pytest.mark.parametrize("n,size,stride,expected", [
    (100, 30, 15, [0, 15, 30, 45, 60, 70]),  # 70 = 100 - 30: the tail is covered
    (90, 30, 15, [0, 15, 30, 45, 60]),  # already ends on the last frame: no extra window
    (30, 30, 15, [0]),
    (29, 30, 15, []),  # shorter than a window
    (64, 16, 4, list(range(0, 49, 4))),
    (10, 3, 5, [0, 5, 7]),  # stride larger than the window: gaps, but the tail is covered
])
def test_window_starts(n, size, stride, expected):
    assert window_starts(n, size, stride) == expected


@pytest.mark.parametrize("n,size,stride", [(100, 30, 15), (90, 30, 15), (29, 30, 15), (57, 8, 3), (10, 3, 5)])
def test_streaming_windows_equal_the_rule_and_hold_their_frames(n, size, stride):
    windower, got = Windower(size, stride), []
    for frame in range(n):
        got += windower.push(frame)
    got += windower.finish()
    assert [s for s, _ in got] == window_starts(n, size, stride)
    for start, items in got:
        assert items == list(range(start, start + size))
    assert windower.finish() == []  # finishing twice adds nothing
