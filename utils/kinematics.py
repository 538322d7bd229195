"""Kinematics of a tracked point (box centre or keypoint centre) in pixel units, from its per-frame track.

Missing frames are NaN; a step across a missing frame is NaN (never interpolated), and cumulative distance
counts only measured steps.
"""
import numpy as np


def point_kinematics(xy: np.ndarray, fps: float) -> dict:
    """xy [N,2] px -> step distance (px), speed (px/s), acceleration (px/s^2), cumulative distance (px), [N] each."""
    xy = np.asarray(xy, np.float64)
    step = np.full(len(xy), np.nan)
    if len(xy) > 1:
        step[1:] = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    speed = step * fps
    accel = np.full(len(xy), np.nan)
    if len(xy) > 2:
        accel[2:] = np.diff(speed[1:]) * fps
    cumulative = np.cumsum(np.nan_to_num(step, nan=0.0))
    return {"step_px": step, "speed_px_s": speed, "accel_px_s2": accel, "cumulative_px": cumulative}


def box_centres(boxes: np.ndarray) -> np.ndarray:
    """[N,4] xyxy (NaN rows for missed frames) -> [N,2] centres."""
    boxes = np.asarray(boxes, np.float64)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
