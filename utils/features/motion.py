"""Motion and scale: the per-video scale references and the features that keep locomotion and body size.

Why: crops follow the animal and rescale with its box, so crop-coordinate features cannot see the animal move
across the arena or change size (a rearing mouse looks shorter from above, a grooming one is curled). These
features start from frame-pixel boxes and keypoints and are expressed in body lengths and seconds, so they do not
depend on the camera's resolution, zoom or frame rate.

Scale references (ScaleTracker, one per video and animal, fed by the frame pipeline in frame order):
    ref[0]  body length   running upper quartile of |head - tail| over the detected frames so far (px); before
                          the first frame with both keypoints (or with a detect-only model): sqrt of ref[1]
    ref[1]  box area      running upper quartile of the detected boxes' area (px^2)
    ref[2]  box aspect    running median of the detected boxes' width / height
The upper quartile is the stretched-out animal: a median would move with the share of time spent rearing or
grooming. The statistics are causal (frames up to and including this one), so training windows and live
inference see the same numbers; after a few seconds of video they are stable. Reused boxes (keep_last_box) are
not counted. Calibrated instead (preprocessing `body_length_cm` with `pixels_per_cm`): ref[0] is that length in
px and ref[1] its square for every frame, so features are in a fixed length of the rig, whatever the tracker's
keypoint placement (bench/README.md, "Another rig").

Body-pose features (`body_pose_features`, feature set "body", version 4), per frame, K keypoints, in this order:
    egocentric posture  2K   (p_k - centroid) rotated so the tail->head axis points along +x, / body length ref
    confidence          K    the keypoint's confidence, 0 when missing
    keypoint speed      K    |p_k(t) - p_k(t-lag)| / (lag seconds) / body length ref (body lengths per second)
    distances           K(K-1)/2   |p_i - p_j| / body length ref, i < j
    joint angles        2(K-2)     cos and sin of the angle at keypoint k between k-1 and k+1 (keypoint order)
    body length         1    |head - tail| / body length ref (0 when head or tail is missing)
    centroid speed      1    body lengths per second (centroid = mean of the present keypoints)
    centroid accel      1    change of centroid speed, body lengths per second^2, / 10
    heading velocity    1    change of the tail->head angle, radians per second (wrapped to +-pi per frame) / 10
  version 3 adds four rates of positions first averaged over SMOOTH_SECONDS, taken over SLOW_LAG_SECONDS centred
  on the frame (both within the window), which keep a tracker's frame-to-frame jitter (1-2 px at 50 fps: 1.5 cm/s
  of false speed) from drowning stillness, and mark the start of a stillness on time (a lag that only looks back
  marks it late); version 2 checkpoints are computed without them:
    steady centroid speed    1    body lengths per second
    steady keypoint speed    1    mean over the present keypoints, body lengths per second
    posture change           1    mean speed of the egocentric keypoints (posture without locomotion), same units
    steady turning           1    |change of the smoothed tail->head angle|, radians per second / 10
Version 4 computes every feature above from tracks first averaged over track_smoothing_s (recorded in the
checkpoint; TRACK_SMOOTH_SECONDS by default), centred and symmetric (shorter towards the window's edges, so steady
motion keeps its speed everywhere): a tracker's frame-to-frame jitter otherwise passes into the posture, the
distances, the angles and the per-frame speeds, and a model trained on one tracker's noise reads another's as
movement (bench/bench_cross_rig.py: 4 px of noise instead of 1.5 took per-frame macro-F1 from 0.96 to 0.72 with raw
tracks, 0.90 with smoothed ones). Version 3 checkpoints are computed from raw tracks.
The "speeds" set (`body_rate_columns`) keeps only the rates above: keypoint speeds, centroid speed and acceleration,
heading velocity and the steady rates (3 + K + 4 columns). For behaviours defined by movement (freezing,
immobility) it leaves a model no posture, distance or confidence to learn one animal's shape by.
3D pose files (spatial_dims 3: x, y the floor plane, z the height; utils.readers.pose_io) keep every feature above
in the floor plane and append `height_features`, 2K per frame, from the heights averaged over track_smoothing_s:
    height              K    z_k - the lowest present keypoint's z, / body length ref (a rearing nose is high;
                             the lowest point is the floor's stand-in, so no floor calibration is needed)
    vertical speed      K    d(z_k)/dt over the lag / body length ref (body lengths per second, signed)
Box-motion features (`box_motion_features`, any detector, 5 per frame):
    box speed           box-centre speed in box sizes per second (box size = sqrt of the area reference)
    box accel           change of that speed per second / 10
    box accel magnitude |change of the box-centre velocity| per second / 10
    log area            log(box area / area reference)
    log aspect          log(box aspect / aspect reference)
Rates (speeds, accelerations, turning) are differences over LAG_SECONDS (0.1 s: 3 frames at 30 fps), or over
as much of the window as precedes the frame; frame 0 uses frames 0 and 1, so a window does not start with a
fake stop. The lag is in seconds, so the features do not depend on the frame rate.
Missing keypoints (NaN or confidence < min_conf) give 0 in every feature that uses them; the heading is carried
over from the nearest frame of the window that has it. Every value is clipped to +-CLIP.
"""
import heapq
import math
import re
from dataclasses import asdict, dataclass, fields
from functools import lru_cache

