"""train_detector.py: DeepLabCut labelled frames (every CollectedData layout) and tracker predictions become an
Ultralytics YOLO-pose dataset whose boxes hold their keypoints, whose images and labels pair up and whose flip_idx
swaps left and right; a short training run writes weights that name their keypoints and a keypoint-error report.
The real m4s1 frames are checked when ../shared is present."""
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

import train_detector
from detectors import build_detector
from utils.errors import UserError
from utils.readers.pose_io import write_pose_file
from utils.schema import PreprocessingConfig
from utils.synthetic import FRAME_H, FRAME_W, KEYPOINT_NAMES, render_video, sample_label_sequence, write_video
from utils.detection.yolo_dataset import pseudo_labels, read_dlc_labels, read_yolo_labels, write_yolo_dataset

NAMES = list(KEYPOINT_NAMES)  # nose, left_ear, right_ear, neck, tail_base, tail_tip


def labelled_frames(folder: Path, count: int, seed: int = 0) -> np.ndarray:
    """PNG frames of a generated video in folder, and their true keypoints [count, K, 2]."""
    rng = np.random.default_rng(seed)
    video = render_video(sample_label_sequence(count * 4, rng, min_bout=8, max_bout=20), seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    picks = np.arange(0, count * 4, 4)
    for i, frame in enumerate(picks):
        cv2.imwrite(str(folder / f"img{i:04d}.png"), video.frames[frame])
    return video.keypoints[picks].astype(np.float64)


def dlc_table(folder: Path, xy: np.ndarray, individuals=None, index_levels: int = 1) -> pd.DataFrame:
    """A CollectedData table as DeepLabCut writes it (one- or three-level image index, optional individuals)."""
    xy = xy if individuals else xy[:, None]
    individuals = individuals or [None]
    columns = [("me",) + ((ind,) if ind else ()) + (part, c) for ind in individuals for part in NAMES for c in "xy"]
    names = ["scorer"] + (["individuals"] if individuals[0] else []) + ["bodyparts", "coords"]
    images = [("labeled-data", folder.name, f"img{i:04d}.png") for i in range(len(xy))]
    index = (pd.MultiIndex.from_tuples(images) if index_levels == 3 else pd.Index(["/".join(p) for p in images]))
    return pd.DataFrame(xy.reshape(len(xy), -1), index=index, columns=pd.MultiIndex.from_tuples(columns, names=names))


def test_every_collected_data_layout_reads_the_same_points(tmp_path):
    xy = labelled_frames(tmp_path / "v1", 6)
    xy[2, 1] = np.nan  # the labeller did not see the left ear in frame 2
    table = dlc_table(tmp_path / "v1", xy)
    table.to_csv(tmp_path / "v1" / "CollectedData_me.csv")
    names, images = read_dlc_labels(tmp_path / "v1" / "CollectedData_me.csv")
    assert names == NAMES and [im.image.name for im in images] == [f"img{i:04d}.png" for i in range(6)]
    np.testing.assert_allclose(np.stack([im.xy[0] for im in images]), xy, atol=1e-6)
    for layout, write in (("three-level index", lambda p: dlc_table(tmp_path / "v1", xy, index_levels=3).to_csv(p)),
                          ("HDF5", lambda p: dlc_table(tmp_path / "v1", xy, index_levels=3).to_hdf(p, key="df"))):
        path = tmp_path / "v1" / ("CollectedData_other.h5" if layout == "HDF5" else "CollectedData_other.csv")
        write(path)
        names, other = read_dlc_labels(path)
        assert names == NAMES, layout
        np.testing.assert_allclose(np.stack([im.xy[0] for im in other]), xy, atol=1e-6, err_msg=layout)
        path.unlink()


def test_multi_animal_labels_give_one_box_per_animal_and_the_yolo_layout_holds(tmp_path):
    first = labelled_frames(tmp_path / "v2", 4, seed=1)
    second = first + np.array([200.0, 40.0])  # another animal, elsewhere
    second[1] = np.nan  # not in frame 1 at all
    table = dlc_table(tmp_path / "v2", np.stack([first, second], 1), ["a", "b"])
    table.to_csv(tmp_path / "v2" / "CollectedData_me.csv")
    names, images = read_dlc_labels(tmp_path / "v2" / "CollectedData_me.csv")
    assert [len(im.xy) for im in images] == [2, 1, 2, 2]
    data_yaml = write_yolo_dataset(tmp_path / "yolo", images[:3], images[3:], names, margin=0.15)
    spec = yaml.safe_load(data_yaml.read_text())
    assert spec["kpt_shape"] == [6, 3] and spec["kpt_names"] == {0: NAMES}
    assert spec["flip_idx"] == [0, 2, 1, 3, 4, 5]  # left_ear <-> right_ear
    for split, expected in (("train", images[:3]), ("val", images[3:])):
        pictures = sorted((tmp_path / "yolo" / "images" / split).iterdir())
        labels = sorted((tmp_path / "yolo" / "labels" / split).iterdir())
        assert [p.stem for p in pictures] == [p.stem for p in labels] and len(labels) == len(expected)
        for label, item in zip(labels, expected):
            boxes, xy = read_yolo_labels(label, 6, FRAME_W, FRAME_H)
            np.testing.assert_allclose(xy, np.clip(item.xy, 0, [FRAME_W, FRAME_H]), atol=0.01)
            inside = (xy >= boxes[:, None, :2] - 1e-6) & (xy <= boxes[:, None, 2:] + 1e-6)
            assert inside.all(-1)[np.isfinite(xy).all(-1)].all()  # every box holds its animal's keypoints


def test_pseudo_labels_keep_confident_frames_without_jumps(tmp_path):
    rng = np.random.default_rng(3)
    video = render_video(sample_label_sequence(60, rng, min_bout=10, max_bout=20), seed=3)
    write_video(tmp_path / "s.mp4", video.frames, video.fps)
    xy = video.keypoints[:, None].astype(np.float64)
    conf = np.ones(xy.shape[:3])
    conf[10, 0, 2] = 0.3  # an unsure right ear
    xy[20, 0] = xy[20, 0, ::-1]  # a head/tail swap for one frame: a jump in and a jump out
    write_pose_file(tmp_path / "sDLC_test.csv", xy, conf, NAMES)
    names, images = pseudo_labels(tmp_path / "s.mp4", tmp_path / "sDLC_test.csv", tmp_path / "frames",
                                  min_likelihood=0.9, every=1, max_jump=0.3)
    used = [int(im.image.stem.split("_")[-1]) for im in images]
    assert names == NAMES and 10 not in used and 20 not in used and 21 not in used and len(used) == 57
    assert all(im.group == "pseudo:s" and im.image.is_file() for im in images)
    np.testing.assert_allclose(images[5].xy, video.keypoints[used[5]][None], atol=0.01)


def test_a_short_training_run_reports_keypoint_error_and_names_its_keypoints(tmp_path):
    os.environ["YOLO_OFFLINE"] = "1"
    xy = labelled_frames(tmp_path / "labeled-data" / "v1", 12)
    dlc_table(tmp_path / "labeled-data" / "v1", xy).to_csv(tmp_path / "labeled-data" / "v1" / "CollectedData_me.csv")
    result = train_detector.main(train_detector.get_args_parser().parse_args([
        "--dlc_labels", str(tmp_path / "labeled-data"), "--output_dir", str(tmp_path / "out"), "--epochs", "1",
        "--imgsz", "64", "--batch", "4", "--device", "cpu", "--workers", "0", "--val_fraction", "0.25"]))
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report == result and report["animals"] == 3  # a quarter of 12 labelled frames held out
    assert 0 <= report["box_map50"] <= 1 and report["animals_missed"] <= 3
    detector = build_detector("yolo", PreprocessingConfig(yolo_weights=str(tmp_path / "out" / "best.pt"), device="cpu"))
    assert detector.keypoint_names == NAMES  # kept in the weights, where the frame pipeline reads them


def test_bad_inputs_stop_with_the_fix(tmp_path):
    with pytest.raises(UserError, match="either --dlc_labels"):
        train_detector.main(train_detector.get_args_parser().parse_args(["--output_dir", str(tmp_path)]))
    (tmp_path / "v").mkdir()
    with pytest.raises(UserError, match="no CollectedData"):
        train_detector.main(train_detector.get_args_parser().parse_args(["--dlc_labels", str(tmp_path / "v"),
                                                                         "--output_dir", str(tmp_path / "o")]))
    xy = labelled_frames(tmp_path / "w", 2)
    dlc_table(tmp_path / "w", xy).to_csv(tmp_path / "w" / "CollectedData_me.csv")
    (tmp_path / "w" / "img0001.png").unlink()
    with pytest.raises(UserError, match="img0001.png does not exist"):
        read_dlc_labels(tmp_path / "w" / "CollectedData_me.csv")


def test_real_deeplabcut_labelled_frames_convert(shared_data, tmp_path):
    """The 116 hand-labelled frames of m4s1: boxes contain their keypoints, images and labels pair up."""
    folder = shared_data / "openfield" / "labeled-data" / "m4s1"
    names, images = read_dlc_labels(folder / "CollectedData_Pranav.csv")
    assert names == ["snout", "leftear", "rightear", "tailbase"] and len(images) == 116
    data_yaml = write_yolo_dataset(tmp_path / "yolo", images[:96], images[96:], names, margin=0.15)
    assert yaml.safe_load(data_yaml.read_text())["flip_idx"] == [0, 2, 1, 3]
    labels = sorted((tmp_path / "yolo" / "labels" / "train").iterdir())
    pictures = {p.stem for p in (tmp_path / "yolo" / "images" / "train").iterdir()}
    assert len(labels) == 96 and {p.stem for p in labels} == pictures
    for label, item in zip(labels, images[:96]):
        boxes, xy = read_yolo_labels(label, 4, 640, 480)
        np.testing.assert_allclose(xy[np.isfinite(xy)], np.clip(item.xy, 0, [640, 480])[np.isfinite(xy)], atol=0.01)
        seen = np.isfinite(xy).all(-1)
        assert ((xy >= boxes[:, None, :2] - 1e-6) & (xy <= boxes[:, None, 2:] + 1e-6)).all(-1)[seen].all()
