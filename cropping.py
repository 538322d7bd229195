"""Crop geometry of Stage A: the square crop around a detection and the keypoints mapped into it.

The box is expanded to a square of side max(w, h) * (1 + 2 * pad_ratio) centred on the box, rounded to whole
pixels, cut out (pixels beyond the frame are black) and resized to crop_size. The mapping frame -> crop is
x' = (x - crop_x1) * crop_size / side, exact in continuous pixel coordinates.

Detectors are in detectors.py, the frame pipeline that calls both in frame_pipeline.py.
"""
import cv2
import numpy as np


def square_crop_box(box, pad_ratio: float) -> np.ndarray:
    """Integer square [x1, y1, x2, y2] centred on the box, side max(w, h) * (1 + 2 * pad_ratio), at least 2 px."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(2, int(round(max(x2 - x1, y2 - y1) * (1 + 2 * pad_ratio))))
    cx1 = int(round((x1 + x2) / 2 - side / 2))
    cy1 = int(round((y1 + y2) / 2 - side / 2))
    return np.array([cx1, cy1, cx1 + side, cy1 + side], np.int32)


def crop_frame(frame: np.ndarray, crop_box, crop_size: int) -> np.ndarray:
    """Cut crop_box out of frame (black beyond the border) and resize to crop_size x crop_size; same channels."""
    x1, y1, x2, y2 = (int(v) for v in crop_box)
    h, w = frame.shape[:2]
    ix1, iy1, ix2, iy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    side = x2 - x1
    patch = np.zeros((side, side) + frame.shape[2:], frame.dtype)
    if ix2 > ix1 and iy2 > iy1:
        patch[iy1 - y1:iy2 - y1, ix1 - x1:ix2 - x1] = frame[iy1:iy2, ix1:ix2]
    interp = cv2.INTER_AREA if side > crop_size else cv2.INTER_LINEAR
    return cv2.resize(patch, (crop_size, crop_size), interpolation=interp)


def map_keypoints_to_crop(keypoints_xy: np.ndarray, crop_box, crop_size: int) -> np.ndarray:
    """Frame-pixel keypoints [..., 2] -> crop-pixel keypoints, exact for the crop made by crop_frame."""
    x1, y1, x2, _ = (float(v) for v in crop_box)
    scale = crop_size / (x2 - x1)
    return ((np.asarray(keypoints_xy, np.float32) - np.array([x1, y1], np.float32)) * scale).astype(np.float32)


def draw_keypoints(crop_rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """A copy of the crop with keypoints drawn: for QA images only, never for training data."""
    out = crop_rgb.copy()
    colours = [(255, 60, 60), (60, 200, 60), (60, 120, 255), (255, 200, 0), (200, 0, 200), (0, 200, 200)]
    for k, (x, y, c) in enumerate(keypoints):
        if np.isfinite(x) and np.isfinite(y) and c > 0:
            cv2.circle(out, (int(round(x)), int(round(y))), 3, colours[k % len(colours)], -1, cv2.LINE_AA)
    return out


def crop_detection(frame_bgr: np.ndarray, detection, crop_size: int, pad_ratio: float) -> tuple:
    """(RGB crop or None, crop_box [4] or NaNs) for one frame's detection; None when the frame was missed, or
    has no pixels (a pose file without video: the crop box is still given)."""
    if detection.box is None:
        return None, np.full(4, np.nan, np.float32)
    crop_box = square_crop_box(detection.box, pad_ratio)
    if frame_bgr is None:
        return None, crop_box
    return cv2.cvtColor(crop_frame(frame_bgr, crop_box, crop_size), cv2.COLOR_BGR2RGB), crop_box