import numpy as np

from utils.pose_features import keypoints_present, pose_feature_dim, pose_features

FEATURE_SET_VERSION = {"crop": 1, "body": 4}  # recorded in checkpoints as pose_features_version
BOX_MOTION_DIM = 5
CLIP = 50.0
REFERENCE_QUANTILE = 0.75
LAG_SECONDS = 0.1  # speeds and turning rates are measured over this interval
SMOOTH_SECONDS, SLOW_LAG_SECONDS = 0.3, 0.2  # version 3's steady rates, chosen on validation (bench/README.md)
# version 4's default track_smoothing_s: 0.1 s kept the cross-rig gains of 0.2 s and lost less on real freezing
# (bench/README.md, "Train on one rig, test on another")
TRACK_SMOOTH_SECONDS = 0.1
STEADY_DIM = 4
HEIGHT_DIM_PER_KEYPOINT = 2  # 3D pose: height and vertical speed
HEAD_NAMES = ("nose", "snout", "head", "neck")
TAIL_NAMES = ("tailbase", "baseoftail", "tailroot", "tail")


class RunningQuantile:
    """The q-quantile (lower side) of everything added so far: two heaps, O(log n) per value."""

    def __init__(self, q: float = 0.5):
        self.q = q
        self.low, self.high = [], []  # low: max-heap (negated) of the lowest ceil(q n) values

    def add(self, value: float) -> None:
        if self.low and value > -self.low[0]:
            heapq.heappush(self.high, value)
        else:
            heapq.heappush(self.low, -value)
        want = max(1, math.ceil(self.q * (len(self.low) + len(self.high))))
        while len(self.low) > want:
            heapq.heappush(self.high, -heapq.heappop(self.low))
        while len(self.low) < want and self.high:
            heapq.heappush(self.low, -heapq.heappop(self.high))

    def value(self) -> float:
        return -self.low[0] if self.low else np.nan


def body_axis(keypoint_names, num_keypoints: int) -> tuple:
    """(tail index, head index) from keypoint names (nose/snout/head/neck, tail base/tail); without names that
    match, the last and the first keypoint."""
    names = [re.sub(r"[^a-z]", "", str(n).lower()) for n in (keypoint_names or [])]

    def first(candidates):
        for c in candidates:
            for i, name in enumerate(names):
                if name == c or (c in name and "tip" not in name and "end" not in name):
                    return i
        return None
    head, tail = first(HEAD_NAMES), first(TAIL_NAMES)
    if head is None or tail is None or head == tail:
        return (num_keypoints - 1, 0) if num_keypoints > 1 else (0, 0)
    return tail, head


def body_lengths(xy: np.ndarray, conf: np.ndarray, axis: tuple, min_conf: float = 0.0) -> np.ndarray:
    """|head - tail| per frame in px ([T, K, 2], [T, K]); NaN where either is missing."""
    tail, head = axis
    ok = keypoints_present(xy, conf, min_conf)
    length = np.linalg.norm(xy[:, head] - xy[:, tail], axis=-1)
    return np.where(ok[:, head] & ok[:, tail], length, np.nan)


