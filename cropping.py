"""Stage A: find the single animal in each frame and cut a square crop around it.

Detectors come from one registry (`list_detectors()`, `build_detector(name, cfg)`):
    yolo        Ultralytics YOLO detect or pose weights, run on batches of frames
    background  median background + largest foreground blob, for a static camera; needs no weights

Crop geometry: the box is expanded to a square of side max(w, h) * (1 + 2 * pad_ratio) centred on the box,
rounded to whole pixels, cut out (pixels beyond the frame are black) and resized to crop_size. The mapping
frame -> crop is x' = (x - crop_x1) * crop_size / side, exact in continuous pixel coordinates.
"""
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from utils.device import resolve_device, set_cpu_threads
from utils.errors import UserError
from utils.video_io import sample_frames

log = logging.getLogger(__name__)
STATUS_DETECTED, STATUS_REUSED, STATUS_MISSED = "detected", "reused", "missed"


@dataclass
class Detection:
    """One frame's result. box: xyxy frame pixels or None; keypoints: [K,3] (x, y, conf) frame pixels or None."""
    box: np.ndarray = None
    confidence: float = 0.0
    keypoints: np.ndarray = None
    status: str = STATUS_MISSED


_DETECTORS = {}


def register_detector(name):
    def wrap(cls):
        if name in _DETECTORS:
            raise ValueError(f"detector {name!r} is already registered")
        _DETECTORS[name] = cls
        return cls
    return wrap


def list_detectors() -> list:
    return sorted(_DETECTORS)


def build_detector(name: str, cfg):
    if name not in _DETECTORS:
        raise UserError(f"unknown detector {name!r}; valid detectors: {', '.join(list_detectors())}")
    return _DETECTORS[name](cfg)


@register_detector("yolo")
class YoloDetector:
    """Ultralytics YOLO, one predict call per batch of frames, highest-confidence box only (max_det=1 after NMS)."""

    def __init__(self, cfg):
        self.conf, self.iou, self.imgsz = cfg.yolo_conf, cfg.yolo_iou, cfg.yolo_imgsz
        self.device = resolve_device(cfg.device)
        self.num_threads = cfg.num_threads
        self.model = load_yolo(cfg.yolo_weights)
        self.weights = str(cfg.yolo_weights)
        model_task = getattr(self.model, "task", "detect")
        if cfg.yolo_task == "pose" and model_task != "pose":
            raise UserError(f"--yolo_task pose, but {cfg.yolo_weights} is a '{model_task}' model without keypoints; "
                            f"use pose weights or --yolo_task detect")
        self.use_keypoints = model_task == "pose" and cfg.yolo_task != "detect"
        self.task = "pose" if self.use_keypoints else "detect"
        kpt_shape = getattr(self.model.model, "kpt_shape", None) if self.use_keypoints else None
        self.num_keypoints = int(kpt_shape[0]) if kpt_shape else 0
        names = getattr(self.model.model, "kpt_names", None) or {}  # {class: [names]}; class as int or str
        names = names.get(0, names.get("0", [])) if isinstance(names, dict) else []
        self.keypoint_names = list(names) if len(names) == self.num_keypoints else []

    def prepare(self, video_path) -> None:
        """Nothing per video: the weights are loaded once."""

    def detect(self, frames) -> list:
        results = self.model.predict(frames, imgsz=self.imgsz, conf=self.conf, iou=self.iou, max_det=1,
                                     device=self.device, verbose=False)
        set_cpu_threads(self.num_threads)  # Ultralytics lowers torch's thread count on its first CPU predict
        return [self._to_detection(r) for r in results]

    def _to_detection(self, result) -> Detection:
        if result.boxes is None or len(result.boxes) == 0:
            return Detection()
        best = int(result.boxes.conf.argmax())
        box = result.boxes.xyxy[best].cpu().numpy().astype(np.float32)
        keypoints = None
        if self.use_keypoints and result.keypoints is not None:
            xy = result.keypoints.xy[best].cpu().numpy()
            conf = result.keypoints.conf
            kc = conf[best].cpu().numpy() if conf is not None else np.ones(len(xy), np.float32)
            keypoints = np.concatenate([xy, kc[:, None]], 1).astype(np.float32)
        return Detection(box, float(result.boxes.conf[best]), keypoints, STATUS_DETECTED)

    miss_hint = "check --yolo_weights (trained on this kind of video?) or lower --yolo_conf"

    def describe(self) -> dict:
        return {"detector": "yolo", "yolo_weights": self.weights, "yolo_task": self.task, "yolo_conf": self.conf,
                "yolo_iou": self.iou, "yolo_imgsz": self.imgsz}


