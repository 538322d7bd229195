"""Kinematics of a tracked point (box centre or keypoint centre) in pixels, and in cm when the scale is known,
from its per-frame track.

Missing frames are NaN; a step across a missing frame is NaN (never interpolated), and cumulative distance
counts only measured steps.
"""
import numpy as np


def point_kinematics(xy: np.ndarray, fps: float, prefix: str = "", pixels_per_cm: float = None) -> dict:
    """xy [N,2] px -> {<prefix>_step_px, _speed_px_s, _accel_px_s2, _cumulative_px}, [N] each: step distance,
    speed, acceleration, cumulative distance; with pixels_per_cm the same again in cm (_step_cm, _speed_cm_s...)."""
    xy = np.asarray(xy, np.float64)
    step = np.full(len(xy), np.nan)
    if len(xy) > 1:
        step[1:] = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    speed = step * fps
    accel = np.full(len(xy), np.nan)
    if len(xy) > 2:
        accel[2:] = np.diff(speed[1:]) * fps
    cumulative = np.cumsum(np.nan_to_num(step, nan=0.0))
    head = f"{prefix}_" if prefix else ""
    out = {f"{head}step_px": step, f"{head}speed_px_s": speed, f"{head}accel_px_s2": accel,
           f"{head}cumulative_px": cumulative}
    if pixels_per_cm:
        out.update({f"{head}step_cm": step / pixels_per_cm, f"{head}speed_cm_s": speed / pixels_per_cm,
                    f"{head}accel_cm_s2": accel / pixels_per_cm, f"{head}cumulative_cm": cumulative / pixels_per_cm})
    return out


def box_centres(boxes: np.ndarray) -> np.ndarray:
    """[N,4] xyxy (NaN rows for missed frames) -> [N,2] centres."""
    boxes = np.asarray(boxes, np.float64)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)


def interpolate_gaps(values: np.ndarray) -> np.ndarray:
    """[T, ...] with NaN gaps filled linearly in time between the known values of each column (nothing before the
    first or after the last known value): a keypoint the tracker lost for a few frames keeps its place, so the
    mean of the keypoints does not jump by a body part's offset whenever one drops out."""
    flat = np.asarray(values, np.float64).reshape(len(values), -1).copy()
    frames = np.arange(len(flat))
    for column in flat.T:
        known = np.isfinite(column)
        if known.sum() >= 2:
            inside = (frames > frames[known][0]) & (frames < frames[known][-1]) & ~known
            column[inside] = np.interp(frames[inside], frames[known], column[known])
    return flat.reshape(np.shape(values))


def animal_positions(boxes: np.ndarray, kp_centres: np.ndarray) -> np.ndarray:
    """[N,2] per frame: the keypoint centre where the frame has keypoints, else the box centre (NaN if missed)."""
    centres = box_centres(boxes)
    if kp_centres is None:
        return centres
    return np.where(np.isfinite(kp_centres).all(1, keepdims=True), kp_centres, centres)


def keypoint_box(xy: np.ndarray, margin: float) -> np.ndarray:
    """[x1, y1, x2, y2] around the given [N, 2] keypoints, grown by `margin` of the extent's longer side on each side
    (keypoints sit on the body's outline or inside it: the body reaches past them)."""
    low, high = xy.min(0), xy.max(0)
    grow = margin * max(float((high - low).max()), 1.0)
    return np.concatenate([low - grow, high + grow]).astype(np.float32)
