"""Tracking-only runs (track_video.py) and zones: distance and speed from the tracked positions, time moving that
follows what the animal does, zone time, entries and latency counted frame by frame, and zones given wrongly
stopped before any frame."""
import numpy as np
import pandas as pd
import pytest

import track_video
from utils.errors import UserError
from utils.features.motion import centred_mean
from utils.readers.pose_io import write_pose_file
from utils.synthetic import FPS, KEYPOINT_NAMES, make_pose_file_dataset, sample_label_sequence, simulate_pose
from utils.results.zones import parse_zones, zone_table, zone_text

SQUARE = "box:10,10;20,10;20,20;10,20"


def run(*argv):
    return track_video.main(track_video.get_args_parser().parse_args([str(a) for a in argv]))


def test_zones_read_from_yaml_and_command_line_and_bad_ones_are_refused():
    yaml_zone = {"name": "corner", "polygon": [[0, 0], [100, 0], [0, 100]]}
    zones = parse_zones([SQUARE, yaml_zone])
    assert [z.name for z in zones] == ["box", "corner"] and zones[0].polygon.shape == (4, 2)
    assert parse_zones([zone_text(yaml_zone)])[0].polygon.tolist() == yaml_zone["polygon"]
    for bad, message in (("box:1,2;3,4", "not a polygon"), ("box:1,2;3,x;5,6", "cannot read"),
                         ({"polygon": [[0, 0]]}, "cannot read")):
        with pytest.raises(UserError, match=message):
            parse_zones([bad])
    with pytest.raises(UserError, match="used twice"):
        parse_zones([SQUARE, SQUARE])


def test_zone_time_entries_and_latency_are_counted_frame_by_frame():
    # x walks 0..11 at y 15: inside the box at x 10..11 (frames 10, 11) and again at frames 14, 15; frame 12 missed
    x = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, np.nan, 25, 15, 15], float)
    xy = np.stack([x, np.full_like(x, 15)], 1)
    labels = ["walk"] * 12 + ["rest"] * 4
    table = zone_table(xy, parse_zones([SQUARE]), fps=10, labels=labels, class_names=["walk", "rest"])
    rows = table.set_index("behavior")
    assert rows.loc["all", "time_in_zone_s"] == pytest.approx(0.4) and rows.loc["all", "entries"] == 2
    assert rows.loc["all", "latency_to_first_entry_s"] == pytest.approx(1.0)
    assert rows.loc["all", "percent_of_video"] == pytest.approx(25)
    assert rows.loc["walk", "time_in_zone_s"] == pytest.approx(0.2) and rows.loc["walk", "percent_of_behavior"] == \
        pytest.approx(100 * 2 / 12, abs=1e-3)  # the table is rounded to 4 decimals
    assert rows.loc["rest", "entries"] == 1 and rows.loc["rest", "latency_to_first_entry_s"] == pytest.approx(1.4)


def test_tracking_gives_the_true_distance_and_moving_time_despite_tracker_jitter(tmp_path):
    """A DeepLabCut-like file with 1.5 px of noise and 2% of points lost: distance within 10% of the true path's,
    moving while walking and still while resting."""
    rng = np.random.default_rng(4)
    labels = sample_label_sequence(600, rng)
    truth_xy, _ = simulate_pose(labels, seed=9, noise_px=0.0, dropout=0.0)
    noisy_xy, likelihood = simulate_pose(labels, seed=9)  # same path, the tracker's noise and losses added
    pose = tmp_path / "sessionDLC_test.csv"
    write_pose_file(pose, noisy_xy[:, None], likelihood[:, None], list(KEYPOINT_NAMES))
    results = run("--video_path", pose, "--detector", "pose_file", "--pose_fps", FPS, "--output_dir", tmp_path / "out",
                  "--pixels_per_cm", 4, "--zones", "everywhere:-1e5,-1e5;1e5,-1e5;1e5,1e5;-1e5,1e5")
    summary = results[0]["summary"]
    # the true centre's path at the tracker's time scale (0.3 s: a grooming animal's wiggle is not travel)
    true_path = np.linalg.norm(np.diff(centred_mean(truth_xy.mean(1).astype(float), FPS, 0.3), axis=0), axis=1).sum()
    jittery_path = np.linalg.norm(np.diff(noisy_xy.mean(1), axis=0), axis=1).sum()
    assert summary["distance_px"] == pytest.approx(true_path, rel=0.1) and jittery_path > 2 * true_path
    assert summary["distance_cm"] == pytest.approx(summary["distance_px"] / 4)
    table = pd.read_csv(tmp_path / "out" / "session.tracking.csv")
    assert len(table) == 600 and table["in_everywhere"].sum() == 600
    walking, resting = np.array(labels) == "walk", np.array(labels) == "rest"
    assert table["moving"][walking].mean() > 0.8 and table["moving"][resting].mean() < 0.2
    sheets = pd.read_excel(tmp_path / "out" / "session.tracking.xlsx", sheet_name=None)
    assert set(sheets) == {"summary", "per_frame", "zones", "metadata"}
    assert sheets["zones"].loc[0, "entries"] == 1 and sheets["zones"].loc[0, "time_in_zone_s"] == pytest.approx(20)
    for name in ("trajectory", "speed"):
        assert (tmp_path / "out" / f"session.{name}.png").stat().st_size > 10_000


def test_each_animal_of_a_multi_animal_file_is_tracked(tmp_path):
    pose, = make_pose_file_dataset(tmp_path / "data", 1, 120, seed=5, animals=2)
    results = run("--video_path", tmp_path / "data", "--detector", "pose_file", "--pose_fps", 30)
    assert len(results) == 2
    for animal in ("mouse0", "mouse1"):
        assert len(pd.read_csv(tmp_path / "data" / f"session_00.{animal}.tracking.csv")) == 120


def test_wrong_inputs_stop_before_any_frame(tmp_path):
    pose, = make_pose_file_dataset(tmp_path, 1, 60, seed=6)
    with pytest.raises(UserError, match="--detector pose_file"):
        run("--video_path", pose, "--yolo_weights", "missing.pt")
    with pytest.raises(UserError, match="not a polygon"):
        run("--video_path", pose, "--detector", "pose_file", "--zones", "a:1,2")
    with pytest.raises(UserError, match="does not exist"):
        run("--video_path", tmp_path / "nothing.mp4")