class ScaleTracker:
    """Running per-video scale references (module docstring), one update per frame in frame order."""

    def __init__(self, axis: tuple, calibrated_length: float = None):
        self.axis = axis
        # a body length fixed in px by the rig's calibration (body_length_cm x pixels_per_cm): length and area then
        # describe the rig, not where this tracker puts the nose and tail base
        self.calibrated_length = calibrated_length
        # body length and box area: the upper quartile, the stretched-out animal, which barely depends on how
        # much of the video it spends rearing or grooming (curled, foreshortened); a median would
        q = REFERENCE_QUANTILE
        self.length, self.area, self.aspect = RunningQuantile(q), RunningQuantile(q), RunningQuantile(0.5)

    def update(self, box, keypoints, detected: bool) -> np.ndarray:
        if detected and box is not None and np.isfinite(box).all():
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            if w > 0 and h > 0:
                self.area.add(w * h)
                self.aspect.add(w / h)
            if keypoints is not None and self.axis[0] != self.axis[1] and not self.calibrated_length:
                length = body_lengths(keypoints[None, :, :2], keypoints[None, :, 2], self.axis)[0]
                if np.isfinite(length) and length > 0:
                    self.length.add(float(length))
        if self.calibrated_length:
            return np.array([self.calibrated_length, self.calibrated_length ** 2, self.aspect.value()], np.float32)
        area = self.area.value()
        length = self.length.value()
        return np.array([length if np.isfinite(length) else np.sqrt(area), area, self.aspect.value()], np.float32)


def calibrated_length(settings) -> float:
    """The body length in px that preprocessing settings fix (body_length_cm x pixels_per_cm), or None: measured
    on the animal."""
    body_cm = getattr(settings, "body_length_cm", None)
    return body_cm * settings.pixels_per_cm if body_cm else None


def track_scale_references(xy: np.ndarray, conf: np.ndarray, axis: tuple, boxes: np.ndarray = None) -> np.ndarray:
    """Scale references [T, 3] of a whole track ([T, K, 2], [T, K]) in frame order, as the frame pipeline keeps
    them; boxes [T, 4] default to the keypoints' extent (for pose tracks without a detector's boxes)."""
    if boxes is None:
        boxes = np.concatenate([np.nanmin(xy, 1), np.nanmax(xy, 1)], 1)
    tracker = ScaleTracker(axis)
    return np.stack([tracker.update(b, np.concatenate([p, c[:, None]], 1), True) for b, p, c in zip(boxes, xy, conf)])


def body_pose_feature_dim(num_keypoints: int, version: int = FEATURE_SET_VERSION["body"]) -> int:
    k = num_keypoints
    return 2 * k + k + k + k * (k - 1) // 2 + 2 * max(k - 2, 0) + 4 + (STEADY_DIM if version >= 3 else 0)


def body_feature_names(keypoint_names, version: int = FEATURE_SET_VERSION["body"]) -> list:
    """The body set's column names in order (module docstring), e.g. "speed nose", "distance nose-tail_base"."""
    names = [str(n) for n in keypoint_names]
    k = len(names)
    columns = [f"posture {n} {a}" for n in names for a in "xy"] + [f"confidence {n}" for n in names]
    columns += [f"speed {n}" for n in names]
    columns += [f"distance {names[i]}-{names[j]}" for i, j in zip(*np.triu_indices(k, 1))]
    columns += [f"angle {t} at {n}" for t in ("cos", "sin") for n in names[1:-1]]
    columns += ["body length", "centroid speed", "centroid accel", "heading velocity"]
    steady = ["steady centroid speed", "steady keypoint speed", "posture change", "steady turning"]
    return columns + (steady if version >= 3 else [])


@lru_cache(maxsize=8)
def body_rate_columns(num_keypoints: int, version: int = FEATURE_SET_VERSION["body"]) -> np.ndarray:
    """Indices of the body set's rates (keypoint speeds, centroid speed and acceleration, heading velocity and, from
    version 3, the steady rates): the "speeds" set, which leaves out posture, distances, angles, confidence and
    body length (module docstring). Computed once per layout (read-only: every window shares it)."""
    k = num_keypoints
    speeds = np.arange(3 * k, 4 * k)
    after_angles = 4 * k + k * (k - 1) // 2 + 2 * max(k - 2, 0)  # body length, then the three rates
    steady = np.arange(after_angles + 4, after_angles + 4 + STEADY_DIM) if version >= 3 else np.zeros(0, int)
    columns = np.concatenate([speeds, np.arange(after_angles + 1, after_angles + 4), steady])
    columns.flags.writeable = False
    return columns


