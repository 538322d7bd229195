"""Detections of a video kept for the next run on it: classifying the same video again (another model, a retrained
one, other window or output settings; infer_behavior_lstm.py, batch_process_videos.py, benchmark_pipeline.py, the
dashboard) replays them instead of running the detector, which is most of a run's time (bench/README.md).

    replay = cached_detections(video_path, detector, settings)   # a RecordedDetector, or None
    recorder = DetectionRecorder(video_path, detector, settings)  # fed every FrameRecord; save() when complete

Kept under BEHAVIORSCOPE_CACHE (default ~/.cache/behaviorscope)/detections/<key>.npz. The key hashes what the
detections depend on: the video (resolved path, size, modification time), the detector (its description: kind,
imgsz, thresholds, task; its weights file's SHA-256) and detect_every, so a changed video, weights file or setting
is detected afresh. The FP32 runtimes (PyTorch, ONNX, OpenVINO) share entries: exports are checked against PyTorch
within AGREEMENT_PX before use; a reduced precision (bf16, int8, fp16) and auto have their own. Only frames the
detector found are kept; keep_last_box, interpolation and the crops are made afresh from them, exactly as from the
detector. A run that stops early saves nothing. Pose files are not cached: reading them is as fast as reading the
cache.
"""
import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from utils.detection.detector_backends import BACKENDS, cache_root, file_hash
from utils.io import atomic_path

log = logging.getLogger("detect")
FORMAT = 1  # of the cache files: a change makes every older entry a miss


def cache_file(video_path, detector, settings) -> Path:
    video = Path(video_path).resolve()
    stat = video.stat()
    weights = detector.weights_file
    described = {k: v for k, v in detector.describe().items() if not k.startswith("detector_")}
    key = json.dumps({"format": FORMAT, "video": [str(video), stat.st_size, stat.st_mtime_ns],
                      "detector": described, "weights_sha256": file_hash(weights) if weights else None,
                      "detect_every": settings.detect_every, "precision": runtime_precision(settings)},
                     sort_keys=True, default=str)
    return cache_root().parent / "detections" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def runtime_precision(settings) -> str:
    """The FP32 runtimes agree with PyTorch within AGREEMENT_PX and share entries; a reduced precision (bf16,
    int8, TensorRT's fp16) gives slightly other detections and its own entries, as does auto (it may choose one)."""
    requested = getattr(settings, "detector_backend", "torch")
    return "auto" if requested == "auto" else BACKENDS.get(requested).precision


def cacheable(video_path, detector) -> bool:
    return not detector.reads_pose_files and Path(video_path).is_file()


def cached_detections(video_path, detector, settings):
    """A RecordedDetector replaying this video's detections from an earlier complete run, or None."""
    from detectors import RecordedDetector
    if not cacheable(video_path, detector):
        return None
    path = cache_file(video_path, detector, settings)
    if not path.is_file():
        return None
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in ("frames", "boxes", "confidence", "keypoints")}
    except (OSError, ValueError, KeyError) as exc:  # a damaged entry is detected afresh, not trusted
        log.warning("%s: cached detections %s unreadable (%s); detecting again", video_path, path, exc)
        return None
    log.info("%s: detections of an earlier run reused (%s; same video, detector and detect_every)", video_path, path)
    return RecordedDetector(detector, **arrays)


class DetectionRecorder:
    """Collects the detected frames of a run on a video; save() keeps them when the run saw the whole video."""

    def __init__(self, video_path, detector, settings):
        self.path = cache_file(video_path, detector, settings) if cacheable(video_path, detector) else None
        self.num_keypoints = detector.num_keypoints
        self.frames, self.boxes, self.confidence, self.keypoints = [], [], [], []

    def add(self, records: list) -> None:
        from detectors import STATUS_DETECTED
        if self.path is None:
            return
        for r in records:
            if r.status == STATUS_DETECTED and r.keypoints is None and self.num_keypoints:
                self.path = None  # a pose detector's box without keypoints: the replay could not say so
                return
            if r.status == STATUS_DETECTED:
                self.frames.append(r.index)
                self.boxes.append(r.box)
                self.confidence.append(r.confidence)
                self.keypoints.append(r.keypoints if r.keypoints is not None
                                      else np.zeros((self.num_keypoints, 3), np.float32))

    def save(self) -> None:
        if self.path is None:
            return
        k = self.num_keypoints
        arrays = {"frames": np.asarray(self.frames, np.int64),
                  "boxes": np.asarray(self.boxes, np.float32).reshape(-1, 4),
                  "confidence": np.asarray(self.confidence, np.float32),
                  "keypoints": np.asarray(self.keypoints, np.float32).reshape(len(self.frames), k, 3)}
        try:
            with atomic_path(self.path) as tmp:
                np.savez(tmp, **arrays)
        except Exception as exc:  # noqa: BLE001 - a full or read-only cache must not fail the run it speeds up
            log.warning("detections not cached (%s): %s", self.path, exc)
