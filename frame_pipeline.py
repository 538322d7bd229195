"""The one frame pipeline of every stage (preprocessing, inference, tracking, the benches):

    decode (utils.data.video_io, a background thread) -> detect (detectors.py; every frame, or every detect_every-th
    with interpolation between) -> keep_last_box (BoxTracker) -> square crop and keypoints into the crop
    (cropping.py) -> running scale references (utils.features.motion) -> FrameRecords in frame order

A pose file alone runs the same pipeline without pixels: records carry boxes and keypoints only.
"""
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cropping import crop_detection, map_keypoints_to_crop
from detectors import (STATUS_DETECTED, STATUS_INTERPOLATED, STATUS_MISSED, STATUS_REUSED, Detection, Detector,
                       SparseDetector)
from utils.errors import UserError
from utils.features.motion import ScaleTracker, body_axis, calibrated_length
from utils.readers.pose_io import is_pose_file
from utils.timing import StageTimer
from utils.data.video_io import iter_frame_batches, prefetched, video_info


@dataclass
class SourceInfo:
    """What a recording holds: frames (a video) or only a pose file's keypoints."""
    frame_count: int
    fps: float
    has_frames: bool
    damage: list = field(default_factory=list)  # what the files are missing (cut short, rows lost), warned already


def prepare_source(path, detector: Detector, settings, individual=None) -> SourceInfo:
    """Ready the detector for one recording (a video, or a pose file alone) before its first frame; errors about
    the file (missing pose file, other keypoints, other frame count, no frame rate) come here."""
    path = Path(path)
    if is_pose_file(path):
        if not detector.reads_pose_files:
            raise UserError(f"{path} is a pose file, but the detector is {settings.detector}; use --detector pose_file")
        detector.prepare(path, individual)
        fps = detector.fps or settings.pose_fps
        if not fps:
            raise UserError(f"{path} does not store its frame rate ({detector.software}); pass --pose_fps "
                            f"(frames per second of the recording)")
        return SourceInfo(detector.num_frames, float(fps), False, pose_damage(detector))
    info = video_info(path)
    detector.prepare(path, individual)
    return SourceInfo(info.frame_count, info.fps, True, [info.damage] * bool(info.damage) + pose_damage(detector))


def pose_damage(detector: Detector) -> list:
    recording = detector.recording
    return [recording.damage] if recording is not None and recording.damage else []


def blank_frame_batches(num_frames: int, batch: int):
    """(first index, [None] * n) batches: the frame pipeline over a pose file, which has no pixels."""
    for first in range(0, num_frames, batch):
        yield first, [None] * min(batch, num_frames - first)


class BoxTracker:
    """keep_last_box: a missed frame reuses the last box and keypoints (status 'reused', the last confidence),
    for at most max_reuse frames in a row (0 = no limit). Without keep_last_box a miss stays 'missed'."""

    def __init__(self, keep_last_box: bool, max_reuse: int = 0):
        self.keep_last_box, self.max_reuse = keep_last_box, max_reuse
        self.last, self.misses = None, 0

    def update(self, detection: Detection) -> Detection:
        if detection.status in (STATUS_DETECTED, STATUS_INTERPOLATED):
            self.last, self.misses = detection, 0
            return detection
        self.misses += 1
        if self.keep_last_box and self.last is not None and (self.max_reuse == 0 or self.misses <= self.max_reuse):
            return Detection(self.last.box, self.last.confidence, self.last.keypoints, STATUS_REUSED)
        return Detection()


@dataclass
class FrameRecord:
    """One frame after Stage A. Pixels: box, crop_box and keypoints in frame px; keypoints_crop in crop px.
    box/crop_box are NaN and crop/keypoints None when the animal was missed."""
    index: int
    frame: np.ndarray  # BGR, as decoded; None for a pose file without video
    status: str
    confidence: float
    box: np.ndarray
    crop_box: np.ndarray
    crop: np.ndarray = None  # RGB [crop_size, crop_size, 3]; None when missed or without video
    keypoints: np.ndarray = None  # [K, 3] (x, y, conf)
    keypoints_crop: np.ndarray = None  # [K, 3]
    scale_ref: np.ndarray = None  # [3] the video's running scale references (utils.features.motion.ScaleTracker)
    partner: np.ndarray = None  # [K, 3] frame px: the nearest other animal (several animals), else None
    sensor: np.ndarray = None  # [C, 2] the recording's sensor stream at this frame (mean, spread), else None

    @property
    def missed(self) -> bool:
        return self.status == STATUS_MISSED


def tracking_row(record: FrameRecord, num_kp: int) -> dict:
    """One row of a tracking table (prepare's tracking/<video>.csv, track_video.py): detection, box, crop, keypoints."""
    row = {"frame": record.index, "status": record.status, "confidence": round(record.confidence, 4)}
    row.update({f"box_{k}": v for k, v in zip(("x1", "y1", "x2", "y2"), record.box)})
    row.update({f"crop_{k}": v for k, v in zip(("x1", "y1", "x2", "y2"), record.crop_box)})
    kps = record.keypoints
    for k in range(num_kp):
        for j, axis in enumerate(("x", "y", "conf")):
            row[f"kp{k}_{axis}"] = float(kps[k, j]) if kps is not None else np.nan
    return row


