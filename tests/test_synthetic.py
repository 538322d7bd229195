"""The synthetic generator: seeded, consistent ground truth, motion that distinguishes behaviours."""
import numpy as np

from utils.synthetic import (BEHAVIORS, make_long_video_dataset, render_video, render_video_file,
                              sample_label_sequence)
from utils.data.video_io import iter_frame_batches


def test_same_seed_same_video_and_looks_differ_between_seeds():
    a, b, c = render_video(["walk"] * 5, seed=1), render_video(["walk"] * 5, seed=1), render_video(["walk"] * 5, seed=2)
    assert np.array_equal(a.frames[4], b.frames[4]) and np.array_equal(a.keypoints, b.keypoints)
    assert np.abs(a.frames[0].astype(int).mean((0, 1)) - c.frames[0].astype(int).mean((0, 1))).max() > 1 or \
        not np.array_equal(a.keypoints, c.keypoints)


def test_keypoints_inside_box_and_on_the_animal():
    video = render_video(sample_label_sequence(120, np.random.default_rng(0)), seed=4)
    x1, y1, x2, y2 = video.bboxes.T
    kp = video.keypoints
    assert ((kp[..., 0] >= x1[:, None] - 1) & (kp[..., 0] <= x2[:, None] + 1)).all()
    assert ((kp[..., 1] >= y1[:, None] - 1) & (kp[..., 1] <= y2[:, None] + 1)).all()
    floor = np.median(video.frames[0].reshape(-1, 3), axis=0)
    for t in range(0, 120, 20):  # the neck keypoint sits on the body, which differs from the floor
        x, y = np.round(kp[t, 3]).astype(int)
        assert np.abs(video.frames[t][y, x].astype(int) - floor).max() > 40


def test_behaviours_differ_in_motion():
    def motion(behavior):
        v = render_video([behavior] * 60, seed=9)
        centre = (v.keypoints[:, 3] + v.keypoints[:, 4]) / 2  # body centre
        heading = np.arctan2(*(v.keypoints[:, 3] - v.keypoints[:, 4]).T[::-1])
        return np.linalg.norm(np.diff(centre, axis=0), axis=1).mean(), np.abs(np.diff(np.unwrap(heading))).mean()
    walk, rest, turn = motion("walk"), motion("rest"), motion("turn")
    assert walk[0] > 5 * rest[0] and walk[0] > 2 * turn[0]  # walk translates
    assert turn[1] > 5 * rest[1] and turn[1] > 2 * walk[1]  # turn rotates in place


def test_long_video_layout(tmp_path):
    (path,) = make_long_video_dataset(tmp_path, num_videos=1, num_frames=90, seed=2)
    rows = path.with_suffix(".csv").read_text().splitlines()
    assert rows[0] == "frame,behavior" and len(rows) == 91
    assert {r.split(",")[1] for r in rows[1:]} <= set(BEHAVIORS)
    frames = [f for _, batch in iter_frame_batches(path, 32) for f in batch]
    assert len(frames) == 90 and frames[0].shape == (480, 640, 3)
    truth = np.load(path.with_suffix(".truth.npz"))
    assert truth["keypoints"].shape == (90, 6, 2) and list(truth["labels"][:1]) == [rows[1].split(",")[1]]


def test_rendering_straight_to_file_matches_rendering_in_memory(tmp_path):
    labels = sample_label_sequence(40, np.random.default_rng(3))
    in_memory = render_video(labels, seed=8)
    streamed = render_video_file(tmp_path / "v.mp4", labels, seed=8)
    np.testing.assert_array_equal(streamed.keypoints, in_memory.keypoints)
    np.testing.assert_array_equal(streamed.bboxes, in_memory.bboxes)
    frames = [f for _, batch in iter_frame_batches(tmp_path / "v.mp4", 16) for f in batch]
    assert len(frames) == 40 and streamed.frames == []
    assert np.abs(frames[20].astype(int) - in_memory.frames[20]).mean() < 4  # the same picture, up to mp4 loss