def load_yolo(weights):
    """Load local Ultralytics weights; never download (a bare name like yolov8n.pt would trigger one)."""
    if not weights:
        raise UserError("no YOLO weights given: pass --yolo_weights PATH (a local .pt), or use --detector background")
    path = Path(weights)
    if not path.exists():
        raise UserError(f"YOLO weights not found: {path}. They cannot be downloaded automatically (offline); "
                        f"put the weights file at that path, pass --yolo_weights PATH, or use --detector background")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO
    try:
        return YOLO(str(path))
    except Exception as exc:  # Ultralytics raises many types for a bad file; all mean the same to the user
        raise UserError(f"cannot load YOLO weights {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}; "
                        f"the file is not Ultralytics weights or is damaged, export or copy it again") from None


@register_detector("background")
class BackgroundDetector:
    """Static camera: the median of frames sampled over the video is the background; the animal is the largest
    blob that differs from it. Confidence is that blob's share of all foreground pixels (1.0 = one clean blob)."""

    def __init__(self, cfg):
        self.num_samples, self.threshold, self.min_area = cfg.bg_num_samples, cfg.bg_threshold, cfg.bg_min_area
        self.background = None
        self.num_keypoints, self.keypoint_names, self.task = 0, [], "detect"
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def prepare(self, video_path) -> None:
        frames = sample_frames(video_path, self.num_samples)
        grey = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames])
        self.background = np.median(grey, axis=0).astype(np.uint8)

    def detect(self, frames) -> list:
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame) -> Detection:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        mask = (cv2.absdiff(grey, self.background) > self.threshold).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if count <= 1:
            return Detection()
        areas = stats[1:, cv2.CC_STAT_AREA]
        best = int(areas.argmax())
        if areas[best] < self.min_area:
            return Detection()
        x, y, w, h = stats[1 + best, :4]
        box = np.array([x, y, x + w, y + h], np.float32)
        return Detection(box, float(areas[best] / areas.sum()), None, STATUS_DETECTED)

    miss_hint = ("the background detector needs an animal that moves during the video (a still animal is part "
                 "of the median background) and contrast above --bg_threshold; use --detector yolo otherwise")

    def describe(self) -> dict:
        return {"detector": "background", "bg_num_samples": self.num_samples, "bg_threshold": self.threshold,
                "bg_min_area": self.min_area}


class BoxTracker:
    """keep_last_box: a missed frame reuses the last box and keypoints (status 'reused', the last confidence),
    for at most max_reuse frames in a row (0 = no limit). Without keep_last_box a miss stays 'missed'."""

    def __init__(self, keep_last_box: bool, max_reuse: int = 0):
        self.keep_last_box, self.max_reuse = keep_last_box, max_reuse
        self.last, self.misses = None, 0

    def update(self, detection: Detection) -> Detection:
        if detection.status == STATUS_DETECTED:
            self.last, self.misses = detection, 0
            return detection
        self.misses += 1
        if self.keep_last_box and self.last is not None and (self.max_reuse == 0 or self.misses <= self.max_reuse):
            return Detection(self.last.box, self.last.confidence, self.last.keypoints, STATUS_REUSED)
        return Detection()


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


def crop_detection(frame_bgr: np.ndarray, detection: Detection, crop_size: int, pad_ratio: float) -> tuple:
    """(RGB crop or None, crop_box [4] or NaNs) for one frame's detection; None when the frame was missed."""
    if detection.box is None:
        return None, np.full(4, np.nan, np.float32)
    crop_box = square_crop_box(detection.box, pad_ratio)
    return cv2.cvtColor(crop_frame(frame_bgr, crop_box, crop_size), cv2.COLOR_BGR2RGB), crop_box
