"""The held-out generator variant: its camera and its behaviours are what its docstring says."""
import dataclasses

import numpy as np
import pytest

from utils.synthetic import FRAME_H, FRAME_W, KEYPOINT_NAMES, sample_label_sequence
from utils.synthetic_variant import project, sample_animal, simulate_variant_pose

NOSE, NECK, TAIL_BASE = (KEYPOINT_NAMES.index(k) for k in ("nose", "neck", "tail_base"))


@pytest.fixture(scope="module")
def recording():
    labels = np.array(sample_label_sequence(1800, np.random.default_rng(3), 30, 75))
    xy, conf, animal = simulate_variant_pose(list(labels), seed=11)
    return labels, xy, conf, animal


def test_camera_perspective_and_barrel_distortion():
    animal = dataclasses.replace(sample_animal(np.random.default_rng(0)), centre_offset=(0.0, 0.0), distortion=0.0)
    centre = np.array([FRAME_W / 2, FRAME_H / 2])
    assert np.allclose(project(np.zeros(3), animal), centre)
    floor, raised = project(np.array([10.0, 5.0, 0.0]), animal), project(np.array([10.0, 5.0, 20.0]), animal)
    magnified = np.linalg.norm(raised - centre) / np.linalg.norm(floor - centre)
    assert magnified == pytest.approx(animal.camera_height / (animal.camera_height - 20.0))
    corner = np.array([animal.arena / 2, animal.arena / 2, 0.0])
    barrel = dataclasses.replace(animal, distortion=-0.2)
    assert np.linalg.norm(project(corner, barrel) - centre) < 0.95 * np.linalg.norm(project(corner, animal) - centre)


def test_same_seed_same_recording_other_seed_other_animal(recording):
    labels, xy, conf, animal = recording
    again = simulate_variant_pose(list(labels), seed=11)
    other = simulate_variant_pose(list(labels), seed=12)
    assert np.array_equal(again[0], xy) and np.array_equal(again[1], conf)
    assert other[2].body_length != animal.body_length and not np.allclose(other[0], xy)
    assert xy.shape == (len(labels), len(KEYPOINT_NAMES), 2) and 0.02 < (conf < 0.3).mean() < 0.05


def speed(track: np.ndarray, length: float, lag: int = 6) -> np.ndarray:
    """Body lengths per second over `lag` frames (0.2 s: above the tracker's noise, below the 3-8 Hz rhythms'
    half period only for the slowest; used for paths, not rhythms)."""
    return np.r_[np.zeros(lag), np.linalg.norm(track[lag:] - track[:-lag], axis=1)] * 30 / lag / length


def test_behaviours_move_as_described(recording):
    labels, xy, _, animal = recording
    length = np.median(np.linalg.norm(xy[labels == "walk", NOSE] - xy[labels == "walk", TAIL_BASE], axis=1))
    tail_speed, nose_speed = speed(xy[:, TAIL_BASE], length), speed(xy[:, NOSE], length)
    axis = xy[:, NECK] - xy[:, TAIL_BASE]
    angle, lag = np.unwrap(np.arctan2(axis[:, 1], axis[:, 0])), 6
    turning = np.r_[np.zeros(lag), np.abs(angle[lag:] - angle[:-lag])] * 30 / lag  # rad/s
    shown = np.linalg.norm(xy[:, NOSE] - xy[:, TAIL_BASE], axis=1) / length

    def median(values, behaviour):  # inside bouts: posture eases in over a few frames
        inside = (labels == behaviour) & (np.roll(labels, 6) == behaviour)
        return float(np.median(values[inside]))

    assert 0.7 < median(tail_speed, "walk") < 2.6  # body lengths per second
    assert median(tail_speed, "rest") < 0.3 and median(tail_speed, "rear") < 0.3
    assert 2.0 < median(turning, "turn") < 7.0 and median(turning, "walk") < 0.5 * median(turning, "turn")
    assert median(tail_speed, "turn") < median(nose_speed, "turn")  # pivots behind the head
    assert median(shown, "rear") < 0.85 and median(shown, "groom") < 0.9  # pitched up / hunched with the head down
    circling = speed(xy[:, NOSE], length, lag=1)  # frame to frame: the 3-8 Hz rhythm, and the tracker's noise
    assert median(circling, "groom") > 1.5 * median(circling, "rest")
