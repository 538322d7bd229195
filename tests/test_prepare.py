"""prepare_sequences_from_yolo.py end to end on tiny generated datasets with the committed tiny YOLO-pose."""
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import prepare_sequences_from_yolo as prep
from conftest import ROOT, prepare_args
from utils.data.crop_store import CropStoreReader
from utils.errors import UserError
from utils.synthetic import FLIP_IDX, KEYPOINT_NAMES, render_video, write_label_csv, write_video

FAST = ["--yolo_imgsz", "320", "--device", "cpu", "--crop_size", "96", "--window_size", "15", "--window_stride", "15"]


def run_prepare(dataset, out, weights, *extra):
    return prep.main(prepare_args("--dataset_root", dataset, "--output_root", out, "--yolo_weights", weights,
                                  *FAST, *extra))


def window_crops(manifest_dir: Path, entry: dict):
    """The crops of a window, from its video's crop store."""
    return CropStoreReader(manifest_dir / entry["crop_store"]).frames(entry["start_frame"], entry["end_frame"])


def all_entries(manifest):
    return [e for split in manifest["splits"].values() for e in split]


@pytest.fixture(scope="module")
def prepared(class_folder_dataset, tiny_yolo, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    manifest = run_prepare(class_folder_dataset, out, tiny_yolo, "--save_frame_crops", "--split_strategy", "video",
                           "--train_ratio", "0.5", "--val_ratio", "0.5", "--test_ratio", "0")
    return out, manifest


def test_manifest_schema_and_values(prepared):
    out, manifest = prepared
    on_disk = json.loads((out / "sequence_manifest.json").read_text())
    assert on_disk["schema_version"] == 3 and on_disk["splits"] == manifest["splits"]
    assert manifest["class_to_idx"] == {"groom": 0, "rear": 1, "walk": 2}
    assert manifest["idx_to_class"] == {"0": "groom", "1": "rear", "2": "walk"}
    meta = manifest["meta"]
    assert (meta["window_size"], meta["window_stride"], meta["crop_size"], meta["pad_ratio"]) == (15, 15, 96, 0.2)
    assert (meta["detector"], meta["yolo_task"], meta["yolo_imgsz"], meta["yolo_conf"]) == ("yolo", "pose", 320, 0.25)
    assert meta["num_keypoints"] == 6 and meta["keypoint_names"] == list(KEYPOINT_NAMES)
    assert meta["flip_idx"] == list(FLIP_IDX) and meta["fps"] == 30.0
    entries = all_entries(manifest)
    assert len(entries) == 6 * 3  # 6 clips x 45 frames / window 15 stride 15
    for e in entries:
        assert e["label"] == manifest["class_to_idx"][e["class_name"]]
        assert e["end_frame"] - e["start_frame"] == 14 and e["start_frame"] % 15 == 0
        assert e["source_video"].startswith(e["class_name"] + "/") and e["fps"] == 30.0
        assert (out / e["npz"]).is_file() and not Path(e["npz"]).is_absolute()
    assert len({e["id"] for e in entries}) == len(entries)
    assert (out / "config.yaml").is_file() and (out / "prepare.log").is_file()


def test_each_frame_is_stored_once_and_windows_read_their_frames_from_it(prepared):
    import h5py
    out, manifest = prepared
    for video, info in manifest["videos"].items():
        entries = [e for e in all_entries(manifest) if e["source_video"] == video]
        stores = {e["crop_store"] for e in entries}
        assert len(stores) == 1  # one store per video
        with h5py.File(out / stores.pop()) as store:
            assert store["crops"].shape == (info["frames"], 96, 96, 3)  # every frame once, none per window
            for e in entries:
                np.testing.assert_array_equal(window_crops(out, e), store["crops"][e["start_frame"]:e["end_frame"] + 1])
    with np.load(out / all_entries(manifest)[0]["npz"]) as npz:
        assert "frames" not in npz.files  # the window files hold no pixels


def test_schema_2_manifests_with_crops_in_the_window_files_are_still_read(prepared, tmp_path):
    """The previous layout (crops inside each window's npz) trains as before, with the same frames."""
    from data import WindowDataset
    from utils.io import atomic_save_npz
    out, manifest = prepared
    old = json.loads((out / "sequence_manifest.json").read_text())
    old["schema_version"] = 2
    for e in all_entries(old):
        with np.load(out / e["npz"]) as npz:
            arrays = {k: npz[k] for k in npz.files}
        e["npz"] = str(tmp_path / Path(e["npz"]).name)
        atomic_save_npz(e["npz"], frames=window_crops(out, e), **arrays)
        del e["crop_store"]
    (out / "old_manifest.json").write_text(json.dumps(old))
    new = WindowDataset(out / "sequence_manifest.json", "train")
    legacy = WindowDataset(out / "old_manifest.json", "train")
    assert len(new) == len(legacy) > 0
    for i in (0, len(new) - 1):
        assert torch.equal(new[i]["frames"], legacy[i]["frames"])


def test_video_split_never_leaks(prepared):
    _, manifest = prepared
    videos = {s: {e["source_video"] for e in entries} for s, entries in manifest["splits"].items()}
    assert not videos["train"] & videos["val"] and not videos["train"] & videos["test"]
    for c in ("walk", "groom", "rear"):  # 2 clips per class at 50/50: one in train, one in val
        assert sum(e["class_name"] == c for e in manifest["splits"]["train"]) == 3
        assert sum(e["class_name"] == c for e in manifest["splits"]["val"]) == 3


def test_npz_keypoints_land_on_the_animal(prepared, class_folder_dataset):
    out, manifest = prepared
    errors = []
    for e in all_entries(manifest):
        data = np.load(out / e["npz"], allow_pickle=False)
        crops = window_crops(out, e)
        assert crops.shape == (15, 96, 96, 3) and crops.dtype == np.uint8
        assert data["keypoints"].shape == (15, 6, 3) and data["keypoints"].dtype == np.float32
        assert list(data["frame_index"]) == list(range(e["start_frame"], e["end_frame"] + 1))
        assert set(data["detection_status"]) == {"detected"}
        truth = np.load(class_folder_dataset / Path(e["source_video"]).with_suffix(".truth.npz"))["keypoints"]
        crop = data["crop_xyxy"]  # [T,4] frame px of each crop square
        scale = 96 / (crop[:, 2] - crop[:, 0])
        truth_in_crop = (truth[data["frame_index"]] - crop[:, None, :2]) * scale[:, None, None]
        errors.append(np.linalg.norm(data["keypoints"][..., :2] - truth_in_crop, axis=-1))
        # the raw keypoints map to the stored crop keypoints exactly
        raw_mapped = (data["keypoints_xy_raw"] - crop[:, None, :2]) * scale[:, None, None]
        np.testing.assert_allclose(raw_mapped, data["keypoints"][..., :2], atol=1e-3)
    errors = np.concatenate([x.ravel() for x in errors])
    assert np.median(errors) < 3.0, f"median keypoint error {np.median(errors):.2f} crop px"
    assert np.mean(errors < 6.0) > 0.9


def test_tracking_tables_and_qa_crops(prepared):
    out, manifest = prepared
    for video, info in manifest["videos"].items():
        table = pd.read_csv(out / info["tracking"])  # relative to the manifest's folder (= out here)
        assert len(table) == info["frames"] == 45
        assert list(table["frame"]) == list(range(45))
        assert set(table["status"]) <= {"detected", "reused", "missed"}
        assert {"box_x1", "crop_y2", "kp5_conf"} <= set(table.columns)
    qa = sorted((out / "qa_crops").rglob("*.jpg"))
    assert len(qa) == len(all_entries(manifest))


def test_labelled_videos_take_the_centre_frame_label(long_video_dataset, tiny_yolo, tmp_path):
    manifest = run_prepare(long_video_dataset, tmp_path, tiny_yolo, "--window_stride", "10",
                           "--split_strategy", "window")
    assert manifest["meta"]["dataset_layout"] == "labelled_videos"
    entries = all_entries(manifest)
    # strided starts 0..130, plus the tail window aligned to the last frame (start 135): utils/data/windows.py
    assert len(entries) == 2 * ((150 - 15) // 10 + 1 + 1)
    assert sorted({e["start_frame"] for e in entries})[-2:] == [130, 135]
    for e in entries:
        with open(long_video_dataset / Path(e["source_video"]).with_suffix(".csv")) as f:
            labels = {int(r["frame"]): r["behavior"] for r in csv.DictReader(f)}
        assert e["class_name"] == labels[e["start_frame"] + 7]


def test_unlabelled_centre_frames_are_skipped_and_counted(tmp_path, tiny_yolo):
    video = render_video(["walk"] * 60, seed=21)
    write_video(tmp_path / "data" / "s.mp4", video.frames)
    write_label_csv(tmp_path / "data" / "s.csv", ["walk"] * 30)  # frames 30..59 have no label
    manifest = run_prepare(tmp_path / "data", tmp_path / "out", tiny_yolo, "--split_strategy", "window",
                           "--train_ratio", "1", "--val_ratio", "0", "--test_ratio", "0")
    assert [e["start_frame"] for e in all_entries(manifest)] == [0, 15]
    assert manifest["videos"]["s.mp4"]["dropped"] == {"unlabelled_centre_frame": 2}
    with_background = run_prepare(tmp_path / "data", tmp_path / "out2", tiny_yolo, "--background_label", "other",
                                  "--split_strategy", "window", "--train_ratio", "1", "--val_ratio", "0",
                                  "--test_ratio", "0")
    assert [e["class_name"] for e in all_entries(with_background)] == ["walk", "walk", "other", "other"]


def blank_out(frames, first, last):
    """Frames first..last replaced by an empty floor: the detector must miss them."""
    frames = list(frames)
    for i in range(first, last + 1):
        frames[i] = np.full_like(frames[i], 128)
    return frames


def test_missed_frames_drop_windows_unless_keep_last_box(tmp_path, tiny_yolo):
    video = render_video(["walk"] * 45, seed=8)
    write_video(tmp_path / "data" / "walk" / "v.mp4", blank_out(video.frames, 20, 23))
    args = ["--split_strategy", "window", "--train_ratio", "1", "--val_ratio", "0", "--test_ratio", "0"]
    manifest = run_prepare(tmp_path / "data", tmp_path / "a", tiny_yolo, *args)
    assert [e["start_frame"] for e in all_entries(manifest)] == [0, 30]
    assert manifest["videos"]["walk/v.mp4"]["dropped"] == {"missed_detection": 1}
    assert manifest["videos"]["walk/v.mp4"]["status_counts"] == {"detected": 41, "missed": 4}
    kept = run_prepare(tmp_path / "data", tmp_path / "b", tiny_yolo, "--keep_last_box", *args)
    entries = all_entries(kept)
    assert [e["start_frame"] for e in entries] == [0, 15, 30]
    data = np.load(tmp_path / "b" / entries[1]["npz"])
    assert list(data["detection_status"][5:9]) == ["reused"] * 4
    np.testing.assert_array_equal(data["bbox_xyxy"][5], data["bbox_xyxy"][4])


def test_bad_videos_and_empty_class_folders_are_reported_skips(tmp_path, tiny_yolo, class_folder_dataset):
    data = tmp_path / "data"
    shutil.copytree(class_folder_dataset / "walk", data / "walk")
    (data / "walk" / "corrupt.mp4").write_bytes(b"\x00\x01 not a video" * 100)
    (data / "walk" / "empty.MP4").write_bytes(b"")
    (data / "sniff").mkdir()
    manifest = run_prepare(data, tmp_path / "out", tiny_yolo, "--split_strategy", "window")
    summary = "\n".join(manifest["summary"])
    assert "class folder 'sniff' holds no video" in summary
    assert "corrupt.mp4" in summary and "empty.MP4" in summary
    assert manifest["class_to_idx"] == {"walk": 0}
    assert set(manifest["videos"]) == {"walk/clip_00.mp4", "walk/clip_01.mp4"}


def test_same_file_names_in_different_folders_do_not_collide(tmp_path, tiny_yolo):
    for sub, seed in (("a", 1), ("b", 2)):
        write_video(tmp_path / "data" / "walk" / sub / "clip.mp4", render_video(["walk"] * 15, seed=seed).frames)
    manifest = run_prepare(tmp_path / "data", tmp_path / "out", tiny_yolo, "--split_strategy", "window",
                           "--train_ratio", "1", "--val_ratio", "0", "--test_ratio", "0")
    entries = all_entries(manifest)
    assert len(entries) == 2 and len({e["npz"] for e in entries}) == 2
    a, b = (window_crops(tmp_path / "out", e) for e in entries)
    assert entries[0]["crop_store"] != entries[1]["crop_store"]
    assert not np.array_equal(a, b)


def test_nothing_detected_missing_weights_and_bad_ratios(tmp_path, tiny_yolo, class_folder_dataset):
    with pytest.raises(UserError, match="no windows were produced"):
        run_prepare(class_folder_dataset, tmp_path / "a", tiny_yolo, "--yolo_conf", "1.0")
    log_text = (tmp_path / "a" / "prepare.log").read_text()
    assert "no animal detected in any of the 45 frames" in log_text
    with pytest.raises(UserError, match="YOLO weights not found"):
        run_prepare(class_folder_dataset, tmp_path / "b", tmp_path / "yolov8n-pose.pt")
    with pytest.raises(UserError, match="must each lie in 0..1 and sum to 1"):
        run_prepare(class_folder_dataset, tmp_path / "c", tiny_yolo, "--train_ratio", "0.9")
    assert not (tmp_path / "c" / "sequence_manifest.json").exists()


def test_cli_error_is_one_line_and_exit_2(tmp_path, class_folder_dataset):
    proc = subprocess.run([sys.executable, str(ROOT / "prepare_sequences_from_yolo.py"), "--dataset_root",
                           str(class_folder_dataset), "--output_root", str(tmp_path), "--yolo_weights",
                           str(tmp_path / "missing.pt")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing.pt" in errors[0] and "Traceback" not in proc.stderr


def test_interrupted_run_leaves_no_manifest_and_resumes(tmp_path, tiny_yolo, class_folder_dataset, monkeypatch):
    out = tmp_path / "out"
    first = run_prepare(class_folder_dataset, out, tiny_yolo)
    npz_times = {e["npz"]: (out / e["npz"]).stat().st_mtime_ns for e in all_entries(first)}
    real_process = prep.process_video
    calls = []

    def interrupted(item, *a, **k):
        calls.append(item.rel)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_process(item, *a, **k)

    monkeypatch.setattr(prep, "process_video", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_prepare(class_folder_dataset, out, tiny_yolo, "--crop_size", "64")  # new settings, then Ctrl-C
    assert not (out / "sequence_manifest.json").exists()  # no manifest pointing at a mix of old and new
    assert not list(out.rglob("*.tmp*"))  # no half-written files
    monkeypatch.setattr(prep, "process_video", real_process)
    calls.clear()
    resumed = run_prepare(class_folder_dataset, out, tiny_yolo, "--skip_existing")  # original settings
    assert resumed["splits"] == first["splits"]
    unchanged = [n for n, t in npz_times.items() if (out / n).stat().st_mtime_ns == t]
    assert len(unchanged) == len(npz_times) - 2 * 3  # only the 2 videos redone at crop 64 were rewritten
    for e in all_entries(resumed):
        assert window_crops(out, e).shape[1] == 96


def test_manifest_elsewhere_points_at_the_files(tmp_path, tiny_yolo, class_folder_dataset):
    manifest_path = tmp_path / "manifests" / "run1.json"
    manifest = run_prepare(class_folder_dataset, tmp_path / "out", tiny_yolo, "--manifest_path", manifest_path,
                           "--split_strategy", "window")
    assert manifest_path.is_file() and not (tmp_path / "out" / "sequence_manifest.json").exists()
    for e in all_entries(manifest):
        assert e["npz"].startswith("../out/sequence_npz/") and (manifest_path.parent / e["npz"]).is_file()
    for info in manifest["videos"].values():
        assert (manifest_path.parent / info["tracking"]).is_file()


def test_bad_settings_fail_before_the_previous_manifest_is_touched(tmp_path, class_folder_dataset):
    (tmp_path / "sequence_manifest.json").write_text("{}")  # an earlier run's manifest
    with pytest.raises(UserError, match="detector='yollo' is not one of background, pose_file, yolo .did you mean 'yolo'"):
        prep.main(prepare_args("--dataset_root", class_folder_dataset, "--output_root", tmp_path,
                               "--config", write_detector_yaml(tmp_path, "yollo")))
    with pytest.raises(UserError, match="YOLO weights not found"):
        prep.main(prepare_args("--dataset_root", class_folder_dataset, "--output_root", tmp_path,
                               "--yolo_weights", tmp_path / "missing.pt"))
    assert (tmp_path / "sequence_manifest.json").read_text() == "{}"


def write_detector_yaml(tmp_path, name):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"preprocessing:\n  detector: {name}\n")
    return path


def test_changing_only_crop_or_window_reuses_the_detections(tmp_path, tiny_yolo, class_folder_dataset, monkeypatch,
                                                           caplog):
    from detectors import YoloDetector
    out = tmp_path / "out"
    first = run_prepare(class_folder_dataset, out, tiny_yolo)
    tables = {p.name: pd.read_csv(p) for p in (out / "tracking").glob("*.csv")}

    real_frames, detect = [], YoloDetector.detect

    def watched(self, frames):
        real_frames.extend(bool(f.any()) for f in frames)  # start-up calls use blank frames
        return detect(self, frames)
    monkeypatch.setattr(YoloDetector, "detect", watched)
    second = run_prepare(class_folder_dataset, out, tiny_yolo, "--crop_size", "64", "--window_size", "10",
                         "--window_stride", "10")
    assert "detections reused" in caplog.text and not any(real_frames)  # no video frame went to the detector
    for name, table in tables.items():  # the same boxes and keypoints, new crops around them
        again = pd.read_csv(out / "tracking" / name)
        pd.testing.assert_frame_equal(table.drop(columns=[c for c in table if c.startswith("crop_")]),
                                      again.drop(columns=[c for c in again if c.startswith("crop_")]), atol=1e-3)
    entry = all_entries(second)[0]
    crops = window_crops(out, entry)
    assert crops.shape[1:3] == (64, 64) and len(crops) == 10
    assert len(all_entries(second)) > len(all_entries(first))
    monkeypatch.undo()  # other weights: the detections must be made again
    other = tmp_path / "other.pt"
    shutil.copy(tiny_yolo, other)
    caplog.clear()
    run_prepare(class_folder_dataset, out, other, "--crop_size", "64")
    assert "detections reused" not in caplog.text