def make_record(index: int, frame: np.ndarray, detection: Detection, crop_size: int, pad_ratio: float) -> FrameRecord:
    crop, crop_box = crop_detection(frame, detection, crop_size, pad_ratio)
    box = detection.box if detection.box is not None else np.full(4, np.nan, np.float32)
    kp_crop = None
    if detection.keypoints is not None and detection.box is not None:
        kp_crop = np.concatenate([map_keypoints_to_crop(detection.keypoints[:, :2], crop_box, crop_size),
                                  detection.keypoints[:, 2:3]], 1).astype(np.float32)
    return FrameRecord(index, frame, detection.status, detection.confidence, box, crop_box, crop,
                       detection.keypoints, kp_crop, partner=detection.partner)


def window_arrays(records, num_keypoints: int) -> dict:
    """The per-frame arrays that pose and motion features read, for a window of FrameRecords, as the npz of
    preprocessing stores them: frame-pixel keypoints (NaN where none), boxes, scale references, and the nearest
    other animal's keypoints when there are several; the keypoints' heights with 3D pose files; the sensor stream
    (sensor_raw [T, C, 2]) when the recording has one."""
    def stacked(rows):
        width = next((r.shape[1] for r in rows if r is not None), 3)
        raw = np.stack([r if r is not None else np.full((num_keypoints, width), np.nan, np.float32) for r in rows])
        return raw.astype(np.float32)
    raw = stacked([r.keypoints for r in records])
    arrays = {"keypoints_xy_raw": raw[..., :2], "keypoints_conf_raw": raw[..., 2],
              "bbox_xyxy": np.stack([r.box for r in records]).astype(np.float32),
              "scale_ref": np.stack([r.scale_ref for r in records]).astype(np.float32)}
    if raw.shape[-1] == 4:
        arrays["keypoints_z_raw"] = raw[..., 3]
    if any(r.partner is not None for r in records):
        partner = stacked([r.partner for r in records])
        arrays.update(partner_xy_raw=partner[..., :2], partner_conf_raw=np.nan_to_num(partner[..., 2]))
    if records and records[0].sensor is not None:
        arrays["sensor_raw"] = np.stack([r.sensor for r in records]).astype(np.float32)
    return arrays


def iter_frame_records(video_path, detector: Detector, settings, timer=None, frame_batches=None, sensors=None):
    """The one frame pipeline of every stage: decode (in a background thread) -> detect in batches (every
    frame, or every detect_every-th with interpolation between) -> keep_last_box -> square crop -> keypoints
    into the crop -> running scale references. Yields lists of FrameRecords in frame order (settings:
    yolo_batch, detect_every, keep_last_box, max_reuse_frames, crop_size, pad_ratio). `timer` (a StageTimer) is
    charged decode, detect and crop. `frame_batches`: (first index, frames) from a live source instead of
    decoding video_path. The detector must have been prepared for this recording (prepare_source); a pose file
    alone gives records without pixels. `sensors`: the recording's stream aligned to its frames [N, C, 2]
    (utils.readers.sensors.frame_sensors), given to each record (missing, NaN, past its end)."""
    timer = timer or StageTimer()
    tracker = BoxTracker(settings.keep_last_box, settings.max_reuse_frames)
    scales = ScaleTracker(body_axis(detector.keypoint_names, detector.num_keypoints), calibrated_length(settings))
    every = settings.detect_every
    sparse = SparseDetector(detector, every)
    if frame_batches is None and is_pose_file(video_path):
        frame_batches = blank_frame_batches(detector.num_frames, settings.yolo_batch * every)
    elif frame_batches is None:
        # each decoded batch holds about yolo_batch frames for the detector, however sparse the detection
        frame_batches = prefetched(iter_frame_batches(video_path, settings.yolo_batch * every))
    with closing(frame_batches) as batches:
        for first, batch in timer.timed_iter("decode", batches):
            with timer.stage("detect"):
                known = sparse.push(first, batch)
            if known:
                yield _records(known, tracker, scales, settings, timer, sensors)
        with timer.stage("detect"):
            known = sparse.finish()
        if known:
            yield _records(known, tracker, scales, settings, timer, sensors)


def _records(known: list, tracker: BoxTracker, scales: ScaleTracker, settings, timer, sensors=None) -> list:
    with timer.stage("crop"):
        records = [make_record(index, frame, tracker.update(det), settings.crop_size, settings.pad_ratio)
                   for index, frame, det in known]
        for r in records:
            r.scale_ref = scales.update(r.box, r.keypoints, r.status == STATUS_DETECTED)
            if sensors is not None:  # a video may decode a frame more than it declared: missing there
                r.sensor = sensors[r.index] if r.index < len(sensors) else np.full(sensors.shape[1:], np.nan,
                                                                                    np.float32)
    return records
