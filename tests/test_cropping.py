"""Crop geometry, keypoint mapping, keep_last_box tracking, the background detector and detector errors."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from cropping import crop_frame, map_keypoints_to_crop, square_crop_box
from detectors import (DETECTORS, STATUS_DETECTED, STATUS_MISSED, STATUS_REUSED, Detection, Detector, build_detector,
                       load_yolo)
from frame_pipeline import BoxTracker
from utils.errors import UserError
from utils.schema import PreprocessingConfig


def blob_centroid(image: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre of a single bright blob, in continuous pixel coordinates (centre = i + 0.5)."""
    ys, xs = np.nonzero(image > 0)
    w = image[ys, xs].astype(np.float64)
    return np.array([(xs * w).sum() / w.sum() + 0.5, (ys * w).sum() / w.sum() + 0.5])


@pytest.mark.parametrize("box,crop_size", [
    ((100, 120, 180, 170), 224),  # upscale
    ((300, 200, 500, 420), 64),  # downscale (INTER_AREA)
    ((-20, 400, 60, 470), 128),  # box over the left/bottom border: padding beyond the frame
    ((603.4, 10.2, 639.9, 60.7), 96),  # fractional box at the right edge
])
def test_keypoints_map_to_the_same_pixels_in_the_crop(box, crop_size):
    x1, y1, x2, y2 = box
    points = [(x1 + 0.3 * (x2 - x1), y1 + 0.4 * (y2 - y1)), (x1 + 0.8 * (x2 - x1), y1 + 0.7 * (y2 - y1))]
    crop_box = square_crop_box(box, pad_ratio=0.2)
    for px, py in points:
        px, py = int(np.clip(px, 2, 637)), int(np.clip(py, 2, 477))
        frame = np.zeros((480, 640), np.uint8)
        frame[py - 1:py + 2, px - 1:px + 2] = 255  # 3x3 dot centred on pixel (px, py)
        crop = crop_frame(frame, crop_box, crop_size)
        expected = map_keypoints_to_crop(np.array([[px + 0.5, py + 0.5]]), crop_box, crop_size)[0]
        assert np.abs(blob_centroid(crop) - expected).max() < 1.0


def test_square_crop_is_centred_padded_and_keeps_aspect():
    crop_box = square_crop_box((100, 100, 200, 150), pad_ratio=0.25)
    x1, y1, x2, y2 = crop_box
    assert x2 - x1 == y2 - y1 == 150  # max(100, 50) * (1 + 2 * 0.25)
    assert (x1 + x2) / 2 == 150 and (y1 + y2) / 2 == 125
    frame = np.full((480, 640, 3), 200, np.uint8)
    crop = crop_frame(frame, square_crop_box((0, 0, 40, 40), 0.5), 80)
    assert crop.shape == (80, 80, 3)
    assert crop[:10, :10].max() == 0 and crop[-10:, -10:].min() == 200  # black only beyond the frame


def test_a_circle_stays_a_circle():
    frame = np.zeros((480, 640), np.uint8)
    cv2.circle(frame, (320, 240), 30, 255, -1)
    crop = crop_frame(frame, square_crop_box((290, 225, 350, 255), 0.2), 100)  # wide box: square crop, no stretch
    ys, xs = np.nonzero(crop > 127)
    assert abs((xs.max() - xs.min()) - (ys.max() - ys.min())) <= 1


def test_tracker_statuses_and_reuse_limit():
    box = np.array([1, 2, 3, 4], np.float32)
    kps = np.ones((2, 3), np.float32)
    hit, miss = Detection(box, 0.9, kps, STATUS_DETECTED), Detection()
    tracker = BoxTracker(keep_last_box=True, max_reuse=2)
    out = [tracker.update(d) for d in (miss, hit, miss, miss, miss, hit)]
    assert [d.status for d in out] == [STATUS_MISSED, STATUS_DETECTED, STATUS_REUSED, STATUS_REUSED,
                                       STATUS_MISSED, STATUS_DETECTED]
    assert out[2].confidence == 0.9 and np.array_equal(out[2].keypoints, kps)
    plain = BoxTracker(keep_last_box=False)
    assert [plain.update(d).status for d in (hit, miss)] == [STATUS_DETECTED, STATUS_MISSED]


def test_registry_lists_detectors_and_rejects_unknown():
    assert DETECTORS.names() == ["background", "pose_file", "yolo"]
    with pytest.raises(UserError, match="unknown detector .dlc.; valid: background, pose_file, yolo"):
        build_detector("dlc", SimpleNamespace())


