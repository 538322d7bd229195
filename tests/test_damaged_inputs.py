"""Never silently wrong: detector weights that would run code, files cut short, variable and made-up frame rates,
datasets that cannot teach, full and read-only output folders. Each case ends in a one-line error naming the file
and the cause, or in a correct result with a warning naming what was damaged; nothing already written is lost."""
import errno
import fractions
import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import prepare_args
from utils.errors import UserError
from utils.readers.pose_io import read_pose_file, write_pose_file
from utils.synthetic import make_pose_file_dataset


# ------------------------------------------------------------------------------------------- detector weights
def test_detector_weights_that_would_run_code_are_refused_before_anything_runs(tmp_path, tiny_yolo):
    import torch
    from detectors import load_yolo
    marker = tmp_path / "payload_ran"

    class Payload:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').write('ran')",)

    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match=r"evil\.pt refused, nothing in them was run: the file names builtins\.exec"):
        load_yolo(tmp_path / "evil.pt")
    assert not marker.exists()
    assert type(load_yolo(tiny_yolo).model).__name__ == "PoseModel"  # real detector weights load as before


def test_preprocessing_with_payload_weights_stops_before_any_video(tmp_path, class_folder_dataset):
    import torch
    from prepare_sequences_from_yolo import main as prepare
    torch.save({"model": {"hook": print}}, tmp_path / "w.pt")  # builtins.print: a callable, not a layer
    with pytest.raises(UserError, match="builtins.print"):
        prepare(prepare_args("--dataset_root", class_folder_dataset, "--output_root", tmp_path / "out",
                             "--yolo_weights", tmp_path / "w.pt"))
    assert not (tmp_path / "out" / "sequence_manifest.json").exists()


# ------------------------------------------------------------------------------------------------ videos
def write_video_at(path, times, size=(96, 128), faststart=False):
    """An H.264 mp4 whose frames are presented at `times` (s): noise frames, so the file is mostly frame data."""
    import av
    container = av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {})
    stream = container.add_stream("libx264", rate=60)
    stream.height, stream.width = size
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = stream.time_base = fractions.Fraction(1, 600)
    rng = np.random.default_rng(0)
    for t in times:
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8), format="rgb24")
        frame.pts = int(round(t * 600))
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    container.close()
    return path


def test_variable_frame_rate_is_refused_with_the_re_encode_command(tmp_path):
    from utils.data.video_io import video_info
    path = write_video_at(tmp_path / "vfr.mp4", [i / 60 for i in range(45)] + [0.75 + i / 20 for i in range(45)])
    with pytest.raises(UserError, match=r"vfr\.mp4 has a variable frame rate: frame \d+ is at .* "
                                        r"ffmpeg -i .*vfr\.mp4 -vf fps=60 .*vfr_cfr\.mp4") as error:
        video_info(path)
    assert "\n" not in str(error.value)
    steady = video_info(write_video_at(tmp_path / "cfr.mp4", [i / 30 for i in range(60)]))
    assert steady.frame_count == 60 and steady.fps == pytest.approx(30, rel=0.05) and steady.damage is None


def test_a_video_cut_short_is_read_as_far_as_it_goes_and_said_damaged(tmp_path, caplog):
    from utils.data.video_io import iter_frame_batches, video_info
    whole = write_video_at(tmp_path / "whole.mp4", [i / 30 for i in range(90)], faststart=True)
    data = whole.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:len(data) // 2])
    with caplog.at_level(logging.WARNING):
        info = video_info(tmp_path / "cut.mp4")
        decoded = sum(len(batch) for _, batch in iter_frame_batches(tmp_path / "cut.mp4", 16))
    assert info.declared_frames == 90 and 30 < info.frame_count < 60
    assert f"declares 90 frames, the file holds {info.frame_count}" in info.damage and "copy the file" in info.damage
    assert 30 < decoded <= info.frame_count
    assert "DAMAGED" in caplog.text and "cut.mp4" in caplog.text


def test_a_missing_frame_rate_comes_from_the_timestamps_or_is_named(monkeypatch):
    from utils.data import video_io
    info = video_io.VideoInfo("clip.mp4", 0.0, 50, 64, 48, declared_frames=50)
    video_io.check_time_base(info, np.arange(50) / 25.0)
    assert info.fps == pytest.approx(25.0)
    info = video_io.VideoInfo("one.mp4", 0.0, 1, 64, 48, declared_frames=1)
    with pytest.raises(UserError, match=r"one\.mp4 declares a frame rate of 0 fps .* ffmpeg -r 30"):
        video_io.check_time_base(info, np.array([0.0]))