def _lag_index(t: int, fps: float) -> tuple:
    """(earlier frame, seconds between) per frame: LAG_SECONDS back, or as far as the window goes; frame 0 uses
    frames 0 and 1. Differences over a lag rather than one frame keep keypoint jitter (a few px) from drowning
    slow movement."""
    lag = max(1, int(round(LAG_SECONDS * fps)))
    now = np.arange(t)
    now[0] = min(1, t - 1)
    before = np.maximum(now - lag, 0)
    return now, before, np.maximum(now - before, 1) / fps


def _rate(values: np.ndarray, fps: float, wrap: bool = False) -> np.ndarray:
    """d(values)/dt per frame over the lag (_lag_index), [T, ...]; with `wrap`, angles are unwrapped first so
    a turn across +-pi is not a jump of 2 pi."""
    t = len(values)
    if t < 2:
        return np.zeros_like(values)
    if wrap:  # unwrap so that a lag spanning several frames adds up the turns
        values = np.unwrap(values, axis=0)
    now, before, seconds = _lag_index(t, fps)
    return (values[now] - values[before]) / seconds.reshape(-1, *([1] * (values.ndim - 1)))


def _speed(points: np.ndarray, fps: float) -> np.ndarray:
    """|d(points)/dt| for [T, ..., 2] over the lag; NaN stays NaN."""
    return np.linalg.norm(_rate(points, fps), axis=-1)


