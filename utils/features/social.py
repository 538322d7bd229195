"""Several animals: features of one animal towards its nearest neighbour, and contact bouts between animals.

Social features (`social_features`, appended to an animal's pose features when the training data had several animals
per recording; FeatureSpec.social), per frame, towards the nearest other animal of that frame (by centroid):
    partner present     1    1 when another animal has any keypoint in this frame, else 0 (and every other value 0)
    centroid distance   1    |partner centroid - own centroid| / own body length reference
    nearest parts       1    smallest distance between any own and any partner keypoint / body length reference
    facing              2    cos and sin of the angle between the own tail->head axis and the direction from the own
                             head to the partner's centroid (cos 1: facing it)
    relative heading    2    cos and sin of the partner's heading minus the own (cos -1: head to head or tail to tail)
    approach speed      1    how fast the centroid distance shrinks, body lengths per second (negative: moving away),
                             from the distance averaged over SMOOTH_SECONDS and taken over SLOW_LAG_SECONDS centred
Missing values are 0; every value is clipped to +-CLIP.

Contact bouts (`contact_bouts`): for each pair of animals, the runs of frames in which their nearest keypoints are
closer than `distance` body lengths (the pair's median body length over the recording), lasting at least
`min_frames`.
"""
import itertools
import warnings

import numpy as np
import pandas as pd

from utils.features.motion import (CLIP, SLOW_LAG_SECONDS, SMOOTH_SECONDS, body_lengths, centred_mean, centred_rate,
                          centroids, reference_length)
from utils.pose_features import keypoints_present

SOCIAL_DIM = 8


def _headings(xy: np.ndarray, axis: tuple) -> np.ndarray:
    tail, head = axis
    vector = xy[:, head] - xy[:, tail]
    return np.arctan2(vector[:, 1], vector[:, 0])


def nearest_part_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest distance between any keypoint of a [T,K,2] and any of b [T,K,2] per frame (NaN when none)."""
    pairwise = np.linalg.norm(a[:, :, None] - b[:, None, :], axis=-1)
    with warnings.catch_warnings():  # a frame without any pair is NaN, as wanted
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmin(pairwise, axis=(1, 2))


def social_features(xy, conf, partner_xy, partner_conf, refs, fps: float, axis: tuple,
                    min_conf: float = 0.0) -> np.ndarray:
    """Own keypoints [T,K,2] + confidences [T,K], the nearest other animal's [T,K,2] + [T,K], scale references
    [T,3] -> [T, SOCIAL_DIM] float32 (module docstring)."""
    xy, partner_xy = np.asarray(xy, np.float64), np.asarray(partner_xy, np.float64)
    own, other = keypoints_present(xy, conf, min_conf), keypoints_present(partner_xy, partner_conf, min_conf)
    xy, partner_xy = np.where(own[..., None], xy, np.nan), np.where(other[..., None], partner_xy, np.nan)
    scale = reference_length(refs)
    centre, partner_centre = centroids(xy, own), centroids(partner_xy, other)
    heading, partner_heading = _headings(xy, axis), _headings(partner_xy, axis)
    with np.errstate(all="ignore"):
        distance = np.linalg.norm(partner_centre - centre, axis=-1) / scale
        nearest = nearest_part_distance(xy, partner_xy) / scale
        to_partner = partner_centre - xy[:, axis[1]]
        facing = np.arctan2(to_partner[:, 1], to_partner[:, 0]) - heading
        relative = partner_heading - heading
        approach = -centred_rate(centred_mean(distance, fps, SMOOTH_SECONDS), fps, SLOW_LAG_SECONDS)
    present = other.any(1).astype(np.float64)
    features = np.stack([present, distance, nearest, np.cos(facing), np.sin(facing), np.cos(relative),
                         np.sin(relative), approach], 1) * present[:, None]
    return np.clip(np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0), -CLIP, CLIP).astype(np.float32)


def contact_bouts(xy: np.ndarray, conf: np.ndarray, animals: list, axis: tuple, fps: float, distance: float,
                  min_frames: int) -> pd.DataFrame:
    """Contact bouts between every pair of animals of a pose recording (xy [T,I,K,2], conf [T,I,K])."""
    rows = []
    for a, b in itertools.combinations(range(len(animals)), 2):
        lengths = np.concatenate([body_lengths(xy[:, i], conf[:, i], axis) for i in (a, b)])
        body = float(np.nanmedian(lengths)) if np.isfinite(lengths).any() else np.nan
        gap = nearest_part_distance(xy[:, a], xy[:, b]) / body
        close = np.r_[False, np.nan_to_num(gap, nan=np.inf) < distance, False]
        edges = np.flatnonzero(np.diff(close.astype(np.int8)))
        for start, stop in zip(edges[::2], edges[1::2]):
            if stop - start >= min_frames:
                rows.append({"animal_a": animals[a], "animal_b": animals[b], "start_frame": int(start),
                             "end_frame": int(stop - 1), "start_time_s": round(start / fps, 4),
                             "duration_s": round((stop - start) / fps, 4),
                             "closest_body_lengths": round(float(np.nanmin(gap[start:stop])), 4)})
    columns = ["animal_a", "animal_b", "start_frame", "end_frame", "start_time_s", "duration_s", "closest_body_lengths"]
    return pd.DataFrame(rows, columns=columns)