def test_a_csv_named_like_a_pose_file_is_named_not_taken_for_a_video(tmp_path):
    from utils.data.video_io import video_info
    from utils.readers.pose_io import find_recordings
    bad = tmp_path / "mouse1DLC_resnet50.csv"
    bad.write_text("x,y\n1,2\n3,4\n")
    with pytest.raises(UserError, match=r"mouse1DLC_resnet50\.csv is named like a pose file but starts "
                                        r"'x,y', neither DeepLabCut's header"):
        video_info(bad)
    skipped = []
    assert find_recordings(tmp_path, True, skipped) == []
    assert len(skipped) == 1 and "mouse1DLC_resnet50.csv is named like a pose file" in skipped[0]


# ------------------------------------------------------------------------------------------ pose and labels
def dlc_csv(tmp_path, name="m1DLC_x.csv", frames=100):
    rng = np.random.default_rng(1)
    xy = rng.uniform(10, 200, (frames, 1, 3, 2)).astype(np.float32)
    return write_pose_file(tmp_path / name, xy, np.ones((frames, 1, 3), np.float32), ["nose", "body", "tail"])


def test_a_pose_csv_cut_mid_row_loses_that_row_and_says_so(tmp_path):
    text = dlc_csv(tmp_path).read_text()
    cut = tmp_path / "cutDLC_x.csv"
    cut.write_text(text[:len(text) // 2])
    whole_rows = text[:len(text) // 2].count("\n") - 4  # complete data rows (4 header rows)
    recording = read_pose_file(cut)
    assert recording.num_frames == whole_rows
    assert "is cut short" in recording.damage and "that frame is dropped" in recording.damage
    assert np.isfinite(recording.xy).all()  # no half row taken for a frame


def test_missing_pose_rows_keep_later_frames_at_their_times(tmp_path):
    lines = dlc_csv(tmp_path).read_text().splitlines()
    gap = tmp_path / "gapDLC_x.csv"
    gap.write_text("\n".join(lines[:4 + 20] + lines[4 + 30:]) + "\n")  # frames 20-29 absent
    recording, original = read_pose_file(gap), read_pose_file(tmp_path / "m1DLC_x.csv")
    assert recording.num_frames == 100 and "10 frames have no row (frames 20-29)" in recording.damage
    assert np.isnan(recording.xy[20:30]).all() and (recording.conf[20:30] == 0).all()
    np.testing.assert_allclose(recording.xy[30:], original.xy[30:])
    table = pd.read_hdf(write_pose_file(tmp_path / "hDLC_x.h5", original.xy, original.conf, original.keypoint_names))
    table.drop(index=range(40, 45)).to_hdf(tmp_path / "h2DLC_x.h5", key="df_with_missing")
    recording = read_pose_file(tmp_path / "h2DLC_x.h5")
    assert recording.num_frames == 100 and "5 frames have no row (frames 40-44)" in recording.damage
    np.testing.assert_allclose(recording.xy[45:], original.xy[45:])
    lines[10] = lines[10].rsplit(",", 2)[0]  # a short row in the middle: damage that cannot be placed
    (tmp_path / "midDLC_x.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"midDLC_x\.csv line 11 has 8 values, the header 10"):
        read_pose_file(tmp_path / "midDLC_x.csv")


def test_a_label_file_cut_mid_row_does_not_invent_a_behaviour(tmp_path, caplog):
    from utils.readers.labels import load_frame_labels
    path = tmp_path / "s.csv"
    path.write_text("frame,behavior\n0,groom\n1,groom\n2,walk\n3,gro")
    with caplog.at_level(logging.WARNING):
        labels = load_frame_labels(path, 6, 30.0)
    assert labels.labels == ["groom", "groom", "walk", None, None, None]
    assert "ends mid-row (line 5: '3,gro')" in caplog.text
    path.write_text("frame,behavior\n0,groom\n1,walk\n2,walk")  # no final line break, but a whole row
    assert load_frame_labels(path, 3, 30.0).labels == ["groom", "walk", "walk"]


# ------------------------------------------------------------------------------ a pose-only model, end to end
@pytest.fixture(scope="module")
def pose_model(tmp_path_factory):
    """A gbt model on 3 generated pose files of 240 frames (window 20): trained in seconds."""
    import train_behavior_lstm as train
    from prepare_sequences_from_yolo import main as prepare
    root = tmp_path_factory.mktemp("pose_model")
    make_pose_file_dataset(root / "data", 3, 240, seed=4)
    prepare(prepare_args("--dataset_root", root / "data", "--output_root", root / "prepared", "--detector",
                         "pose_file", "--pose_fps", 30, "--window_size", 20, "--window_stride", 10,
                         "--split_strategy", "window"))
    train.main(train.get_args_parser().parse_args([
        "--manifest_path", str(root / "prepared" / "sequence_manifest.json"), "--output_dir", str(root),
        "--run_name", "r", "--classifier", "gbt", "--use_pose", "--gbt_max_iter", "20", "--num_workers", "0"]))
    return root / "r" / "best_model_macro_f1.pt", root / "data"


def infer_args(model, source, out, *flags):
    import infer_behavior_lstm as infer
    return infer.get_args_parser().parse_args(["--model_path", str(model), "--video_path", str(source),
                                               "--output_dir", str(out), *map(str, flags)])


def test_batch_reports_a_cut_pose_file_as_damaged_not_ok(tmp_path, pose_model):
    import shutil
    import batch_process_videos as batch
    model, data = pose_model
    (tmp_path / "in").mkdir()
    shutil.copy(data / "session_00DLC_synthetic.csv", tmp_path / "in")
    text = (data / "session_01DLC_synthetic.csv").read_text()
    (tmp_path / "in" / "session_01DLC_synthetic.csv").write_text(text[:int(len(text) * 0.6)])
    summary = batch.main(batch.get_args_parser().parse_args([
        "--input_dir", str(tmp_path / "in"), "--output_root", str(tmp_path / "out"), "--model_path", str(model),
        "--pose_fps", "30"]))
    status = dict(zip(summary["video"], summary["status"]))
    assert status == {"session_00DLC_synthetic.csv": "ok", "session_01DLC_synthetic.csv": "damaged"}
    error = summary.set_index("video").loc["session_01DLC_synthetic.csv", "error"]
    assert "is cut short" in error and "export it again" in error
    saved = pd.read_csv(tmp_path / "out" / "batch_summary_1of1.csv")
    assert list(saved["status"]) == ["ok", "damaged"]
    metadata = pd.read_excel(tmp_path / "out" / "session_01.metrics.xlsx", sheet_name="metadata")
    assert "is cut short" in " ".join(map(str, metadata.to_numpy().ravel()))


def test_a_made_up_frame_rate_is_named_as_the_cause(tmp_path, pose_model):
    from infer_behavior_lstm import main as infer
    model, data = pose_model
    with pytest.raises(UserError, match=r"240 frames \(0\.24 s at 1000 fps\), fewer than one window of 667 frames; "
                                        r"if that is not the true frame rate"):
        infer(infer_args(model, data / "session_00DLC_synthetic.csv", tmp_path, "--pose_fps", 1000))
    with pytest.raises(UserError, match=r"runs at 0\.5 fps, the model was trained at 30 fps: its window of 0\.67 s "
                                        r"would be 0 frame\(s\)"):
        infer(infer_args(model, data / "session_00DLC_synthetic.csv", tmp_path, "--pose_fps", 0.5))


def test_a_failed_run_leaves_the_previous_outputs_whole(tmp_path, pose_model, monkeypatch):
    from infer_behavior_lstm import main as infer
    model, data = pose_model
    source = data / "session_00DLC_synthetic.csv"
    infer(infer_args(model, source, tmp_path, "--smoothing", "none"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith(".log")}
    assert {"session_00.behavior.csv", "session_00.frames.csv", "session_00.metrics.xlsx",
            "session_00.ethogram.png", "session_00.config.yaml"} <= set(before)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("utils.results.outputs.plot_ethogram", disk_full)  # after the CSVs and workbook
    with pytest.raises(UserError, match=rf"no space left in {tmp_path} \(.* free; this run had written .* when it "
                                        rf"ran out\); earlier outputs there are untouched") as error:
        infer(infer_args(model, source, tmp_path, "--smoothing", "median"))
    assert "\n" not in str(error.value)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith(".log")}
    assert after == before  # the previous set, whole: no new behavior.csv beside old frames.csv


def test_a_read_only_output_folder_is_one_line(tmp_path, monkeypatch):
    import tempfile
    from utils.io import output_set
    from utils.logging_utils import setup_logging

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    with pytest.raises(UserError, match=rf"cannot write in {tmp_path}: Read-only file system .* pass a folder you can "
                                        rf"write to \(--output_dir\)"):
        with output_set(tmp_path):
            pass
    monkeypatch.setattr(logging, "FileHandler", read_only)
    with pytest.raises(UserError, match=rf"cannot write in {tmp_path}: Read-only"):
        setup_logging(tmp_path / "x.log")


# ------------------------------------------------------------------------------------- datasets that cannot teach
def test_one_class_is_warned_at_preprocessing_and_refused_at_training(tmp_path, caplog):
    import train_behavior_lstm as train
    from prepare_sequences_from_yolo import main as prepare
    make_pose_file_dataset(tmp_path / "data", 2, 120, seed=2, behaviors=("rest",))
    with caplog.at_level(logging.WARNING):
        manifest = prepare(prepare_args("--dataset_root", tmp_path / "data", "--output_root", tmp_path / "prepared",
                                        "--detector", "pose_file", "--pose_fps", 30, "--window_size", 20,
                                        "--window_stride", 10))
    assert any("every window is one behaviour (rest)" in line for line in manifest["summary"])
    assert "every window is one behaviour (rest)" in caplog.text
    assert "video split keeps each in one split" in caplog.text  # 2 recordings cannot fill train, val and test
    with pytest.raises(UserError, match=r"every window is one behaviour \(rest\): a classifier learns nothing"):
        train.main(train.get_args_parser().parse_args([
            "--manifest_path", str(tmp_path / "prepared" / "sequence_manifest.json"), "--output_dir", str(tmp_path),
            "--classifier", "gbt", "--use_pose"]))


def test_teaching_problems_name_rare_classes_and_one_class_validation():
    from utils.data.splits import teaching_problems
    classes = {"train": ["a"] * 20 + ["b"] * 20 + ["c"] * 2, "val": ["a"] * 5, "test": []}
    problems = teaching_problems(classes, {"train": {"v1", "v2"}, "val": {"v3"}, "test": set()}, "video")
    assert any("c (2 windows) have fewer than 5 windows" in p for p in problems)
    assert any("val windows are all a: its macro-F1 scores only that class" in p for p in problems)
    assert not any("one behaviour" in p for p in problems)


def test_resume_is_checked_for_the_classifier_and_the_path(tmp_path, pose_model):
    import train_behavior_lstm as train
    manifest = pose_model[0].parent.parent / "prepared" / "sequence_manifest.json"
    base = ["--manifest_path", str(manifest), "--output_dir", str(tmp_path), "--use_pose"]
    with pytest.raises(UserError, match=r"--resume .*nothing\.pt: no such checkpoint"):
        train.main(train.get_args_parser().parse_args(base + ["--resume", str(tmp_path / "nothing.pt")]))
    with pytest.raises(UserError, match=r"classifier gbt trains in one go and has no epochs to continue"):
        train.main(train.get_args_parser().parse_args(base + ["--classifier", "gbt", "--resume", str(pose_model[0])]))


# ------------------------------------------------------------------------------------------ quiet numerics
def test_animals_out_of_view_give_no_numpy_warnings(tmp_path):
    from detectors import build_detector
    from utils.features.motion import nan_mean
    from utils.schema import PreprocessingConfig
    rng = np.random.default_rng(0)
    xy = rng.uniform(10, 200, (30, 2, 4, 2)).astype(np.float32)
    xy[5:15, 1] = np.nan  # the second animal is not seen for ten frames
    path = write_pose_file(tmp_path / "twoDLC_x.csv", xy, np.ones((30, 2, 4), np.float32),
                           ["snout", "leftear", "rightear", "tailbase"], ["m0", "m1"])
    detector = build_detector("pose_file", PreprocessingConfig(dataset_root=".", output_root=".",
                                                                detector="pose_file"))
    detector.prepare(path, "m0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detections = detector.detect_at(range(30))
        np.testing.assert_array_equal(nan_mean(np.array([[1.0, np.nan], [np.nan, np.nan]]), 1), [1.0, np.nan])
    assert np.isnan(detections[7].partner).all() and np.isfinite(detections[20].partner[:, :2]).all()


def test_a_crop_store_stops_before_the_disk_fills_and_leaves_no_partial_file(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    from utils.data import crop_store
    from utils.errors import DiskError
    writer = crop_store.CropStoreWriter(tmp_path / "frames" / "v.h5", 16)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 30, 1 << 30, 1 << 20))  # 1 MB free
    with pytest.raises(DiskError, match=r"no space left in .*frames \(1\.0 MB free\)"):
        for i in range(40):
            writer.put(i, np.zeros((16, 16, 3), np.uint8))
    assert list((tmp_path / "frames").iterdir()) == []