def test_background_detector_finds_a_moving_animal(tmp_path):
    from utils.synthetic import render_video, write_video
    video = render_video(["walk"] * 60, seed=11)
    path = tmp_path / "walk.mp4"
    write_video(path, video.frames)
    cfg = SimpleNamespace(bg_num_samples=15, bg_threshold=25, bg_min_area=80)
    detector = build_detector("background", cfg)
    detector.prepare(path)
    detections = detector.detect(video.frames[::10])
    for det, truth in zip(detections, video.bboxes[::10]):
        assert det.status == STATUS_DETECTED
        centre = (det.box[:2] + det.box[2:]) / 2
        assert np.linalg.norm(centre - (truth[:2] + truth[2:]) / 2) < 20


def test_missing_weights_say_no_download_and_what_to_do(tmp_path):
    with pytest.raises(UserError, match=r"not found.*cannot be downloaded automatically.*--yolo_weights"):
        load_yolo(tmp_path / "yolov8n-pose.pt")
    with pytest.raises(UserError, match="no YOLO weights given"):
        load_yolo(None)


def test_damaged_weights_are_a_clear_error(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(UserError, match=r"detector weights .*broken\.pt are not a PyTorch zip checkpoint"):
        load_yolo(bad)


def test_yolo_pose_task_needs_pose_weights(tiny_yolo):
    cfg = PreprocessingConfig(yolo_imgsz=320, device="cpu", yolo_weights=str(tiny_yolo), yolo_task="detect",
                              detector_backend="torch")
    detector = build_detector("yolo", cfg)
    assert detector.task == "detect" and detector.num_keypoints == 0
    cfg.yolo_task = "auto"
    assert build_detector("yolo", cfg).num_keypoints == 6


class IndexDetector(Detector):
    """Reads the frame index written into pixel (0, 0) and returns a box and keypoints moving linearly with it;
    frames listed in `misses` are missed. Records which frames it saw."""

    def __init__(self, misses=()):
        self.seen, self.misses = [], set(misses)

    def detect(self, frames):
        out = []
        for f in frames:
            i = int(f[0, 0, 0])
            self.seen.append(i)
            kp = np.array([[2.0 * i, 3.0, 0.9], [i + 1.0, 5.0, 0.5]], np.float32)
            out.append(Detection() if i in self.misses else
                       Detection(np.array([i, 0, i + 10, 10], np.float32), 0.8, kp, STATUS_DETECTED))
        return out


def index_frames(n):
    frames = np.zeros((n, 2, 2, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(n)
    return list(frames)


def run_sparse(detector, n, every, batch):
    from detectors import SparseDetector
    sparse, frames, out = SparseDetector(detector, every), index_frames(n), []
    for first in range(0, n, batch):
        out += sparse.push(first, frames[first:first + batch])
    return out + sparse.finish()


def test_detect_every_interpolates_between_detections_in_frame_order():
    from detectors import STATUS_INTERPOLATED
    detector = IndexDetector()
    out = run_sparse(detector, 10, every=4, batch=3)
    assert [i for i, _, _ in out] == list(range(10)) and detector.seen == [0, 4, 8, 9]
    for i, _, det in out:  # linear motion: interpolation is exact
        assert det.status == (STATUS_DETECTED if i in (0, 4, 8, 9) else STATUS_INTERPOLATED)
        np.testing.assert_allclose(det.box, [i, 0, i + 10, 10], atol=1e-5)
        np.testing.assert_allclose(det.keypoints, [[2 * i, 3, 0.9], [i + 1, 5, 0.5]], atol=1e-5)
    every_frame = IndexDetector()
    assert [d.status for _, _, d in run_sparse(every_frame, 7, every=1, batch=4)] == [STATUS_DETECTED] * 7
    assert every_frame.seen == list(range(7))


def test_detect_every_leaves_frames_next_to_a_missed_detection_missed():
    out = run_sparse(IndexDetector(misses={4}), 9, every=4, batch=5)
    statuses = {i: d.status for i, _, d in out}
    assert [statuses[i] for i in range(9)] == ["detected"] + ["missed"] * 7 + ["detected"]
    tracker = BoxTracker(keep_last_box=False)
    assert tracker.update(out[1][2]).status == STATUS_MISSED  # and keep_last_box does not invent one
