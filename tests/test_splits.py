"""Split assignment: video splits never leak, classes are stratified, ratios and split files validated."""
import pytest

from utils.errors import UserError
from utils.data.splits import read_split_file, split_by_video, split_counts, stratified_assign, validate_ratios


@pytest.mark.parametrize("n,expected", [(1, [1, 0, 0]), (2, [2, 0, 0]), (3, [1, 1, 1]), (10, [7, 2, 1]),
                                        (20, [14, 3, 3])])
def test_split_counts(n, expected):
    counts = split_counts(n, (0.7, 0.15, 0.15))
    assert sum(counts) == n
    assert counts == expected or (n == 10 and sorted(counts[1:]) == [1, 2] and counts[0] == 7)


@pytest.mark.parametrize("ratios", [(0.7, 0.2, 0.2), (1.2, -0.1, -0.1), (0.0, 0.5, 0.5), (0.5, 0.5, float("nan"))])
def test_bad_ratios(ratios):
    with pytest.raises(UserError, match="ratio"):
        validate_ratios(*ratios)


def test_video_split_is_stratified_and_deterministic():
    videos = {f"{c}/v{i}.mp4": [c] * 5 for c in ("walk", "rest", "groom") for i in range(6)}
    a = split_by_video(videos, (0.5, 0.25, 0.25), seed=1)
    assert a == split_by_video(videos, (0.5, 0.25, 0.25), seed=1)
    assert a != split_by_video(videos, (0.5, 0.25, 0.25), seed=2)
    for c in ("walk", "rest", "groom"):
        got = sorted(a[v] for v in videos if v.startswith(c))
        assert got.count("train") == 3 and got.count("val") >= 1 and got.count("test") >= 1


def test_window_assignment_is_per_class():
    groups = {"a": [f"a{i}" for i in range(10)], "b": [f"b{i}" for i in range(10)]}
    a = stratified_assign(groups, (0.6, 0.2, 0.2), seed=0)
    for c in "ab":
        assert sorted(a[f"{c}{i}"] for i in range(10)).count("train") == 6


def test_split_file(tmp_path):
    videos = ["walk/a.mp4", "rest/a.mp4", "rest/b.mp4"]
    path = tmp_path / "splits.csv"
    path.write_text("video,split\nwalk/a.mp4,train\nrest/a.mp4,val\nb.mp4,test\n")
    assert read_split_file(path, videos) == {"walk/a.mp4": "train", "rest/a.mp4": "val", "rest/b.mp4": "test"}
    path.write_text("video,split\na.mp4,train\n")
    with pytest.raises(UserError, match="matches several videos"):
        read_split_file(path, videos)
    path.write_text("video,split\nwalk/a.mp4,train\n")
    with pytest.raises(UserError, match="no split for 2 video"):
        read_split_file(path, videos)
    path.write_text("video,split\nwalk/a.mp4,holdout\n")
    with pytest.raises(UserError, match="not one of train, val, test"):
        read_split_file(path, videos)


def test_long_videos_with_different_majority_classes_still_fill_validation():
    """Six long videos, each its own majority class group of one or two: the old per-class cut sent all to train."""
    videos = {f"session_{i}.mp4": [c] * 10 for i, c in enumerate(["groom", "rear", "rest", "turn", "walk", "walk"])}
    a = split_by_video(videos, (0.75, 0.25, 0.0), seed=0)
    assert list(a.values()).count("val") == split_counts(6, (0.75, 0.25, 0.0))[1] == 1


def test_time_blocked_folds_hold_each_window_out_once_and_never_fit_an_overlapping_one():
    from utils.data.splits import time_blocked_folds
    entries = [{"source_video": video, "start_frame": start, "end_frame": start + 29}
               for video, length in (("a.mp4", 300), ("b.mp4", 150)) for start in range(0, length - 29, 5)]
    folds = time_blocked_folds(entries, 5)
    assert len(folds) == 5
    held = sorted(i for _, block in folds for i in block)
    assert held == list(range(len(entries)))  # every window predicted exactly once
    for fit, block in folds:
        assert {entries[i]["source_video"] for i in block} == {"a.mp4", "b.mp4"}  # a block of time in each video
        for i in fit:
            for j in block:
                if entries[i]["source_video"] == entries[j]["source_video"]:
                    assert entries[i]["end_frame"] < entries[j]["start_frame"] or \
                        entries[i]["start_frame"] > entries[j]["end_frame"]
        # only the windows that overlap the block are left out of fitting: 5 on each side in each video
        assert len(fit) >= len(entries) - len(block) - 4 * 5
    assert time_blocked_folds(entries[:1], 5) == []  # one window: nothing left to fit on