def centred_mean(values: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """Mean over a centred window of `seconds` along axis 0 (shorter at the edges), ignoring NaNs; NaN where the
    whole neighbourhood is missing."""
    half = max(0, int(round(seconds * fps / 2)))
    if half == 0 or len(values) < 2:
        return values
    index = np.arange(len(values))
    return _nan_mean_between(values, np.maximum(index - half, 0), np.minimum(index + half + 1, len(values)))


def symmetric_mean(values: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """Mean over a centred window of `seconds` along axis 0 that stays symmetric at the edges (frame t averages
    t-h..t+h with h no more than the frames on either side), ignoring NaNs: steady motion is left unchanged, unlike
    centred_mean's one-sided edges."""
    t, half = len(values), max(0, int(round(seconds * fps / 2)))
    if half == 0 or t < 3:
        return values
    index = np.arange(t)
    reach = np.minimum(half, np.minimum(index, t - 1 - index))
    return _nan_mean_between(values, index - reach, index + reach + 1)


def _nan_mean_between(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per frame t, the mean of values[lo[t]:hi[t]] along axis 0 ignoring NaNs (running sums); NaN where all are."""
    ok = np.isfinite(values)
    pad = [(1, 0)] + [(0, 0)] * (values.ndim - 1)
    sums = np.cumsum(np.pad(np.where(ok, values, 0.0), pad), 0)
    counts = np.cumsum(np.pad(ok.astype(np.float64), pad), 0)
    with np.errstate(all="ignore"):
        return (sums[hi] - sums[lo]) / (counts[hi] - counts[lo])


def centred_rate(values: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """d(values)/dt for [T, ...] between the frames `seconds` / 2 before and after each frame (nearer at the
    window's edges)."""
    t, half = len(values), max(1, int(round(seconds * fps / 2)))
    if t < 2:
        return np.zeros_like(values, dtype=np.float64)
    after, before = np.minimum(np.arange(t) + half, t - 1), np.maximum(np.arange(t) - half, 0)
    return (values[after] - values[before]) / ((after - before) / fps).reshape(-1, *([1] * (values.ndim - 1)))


def _centred_speed(points: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """|d(points)/dt| for [T, ..., 2] over a centred interval (centred_rate)."""
    return np.linalg.norm(centred_rate(points, fps, seconds), axis=-1)


def nan_mean(values: np.ndarray, axis: int) -> np.ndarray:
    """np.nanmean without its "Mean of empty slice" warning: NaN where a slice has no finite value (a frame where
    no keypoint of an animal was seen is expected, not a fault to print)."""
    finite = np.isfinite(values)
    count = finite.sum(axis)
    total = np.where(finite, values, 0).sum(axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _steady_rates(xy: np.ndarray, centroid: np.ndarray, ego: np.ndarray, scale: np.ndarray, axis: tuple,
                  fps: float) -> np.ndarray:
    """Version 3's jitter-robust rates per frame [T, STEADY_DIM] (module docstring); NaN where missing."""
    def steady(points):
        return centred_mean(points, fps, SMOOTH_SECONDS)
    smooth_axis = steady(xy[:, axis[1]]) - steady(xy[:, axis[0]])
    heading = np.unwrap(_fill_nearest(np.arctan2(smooth_axis[:, 1], smooth_axis[:, 0])))
    with np.errstate(all="ignore"):
        turning = np.abs(centred_rate(heading, fps, SLOW_LAG_SECONDS)) / 10
        return np.stack([_centred_speed(steady(centroid), fps, SLOW_LAG_SECONDS) / scale[:, 0],
                         nan_mean(_centred_speed(steady(xy), fps, SLOW_LAG_SECONDS), 1) / scale[:, 0],
                         nan_mean(_centred_speed(steady(ego), fps, SLOW_LAG_SECONDS), 1),
                         turning], 1)


def _fill_nearest(values: np.ndarray) -> np.ndarray:
    """NaNs replaced by the nearest earlier value, then the nearest later one; all-NaN gives zeros."""
    ok = np.isfinite(values)
    if not ok.any():
        return np.zeros_like(values)
    index = np.where(ok, np.arange(len(values)), 0)
    np.maximum.accumulate(index, out=index)
    filled = values[index]
    first = np.argmax(ok)
    filled[:first] = values[first]
    return filled


def centroids(xy: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Mean of the present keypoints per frame: [T, K, 2], [T, K] -> [T, 2]; NaN when none is present."""
    with np.errstate(all="ignore"):
        return np.nansum(np.where(present[..., None], xy, 0.0), axis=-2) / present.sum(-1)[..., None]


def reference_length(refs: np.ndarray) -> np.ndarray:
    length = refs[:, 0].astype(np.float64)
    return np.where(np.isfinite(length) & (length > 0), length, 1.0)


def body_pose_features(xy: np.ndarray, conf: np.ndarray, refs: np.ndarray, fps: float, axis: tuple,
                       min_conf: float = 0.0, version: int = FEATURE_SET_VERSION["body"],
                       track_smoothing_s: float = TRACK_SMOOTH_SECONDS) -> np.ndarray:
    """Frame-pixel keypoints [T, K, 2] and confidences [T, K], scale references [T, 3] ->
    [T, body_pose_feature_dim(K, version)] float32 (module docstring); from version 4 the tracks are first averaged
    over `track_smoothing_s` seconds."""
    xy, conf = np.asarray(xy, np.float64), np.asarray(conf, np.float64)
    t, k = conf.shape
    present = keypoints_present(xy, conf, min_conf)
    xy = np.where(present[..., None], xy, np.nan)
    if version >= 4 and track_smoothing_s > 0:
        xy = np.where(present[..., None], symmetric_mean(xy, fps, track_smoothing_s), np.nan)
    scale = reference_length(refs)[:, None]
    tail, head = axis
    axis_vec = xy[:, head] - xy[:, tail]
    heading = _fill_nearest(np.arctan2(axis_vec[:, 1], axis_vec[:, 0]))
    with np.errstate(all="ignore"):
        centroid = centroids(xy, present)
        rel = xy - centroid[:, None]
        cos, sin = np.cos(heading)[:, None], np.sin(heading)[:, None]
        ego = np.stack([rel[..., 0] * cos + rel[..., 1] * sin, -rel[..., 0] * sin + rel[..., 1] * cos], -1)
        ego = ego / scale[..., None]
        kp_speed = _speed(xy, fps) / scale
        iu, ju = np.triu_indices(k, 1)
        dist = np.linalg.norm(xy[:, iu] - xy[:, ju], axis=-1) / scale
        angles = _joint_angles(xy)
        length = np.linalg.norm(axis_vec, axis=-1) / scale[:, 0]
        c_speed = _speed(centroid, fps) / scale[:, 0]
        c_accel = _rate(np.nan_to_num(c_speed), fps) / 10
        turn = _rate(heading, fps, wrap=True) / 10
    parts = [ego.reshape(t, 2 * k), np.where(present, conf, 0.0), kp_speed, dist, angles,
             np.stack([length, c_speed, c_accel, turn], 1)]
    if version >= 3:
        parts.append(_steady_rates(xy, centroid, ego, scale, axis, fps))
    features = np.concatenate(parts, 1)
    return np.clip(np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0), -CLIP, CLIP).astype(np.float32)


def height_features(z: np.ndarray, conf: np.ndarray, refs: np.ndarray, fps: float, min_conf: float = 0.0,
                    track_smoothing_s: float = TRACK_SMOOTH_SECONDS) -> np.ndarray:
    """Heights [T, K] (3D pose files) and confidences [T, K], scale references [T, 3] -> [T, 2K] float32: each
    keypoint's height above the frame's lowest present keypoint and its vertical speed, in body lengths (and per
    second); 0 where missing (module docstring)."""
    z, conf = np.asarray(z, np.float64), np.asarray(conf, np.float64)
    present = np.isfinite(z) & (conf >= min_conf) & (conf > 0)
    z = np.where(present, z, np.nan)
    if track_smoothing_s > 0:
        z = np.where(present, symmetric_mean(z, fps, track_smoothing_s), np.nan)
    scale = reference_length(refs)[:, None]
    with np.errstate(all="ignore"):
        lowest = np.nanmin(np.where(present, z, np.inf), axis=1, keepdims=True)
        height = (z - lowest) / scale
        vertical = _rate(z, fps) / scale
    features = np.concatenate([height, vertical], 1)
    return np.clip(np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0), -CLIP, CLIP).astype(np.float32)


def _joint_angles(xy: np.ndarray) -> np.ndarray:
    """cos and sin of the angle at keypoint k between k-1 and k+1, [T, 2(K-2)] (NaN when one is missing)."""
    if xy.shape[1] < 3:
        return np.zeros((len(xy), 0))
    a, b = xy[:, :-2] - xy[:, 1:-1], xy[:, 2:] - xy[:, 1:-1]
    angle = np.arctan2(a[..., 1], a[..., 0]) - np.arctan2(b[..., 1], b[..., 0])
    return np.concatenate([np.cos(angle), np.sin(angle)], 1)


def box_motion_features(boxes: np.ndarray, refs: np.ndarray, fps: float) -> np.ndarray:
    """Boxes [T, 4] xyxy frame px and scale references [T, 3] -> [T, BOX_MOTION_DIM] float32 (module docstring)."""
    boxes = np.asarray(boxes, np.float64)
    size = np.sqrt(np.where(refs[:, 1] > 0, refs[:, 1], np.nan))[:, None]
    with np.errstate(all="ignore"):
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2 / size
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        speed = _speed(centre, fps)
        accel = _rate(np.nan_to_num(speed), fps) / 10
        velocity = _rate(np.nan_to_num(centre), fps)
        accel_mag = np.linalg.norm(_rate(velocity, fps), axis=-1) / 10
        log_area = np.log(w * h / refs[:, 1])
        log_aspect = np.log(w / h / refs[:, 2])
    features = np.stack([speed, accel, accel_mag, log_area, log_aspect], 1)
    return np.clip(np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0), -CLIP, CLIP).astype(np.float32)


@dataclass
class FeatureSpec:
    """How a model's per-frame pose and box-motion inputs are computed; recorded in checkpoints (`features`)."""
    pose_features: str = "body"  # "body" (this module, version 4) | "speeds" (its rates) | "crop" (utils.pose_features)
    num_keypoints: int = 0
    body_axis: tuple = (0, 0)  # (tail, head) keypoint indices
    min_keypoint_conf: float = 0.0
    crop_size: int = 0
    box_motion: bool = True
    version: int = FEATURE_SET_VERSION["body"]  # of the body set: 2 = without the steady rates, 3 = unsmoothed tracks
    social: bool = False  # several animals: utils.features.social features appended to the pose features
    track_smoothing_s: float = TRACK_SMOOTH_SECONDS  # version 4: tracks averaged over this long first
    spatial_dims: int = 2  # 3: 3D pose files, height_features appended to the body or speeds set
    sensor_channels: tuple = ()  # the recordings' sensor streams: utils.features.sensors after the box motion
    normalisation: str = "none"  # utils.features.recording_norm's modes, applied by whoever knows the recording

    def __post_init__(self):
        if self.spatial_dims == 3 and self.pose_features == "crop":
            from utils.errors import UserError
            raise UserError("pose features 'crop' are keypoints in the video crop, which 3D pose files do not have; "
                            "use --pose_features body or speeds with 3D keypoints")

    @property
    def pose_dim(self) -> int:
        if not self.num_keypoints:
            return 0
        from utils.features.social import SOCIAL_DIM  # utils.features.social builds on this module
        if self.pose_features == "crop":
            return pose_feature_dim(self.num_keypoints) + SOCIAL_DIM * self.social
        heights = HEIGHT_DIM_PER_KEYPOINT * self.num_keypoints * (self.spatial_dims == 3)
        if self.pose_features == "speeds":
            return len(body_rate_columns(self.num_keypoints, self.version)) + heights + SOCIAL_DIM * self.social
        return body_pose_feature_dim(self.num_keypoints, self.version) + heights + SOCIAL_DIM * self.social

    @property
    def motion_dim(self) -> int:
        """Box motion, then the sensor streams' features: the inputs that do not come from keypoints."""
        from utils.features.sensors import sensor_feature_dim
        return BOX_MOTION_DIM * self.box_motion + sensor_feature_dim(self.sensor_channels)

    def recorded(self) -> dict:
        values = {k: v for k, v in asdict(self).items() if k != "version"}
        version = FEATURE_SET_VERSION["crop"] if self.pose_features == "crop" else self.version
        return {"pose_features_version": version, **values, "body_axis": list(self.body_axis),
                "sensor_channels": list(self.sensor_channels)}

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> "FeatureSpec":
        """The spec a checkpoint records (utils.checkpoint brings older formats to the current one)."""
        features = ckpt["features"]
        known = {f.name for f in fields(cls)} - {"version"}
        values = {k: v for k, v in features.items() if k in known}
        crop = values["pose_features"] == "crop"
        version = FEATURE_SET_VERSION["body"] if crop else features["pose_features_version"]
        values.setdefault("track_smoothing_s", 0.0)  # checkpoints from before version 4 used raw tracks
        values.setdefault("spatial_dims", 2)  # checkpoints from before 3D pose files
        return cls(**{**values, "body_axis": tuple(values["body_axis"]), "version": version,
                      "sensor_channels": tuple(values.get("sensor_channels") or ())})

    def window_inputs(self, arrays: dict, fps: float, with_pose: bool) -> tuple:
        """(pose [T, pose_dim] or None, motion [T, motion_dim] or None) of one window. `arrays`: keypoints
        [T,K,3] crop px ("crop" set), keypoints_xy_raw [T,K,2] + keypoints_conf_raw [T,K] frame px, bbox_xyxy
        [T,4] frame px, scale_ref [T,3]; keypoints_z_raw [T,K] with 3D pose; sensor_raw [T,C,2] with sensor
        streams."""
        pose = motion = None
        if with_pose and self.pose_dim:
            if self.pose_features == "crop":
                pose = pose_features(arrays["keypoints"], self.crop_size, fps, self.min_keypoint_conf)
            else:
                pose = body_pose_features(arrays["keypoints_xy_raw"], arrays["keypoints_conf_raw"],
                                          arrays["scale_ref"], fps, self.body_axis, self.min_keypoint_conf,
                                          self.version, self.track_smoothing_s)
                if self.pose_features == "speeds":
                    pose = pose[:, body_rate_columns(self.num_keypoints, self.version)]
                if self.spatial_dims == 3:
                    pose = np.concatenate([pose, self._heights(arrays, fps)], 1)
        if pose is not None and self.social:
            pose = np.concatenate([pose, self._social(arrays, fps)], 1)
        if self.box_motion:
            motion = box_motion_features(arrays["bbox_xyxy"], arrays["scale_ref"], fps)
        if self.sensor_channels:
            motion = self._with_sensors(motion, arrays)
        return pose, motion

    def _with_sensors(self, motion, arrays: dict) -> np.ndarray:
        from utils.features.sensors import sensor_features
        if "sensor_raw" not in arrays:
            from utils.errors import UserError
            raise UserError(f"the model reads sensor streams ({', '.join(self.sensor_channels)}), but this data has "
                            f"none; put <name>.sensors.csv beside each recording (docs/formats.md), or train without "
                            f"them (--no-use_sensors)")
        sensors = sensor_features(arrays["sensor_raw"], self.sensor_channels)
        return sensors if motion is None else np.concatenate([motion, sensors], 1)

    def _heights(self, arrays: dict, fps: float) -> np.ndarray:
        if "keypoints_z_raw" not in arrays:
            from utils.errors import UserError
            raise UserError("the model was trained on 3D keypoints (x, y, z), but this data has no heights (z); "
                            "give it 3D pose files (Anipose CSV, docs/formats.md) or train a model on 2D ones")
        return height_features(arrays["keypoints_z_raw"], arrays["keypoints_conf_raw"], arrays["scale_ref"], fps,
                               self.min_keypoint_conf, self.track_smoothing_s)

    def _social(self, arrays: dict, fps: float) -> np.ndarray:
        """Social features of the window (zeros, partner absent, when the arrays hold no other animal)."""
        from utils.features.social import SOCIAL_DIM, social_features  # utils.features.social builds on this module
        xy = arrays["keypoints_xy_raw"]
        if "partner_xy_raw" not in arrays:
            return np.zeros((len(xy), SOCIAL_DIM), np.float32)
        return social_features(xy, arrays["keypoints_conf_raw"], arrays["partner_xy_raw"], arrays["partner_conf_raw"],
                               arrays["scale_ref"], fps, self.body_axis, self.min_keypoint_conf)


def augment_motion_inputs(arrays: dict, fps: float, rng, mirror_prob: float, scale_range: float,
                          speed_range: float, jitter: float, flip_idx) -> tuple:
    """Feature-space augmentation of one window's frame-pixel keypoints, boxes and scale references, drawn
    from `rng`: a mirror image (left/right keypoints swapped by flip_idx), a scale reference off by up to
    +-scale_range, a frame rate off by up to +-speed_range (speeds and turns scale), and keypoint noise of up to
    `jitter` body lengths (its spread drawn per window: trackers differ, and a model that saw only one noise level
    reads another's as movement or stillness). Returns (arrays, fps)."""
    out = dict(arrays)
    xy, boxes, refs = arrays["keypoints_xy_raw"].copy(), arrays["bbox_xyxy"].copy(), arrays["scale_ref"].copy()
    partner = arrays["partner_xy_raw"].copy() if "partner_xy_raw" in arrays else None
    if rng.random() < mirror_prob:
        xy[..., 0] = -xy[..., 0]
        boxes[:, [0, 2]] = -boxes[:, [2, 0]]
        if partner is not None:
            partner[..., 0] = -partner[..., 0]
        if flip_idx:
            xy, out["keypoints_conf_raw"] = xy[:, flip_idx], arrays["keypoints_conf_raw"][:, flip_idx]
            if "keypoints_z_raw" in arrays:
                out["keypoints_z_raw"] = arrays["keypoints_z_raw"][:, flip_idx]
            if partner is not None:
                partner, out["partner_conf_raw"] = partner[:, flip_idx], arrays["partner_conf_raw"][:, flip_idx]
    scale = rng.uniform(1 - scale_range, 1 + scale_range)
    refs[:, 0] *= scale
    refs[:, 1] *= scale * scale
    fps = fps * rng.uniform(1 - speed_range, 1 + speed_range)
    if jitter:
        noise_rng = np.random.default_rng(rng.getrandbits(62))
        spread = jitter * noise_rng.uniform()
        noise = noise_rng.standard_normal(xy.shape)
        xy = xy + noise * spread * reference_length(refs)[:, None, None]
        if "keypoints_z_raw" in out:
            z = out["keypoints_z_raw"]
            out["keypoints_z_raw"] = (z + noise_rng.standard_normal(z.shape) * spread
                                      * reference_length(refs)[:, None]).astype(np.float32)
    if partner is not None:
        out["partner_xy_raw"] = partner.astype(np.float32)
    out.update(keypoints_xy_raw=xy.astype(np.float32), bbox_xyxy=boxes, scale_ref=refs)
    return out, fps
