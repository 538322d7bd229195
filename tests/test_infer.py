"""infer_behavior_lstm.py on generated long videos with known labels."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

import infer_behavior_lstm as infer
import train_behavior_lstm as train
from conftest import train_args
from utils.errors import UserError
from utils.synthetic import make_long_video_dataset

BEHAVIORS = ("walk", "rest", "groom", "turn")  # those of pose_manifest


@pytest.fixture(scope="module")
def models(pose_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("infer_runs")
    train.main(train_args(pose_manifest, out, "--run_name", "pose", "--epochs", "25", "--patience", "0"))
    # the two fused models are plumbing (one epoch): no augmented views in their feature cache (those are tested
    # in test_train), which took two thirds of their training time
    train.main(train_args(pose_manifest, out, "--run_name", "fused", "--epochs", "1", "--backbone", "resnet18",
                          "--no_pretrained_backbone", "--cache_augmented_views", "0"))
    train.main(train_args(pose_manifest, out, "--run_name", "gbt", "--classifier", "gbt", "--gbt_max_iter", "100"))
    train.main(train_args(pose_manifest, out, "--run_name", "ensemble", "--epochs", "12", "--patience", "0",
                          "--ensemble_members", "3"))
    train.main(train_args(pose_manifest, out, "--run_name", "fused_ensemble", "--epochs", "1", "--backbone",
                          "resnet18", "--no_pretrained_backbone", "--ensemble_members", "2", "--cache_augmented_views",
                          "0"))
    return {name: out / name / "best_model.pt" for name in ("pose", "fused", "gbt", "ensemble", "fused_ensemble")}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("long_videos")
    long_video, = make_long_video_dataset(root / "a", 1, 450, seed=21, min_bout=40, max_bout=90, behaviors=BEHAVIORS)
    short, = make_long_video_dataset(root / "b", 1, 64, seed=22, behaviors=BEHAVIORS)
    return {"long": long_video, "short": short}


def run(model, video, out, *extra):
    return infer.main(infer.get_args_parser().parse_args(
        ["--model_path", str(model), "--video_path", str(video), "--output_dir", str(out), "--device", "cpu",
         *[str(e) for e in extra]]))


def test_timeline_covers_the_video_and_beats_chance(models, videos, tmp_path):
    result = run(models["pose"], videos["long"], tmp_path, "--min_bout_s", "0.2")
    bouts = pd.read_csv(tmp_path / "session_00.behavior.csv")
    assert bouts["start_frame"].iloc[0] == 0 and bouts["end_frame"].iloc[-1] == 449
    assert (bouts["start_frame"].iloc[1:].values == bouts["end_frame"].iloc[:-1].values + 1).all()
    np.testing.assert_allclose(bouts["duration_s"], (bouts["end_frame"] - bouts["start_frame"] + 1) / 30, atol=1e-3)
    assert (bouts["duration_s"] >= 0.2 - 1e-6).all()  # 0.2 s = 6 frames at 30 fps: shorter ones were merged
    frames = pd.read_csv(tmp_path / "session_00.frames.csv")
    assert "min_bout_s: 0.2" in (tmp_path / "session_00.config.yaml").read_text()  # the resolved settings
    assert len(frames) == 450 and result["windows_with_pose"] == result["windows"]
    truth = pd.read_csv(videos["long"].with_suffix(".csv"))["behavior"]
    f1 = f1_score(truth, frames["label"], labels=list(BEHAVIORS), average="macro", zero_division=0)
    assert f1 > 0.5, f"per-frame macro-F1 {f1:.2f} (chance about 0.25)"


def test_gradient_boosted_trees_classify_through_the_same_inference(models, videos, tmp_path):
    result = run(models["gbt"], videos["long"], tmp_path)
    frames = pd.read_csv(tmp_path / "session_00.frames.csv")
    assert len(frames) == 450 and result["windows_with_pose"] == result["windows"] > 0
    truth = pd.read_csv(videos["long"].with_suffix(".csv"))["behavior"]
    f1 = f1_score(truth, frames["label"], labels=list(BEHAVIORS), average="macro", zero_division=0)
    assert f1 > 0.5, f"gbt per-frame macro-F1 {f1:.2f} (chance about 0.25)"


def test_trees_on_the_speeds_feature_set_record_it_and_classify_by_movement(pose_manifest, videos, tmp_path):
    from predictor import Predictor
    from utils.checkpoint import load_checkpoint
    from utils.schema import InferenceConfig
    train.main(train_args(pose_manifest, tmp_path, "--run_name", "speeds", "--classifier", "gbt", "--gbt_max_iter",
                          "100", "--pose_features", "speeds"))
    model = tmp_path / "speeds" / "best_model.pt"
    features = load_checkpoint(model)["features"]
    assert features["pose_features"] == "speeds" and features["pose_features_version"] == 4
    predictor = Predictor.from_checkpoint(model, InferenceConfig(device="cpu"))
    k = features["num_keypoints"]
    assert predictor.features.pose_dim == k + 7  # keypoint speeds, 3 rates, 4 steady rates
    run(model, videos["long"], tmp_path / "out")
    frames = pd.read_csv(tmp_path / "out" / "session_00.frames.csv")
    truth = pd.read_csv(videos["long"].with_suffix(".csv"))["behavior"]
    f1 = f1_score(truth, frames["label"], labels=list(BEHAVIORS), average=None, zero_division=0)
    assert f1.mean() > 0.7, f"speeds-set per-frame F1 {np.round(f1, 2)} (chance about 0.25)"


def test_a_video_unlike_training_is_flagged_in_the_outputs(models, videos, tmp_path, caplog):
    """The same animal and behaviours, but the file says 10 frames/s for a 30 frames/s recording (a wrong frame
    rate, as a re-encoded video can carry): every speed is a third of the truth. The drift score and the frame-rate
    ratio go to the workbook and the result, and the run warns."""
    from utils.synthetic import render_video, write_video
    labels = pd.read_csv(videos["long"].with_suffix(".csv"))["behavior"].tolist()
    write_video(tmp_path / "slow.mp4", render_video(labels, seed=21).frames, fps=10)
    normal = run(models["gbt"], videos["long"], tmp_path / "normal")["drift"]
    caplog.clear()
    slow = run(models["gbt"], tmp_path / "slow.mp4", tmp_path / "slow")["drift"]
    assert not normal["drift_warning"] and slow["drift_warning"], (normal, slow)
    assert "looks unlike the training videos" in caplog.text and "frame rate is 0.33 times" in caplog.text
    assert slow["frame_rate_ratio"] == pytest.approx(1 / 3, abs=1e-3) and normal["frame_rate_ratio"] == 1
    meta = pd.read_excel(tmp_path / "slow" / "slow.metrics.xlsx", sheet_name="metadata").set_index("key")["value"]
    assert meta["drift_warning"] == "True" and float(meta["drift_score"]) == slow["drift_score"]
    windows = pd.read_excel(tmp_path / "slow" / "slow.metrics.xlsx", sheet_name="windows")
    assert (windows["distance_to_training"] > 0).all()


def test_each_frame_goes_through_the_backbone_once(models, videos, tmp_path):
    result = run(models["fused"], videos["short"], tmp_path, "--window_stride", "4")
    assert result["frames"] == 64 and result["windows"] == (64 - 16) // 4 + 1
    assert result["backbone_frames"] == 64  # 13 overlapping windows of 16, yet every frame encoded once


def test_an_ensemble_classifies_through_the_same_inference_encoding_each_frame_once(models, videos, tmp_path):
    from utils.checkpoint import load_checkpoint
    ckpt = load_checkpoint(models["ensemble"])
    assert ckpt["model_args"]["ensemble_members"] == 3 and "members.2.classifier.weight" in ckpt["model"]
    result = run(models["ensemble"], videos["long"], tmp_path / "pose")
    frames = pd.read_csv(tmp_path / "pose" / "session_00.frames.csv")
    assert len(frames) == 450 and result["windows_with_pose"] == result["windows"] > 0
    truth = pd.read_csv(videos["long"].with_suffix(".csv"))["behavior"]
    f1 = f1_score(truth, frames["label"], labels=list(BEHAVIORS), average="macro", zero_division=0)
    assert f1 > 0.5, f"ensemble per-frame macro-F1 {f1:.2f} (chance about 0.25)"
    result = run(models["fused_ensemble"], videos["short"], tmp_path / "fused", "--window_stride", "4")
    assert result["backbone_frames"] == 64  # two members, one backbone: every frame encoded once


def test_a_video_classified_again_replays_its_detections_exactly(models, videos, tmp_path, caplog):
    """A second run on the same video skips the detector and writes the very same outputs; another detect_every, a
    changed video, --no-reuse_detections or a damaged cache entry detect afresh."""
    import os
    import shutil

    from utils.detection.detection_cache import cache_file
    video = tmp_path / "clip.mp4"
    shutil.copy(videos["short"], video)
    first = run(models["fused"], video, tmp_path / "first")
    again = run(models["fused"], video, tmp_path / "again")
    assert not first["detections_reused"] and again["detections_reused"]
    assert "detections of an earlier run reused" in caplog.text
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "first" / "clip.frames.csv"),
                                  pd.read_csv(tmp_path / "again" / "clip.frames.csv"))  # boxes, crops, probabilities
    assert again["backbone_frames"] == 64  # the frames are still decoded and cropped for the backbone
    assert not run(models["fused"], video, tmp_path / "sparse", "--detect_every", "2")["detections_reused"]
    assert not run(models["fused"], video, tmp_path / "fresh", "--no-reuse_detections")["detections_reused"]
    stat = video.stat()
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the video changed since
    assert not run(models["fused"], video, tmp_path / "touched")["detections_reused"]
    from predictor import Predictor
    from utils.schema import InferenceConfig
    predictor = Predictor.from_checkpoint(models["fused"], InferenceConfig(device="cpu"))
    cache_file(video, predictor.detector, predictor.settings).write_bytes(b"cut short")
    caplog.clear()
    assert not run(models["fused"], video, tmp_path / "damaged")["detections_reused"]
    assert "unreadable" in caplog.text
    assert run(models["fused"], video, tmp_path / "repaired")["detections_reused"]  # the damaged entry was replaced


def test_bbox_mode_never_uses_pose_and_require_pose_stops(models, videos, tmp_path):
    assert run(models["fused"], videos["short"], tmp_path, "--yolo_mode", "bbox")["windows_with_pose"] == 0
    assert run(models["fused"], videos["short"], tmp_path, "--yolo_mode", "auto")["windows_with_pose"] > 0
    # both stop at start, before any frame is read (they used to fail windows later, or with a misleading reason)
    with pytest.raises(UserError, match="needs 6 keypoints per frame, but detector .*tiny_yolo_pose.pt gives none"):
        run(models["fused"], videos["short"], tmp_path, "--yolo_mode", "bbox", "--require_pose")
    with pytest.raises(UserError, match="is a pose-only model .backbone none.: --yolo_mode bbox gives it no input"):
        run(models["pose"], videos["short"], tmp_path, "--yolo_mode", "bbox")  # pose-only model without pose


def test_cli_value_differing_from_the_checkpoint_warns(models, videos, tmp_path, caplog):
    run(models["fused"], videos["short"], tmp_path, "--window_size", "8")
    assert "window_size: using 8 given here, the model was trained with 16" in caplog.text


def test_corrupt_video_is_a_clear_error(models, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 50)
    with pytest.raises(UserError, match="cannot open video .*bad.mp4"):
        run(models["fused"], bad, tmp_path)


def test_metrics_workbook_and_ethogram(models, videos, tmp_path):
    run(models["pose"], videos["short"], tmp_path)
    sheets = pd.read_excel(tmp_path / "session_00.metrics.xlsx", sheet_name=None)
    assert list(sheets) == ["per_frame", "bouts", "summary", "windows", "metadata"]
    per_frame, summary = sheets["per_frame"], sheets["summary"]
    assert {"box_speed_px_s", "box_accel_px_s2", "box_cumulative_px", "kp_speed_px_s", "label"} <= set(per_frame.columns)
    frames = pd.read_csv(tmp_path / "session_00.frames.csv")
    np.testing.assert_allclose(per_frame["centre_x_px"], (frames["box_x1"] + frames["box_x2"]) / 2, atol=0.01)  # CSV: 2 decimals
    np.testing.assert_allclose(per_frame["box_speed_px_s"].iloc[1:],
                               np.hypot(np.diff(per_frame["centre_x_px"]), np.diff(per_frame["centre_y_px"])) * 30,
                               rtol=1e-3, atol=1e-2)
    assert summary["percent_of_time"].sum() == pytest.approx(100, abs=0.01)
    assert summary["total_duration_s"].sum() == pytest.approx(64 / 30, abs=1e-3)
    assert summary.set_index("behavior").loc[:, "bout_count"].sum() == len(sheets["bouts"])
    assert set(summary["behavior"]) >= set(BEHAVIORS)
    assert len(sheets["windows"]) == (64 - 16) // 2 + 1  # default stride: window 16 // 6
    meta = dict(zip(sheets["metadata"]["key"], sheets["metadata"]["value"]))
    assert meta["setting_crop_size"] == "48" and "torch" in meta
    assert (tmp_path / "session_00.ethogram.png").stat().st_size > 5000


def test_review_video_has_every_frame_annotated(models, videos, tmp_path):
    import cv2
    result = run(models["fused"], videos["short"], tmp_path, "--output_review_video")
    review = cv2.VideoCapture(str(result["paths"]["review"]))
    source = cv2.VideoCapture(str(videos["short"]))
    assert int(review.get(cv2.CAP_PROP_FRAME_COUNT)) == 64
    ok_a, a = review.read()
    ok_b, b = source.read()
    assert ok_a and ok_b and a.shape == b.shape
    assert np.abs(a[5:40, 5:200].astype(int) - b[5:40, 5:200].astype(int)).max() > 100  # the label text


def test_batch_isolates_failures_shards_and_skips(models, videos, tmp_path, monkeypatch):
    import shutil

    import batch_process_videos as batch
    from utils.batch import shard_videos
    data = tmp_path / "in"
    for sub in ("day1", "day2/cage3"):
        (data / sub).mkdir(parents=True)
        shutil.copy(videos["short"], data / sub / "mouse.mp4")
    (data / "day1" / "broken.mp4").write_bytes(b"garbage" * 100)

    def run_batch(*extra):
        return batch.main(batch.get_args_parser().parse_args(
            ["--input_dir", str(data), "--output_root", str(tmp_path / "out"), "--model_path", str(models["fused"]),
             "--device", "cpu", *extra]))
    import predictor
    loads = []
    original = predictor.Predictor.from_checkpoint.__func__
    monkeypatch.setattr(predictor.Predictor, "from_checkpoint",
                        classmethod(lambda cls, *a, **k: loads.append(1) or original(cls, *a, **k)))
    with pytest.raises(SystemExit) as exit_info:
        run_batch()
    assert exit_info.value.code == 1  # a video failed, the others were still done
    assert len(loads) == 1  # the model and detector are loaded once for the three videos
    summary = pd.read_csv(tmp_path / "out" / "batch_summary_1of1.csv").set_index("video")
    assert summary.loc["day1/broken.mp4", "status"] == "failed" and "cannot open video" in summary.loc["day1/broken.mp4", "error"]
    assert summary.loc["day1/mouse.mp4", "status"] == summary.loc["day2/cage3/mouse.mp4", "status"] == "ok"
    assert (tmp_path / "out" / "day2" / "cage3" / "mouse.behavior.csv").is_file()  # layout mirrored
    videos_all = sorted(p for p in data.rglob("*.mp4"))
    shards = [shard_videos(videos_all, (i, 2)) for i in (1, 2)]
    assert sorted(shards[0] + shards[1]) == videos_all and not set(shards[0]) & set(shards[1])
    (data / "day1" / "broken.mp4").unlink()
    again = run_batch("--skip_existing")
    assert set(again["status"]) == {"skipped (exists)"}


def test_batch_writes_each_video_while_the_next_is_classified(models, videos, tmp_path, monkeypatch):
    """The write of one video waits until the next video's classification has started: with outputs written in
    the caller's thread that would never happen (the wait times out and the test fails). A failed write fails its
    video's row only; the outputs are those of a run that writes in turn."""
    import shutil
    import threading

    import batch_process_videos as batch
    import inference
    from predictor import Predictor
    data = tmp_path / "in"
    data.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(videos["short"], data / f"{name}.mp4")
    started, overlapped = [], []
    next_started = {name: threading.Event() for name in ("a", "b")}
    predict, write = Predictor.predict_video, inference.write_outputs

    def predict_video(self, video, *args, **kwargs):
        started.append(Path(video).stem)
        if len(started) > 1 and started[-2] in next_started:
            next_started[started[-2]].set()
        return predict(self, video, *args, **kwargs)

    def write_outputs(prediction, *args, **kwargs):
        stem = Path(prediction.video_path).stem
        if stem in next_started:
            overlapped.append(next_started[stem].wait(timeout=60))
        if stem == "b":
            raise OSError(f"no space left writing {stem}")
        return write(prediction, *args, **kwargs)
    monkeypatch.setattr(Predictor, "predict_video", predict_video)
    monkeypatch.setattr(inference, "write_outputs", write_outputs)

    def run_batch(out, *extra):
        with pytest.raises(SystemExit):  # b's write failed
            batch.main(batch.get_args_parser().parse_args(
                ["--input_dir", str(data), "--output_root", str(out), "--model_path", str(models["pose"]),
                 "--device", "cpu", "--no-reuse_detections", *extra]))
        return pd.read_csv(out / "batch_summary_1of1.csv")
    summary = run_batch(tmp_path / "background", "--write_in_background")
    assert overlapped == [True, True]
    assert list(summary["video"]) == ["a.mp4", "b.mp4", "c.mp4"]  # in order, although written later
    assert list(summary["status"]) == ["ok", "failed", "ok"] and "no space left writing b" in summary["error"][1]
    assert not (tmp_path / "background" / "b.behavior.csv").exists()
    next_started.clear()  # written in turn: nothing waits
    in_turn = run_batch(tmp_path / "in_turn")  # the default
    assert list(in_turn["status"]) == ["ok", "failed", "ok"]
    for name in ("a", "c"):
        background, plain = (pd.read_csv(tmp_path / run / f"{name}.frames.csv") for run in ("background", "in_turn"))
        pd.testing.assert_frame_equal(background, plain)


def test_benchmark_pipeline_scores_and_times(models, videos, tmp_path):
    import json
    import shutil

    import benchmark_pipeline as bench
    data = tmp_path / "labelled"
    data.mkdir()
    for suffix in (".mp4", ".csv"):
        shutil.copy(videos["short"].with_suffix(suffix), data / f"s{suffix}")
    (data / "unlabelled.mp4").write_bytes(videos["short"].read_bytes())  # no label file: not evaluated
    out = bench.main(bench.get_args_parser().parse_args(
        ["--model_path", str(models["pose"]), "--input_dir", str(data), "--output_root", str(tmp_path / "eval"),
         "--device", "cpu"]))
    scores = out["scores"]
    assert scores["frames_evaluated"] == 64
    frames = pd.read_csv(tmp_path / "eval" / "s.frames.csv")
    truth = pd.read_csv(data / "s.csv")["behavior"]
    assert scores["accuracy"] == pytest.approx(float((frames["label"] == truth).mean()))
    present = [c for c in BEHAVIORS if (truth == c).any() or (frames["label"] == c).any()]
    assert scores["macro_f1"] == pytest.approx(np.mean([scores["per_class"][c]["f1"] for c in present]))
    cm = pd.read_csv(tmp_path / "eval" / "confusion_matrix.csv").set_index("true")
    assert cm.values.sum() == 64 and (tmp_path / "eval" / "confusion_matrix.png").is_file()
    assert 0 <= scores["segment"]["macro_f1"] <= 1
    saved = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert saved["timing"]["frames"] == 64 and set(saved["timing"]["stage_seconds"]) == {
        "load", "decode", "detect", "crop", "backbone", "head", "write"}
    assert "per-frame macro-F1" in (tmp_path / "eval" / "eval_report.txt").read_text()


def test_video_without_any_detection_is_a_clear_error(models, tmp_path):
    from utils.synthetic import write_video
    empty_arena = [np.full((480, 640, 3), 128, np.uint8)] * 40
    write_video(tmp_path / "empty.mp4", empty_arena)
    with pytest.raises(UserError, match=r"no animal detected in any of the 40 frames of .*empty.mp4: check --yolo_weights"):
        run(models["fused"], tmp_path / "empty.mp4", tmp_path)


def test_per_frame_buffers_grow_past_their_first_block_and_average_windows():
    from predictor import Accumulator
    acc = Accumulator(num_classes=2, num_keypoints=3)
    n = 2500  # more than the first 1024-row block, so the buffers double twice
    kp = np.array([[10, 20, 0.9], [30, 40, 0.8], [0, 0, 0.0]], np.float32)
    for i in range(n):
        acc.add_frame("missed" if i == 7 else "detected", None if i == 7 else np.array([i, 0, i + 10, 5.0]),
                      None if i == 7 else kp)
    acc.add_window(0, np.array([1.0, 0.0]), 10)
    acc.add_window(5, np.array([0.0, 1.0]), 10)
    acc.add_window(n - 10, np.array([0.25, 0.75]), 10)
    probs, covered = acc.mean_probs()
    assert len(acc) == n and probs.shape == (n, 2)
    # frames are weighted towards each window's centre: frame 7 is equally far from both centres (4.5, 9.5)
    np.testing.assert_allclose(probs[[0, 7, 14, n - 1]], [[1, 0], [0.5, 0.5], [0, 1], [0.25, 0.75]])
    assert probs[5, 0] > 0.9 and probs[9, 1] > 0.9  # each nearer one window's centre takes that window's label
    assert covered.sum() == 25 and not covered[15]
    assert acc.statuses()[7] == "missed" and acc.statuses()[n - 1] == "detected" and acc.any_detected()
    assert np.isnan(acc.boxes.values()[7]).all() and acc.boxes.values()[n - 1, 2] == n - 1 + 10
    np.testing.assert_allclose(acc.kp_centres.values()[[0, n - 1]], [[20, 30], [20, 30]])  # confident ones only
    assert np.isnan(acc.keypoints.values()[7]).all() and acc.keypoints.values()[n - 1, 1, 0] == 30


def test_detector_with_other_keypoints_stops_at_start_naming_both(models, videos, tmp_path, monkeypatch):
    from ultralytics import YOLO

    import predictor
    other = tmp_path / "k17.pt"
    YOLO("yolov8n-pose.yaml").save(str(other))  # an untrained 17-keypoint pose model (COCO layout)
    monkeypatch.setattr(predictor.Predictor, "predict_video", lambda *a, **k: pytest.fail("read frames"))
    with pytest.raises(UserError, match=r"detector .*k17.pt gives 17 keypoints .*trained on 6 \['nose', 'left_ear'"):
        run(models["pose"], videos["short"], tmp_path, "--yolo_weights", other)


def test_output_dir_that_is_a_file_is_a_one_line_error(models, videos, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT
    existing = tmp_path / "results"
    existing.write_text("not a folder")
    proc = subprocess.run([sys.executable, str(ROOT / "infer_behavior_lstm.py"), "--model_path", str(models["pose"]),
                           "--video_path", str(videos["short"]), "--output_dir", str(existing), "--device", "cpu"],
                          capture_output=True, text=True)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and lines == [f"error: output folder {existing} is an existing file, not a folder; "
                                              f"pass a folder path"]


def test_the_tail_of_the_video_is_covered_by_a_window(models, videos, tmp_path):
    # 64 frames, window 16, stride 10: strided windows end on frame 55; one more is aligned to frame 63
    result = run(models["pose"], videos["short"], tmp_path, "--window_stride", "10")
    assert result["windows"] == 6
    frames = pd.read_csv(tmp_path / "session_00.frames.csv")
    assert (frames["label"] != "no_window").all() and frames["top1_prob"].notna().all()
    windows = pd.read_excel(tmp_path / "session_00.metrics.xlsx", sheet_name="windows")
    assert list(windows["start_frame"]) == [0, 10, 20, 30, 40, 48]


def test_inference_applies_the_min_keypoint_conf_of_training(models, videos, tmp_path):
    from predictor import Predictor
    from utils.checkpoint import load_checkpoint, save_checkpoint
    from utils.schema import InferenceConfig
    ckpt = load_checkpoint(models["pose"])
    assert ckpt["features"]["min_keypoint_conf"] == 0.0 and ckpt["features"]["pose_features_version"] == 4
    strict = tmp_path / "strict.pt"
    save_checkpoint(strict, **{**ckpt, "features": {**ckpt["features"], "min_keypoint_conf": 1.0}})
    old_style = tmp_path / "old.pt"  # before features were recorded: min_keypoint_conf lived in the flat config
    save_checkpoint(old_style, **{**{k: v for k, v in ckpt.items() if k != "features"},
                                  "config": {"min_keypoint_conf": 0.7}, "format_version": 1})
    options = InferenceConfig(device="cpu")
    assert Predictor.from_checkpoint(old_style, options).min_keypoint_conf == 0.7
    probs = {}
    for name, path in (("trained", models["pose"]), ("strict", strict)):
        predictor = Predictor.from_checkpoint(path, options)
        assert predictor.min_keypoint_conf == (1.0 if name == "strict" else 0.0)
        probs[name] = predictor.predict_video(videos["short"]).acc.mean_probs()[0]
    # every keypoint of the tiny detector has conf < 1: with 1.0 they all count as missing, so outputs change
    assert np.abs(probs["trained"] - probs["strict"]).max() > 1e-3


def test_checkpoints_from_before_feature_version_2_still_classify(pose_manifest, videos, tmp_path):
    """A version-1 checkpoint: crop-pixel pose features, no box motion, no input statistics, features unrecorded."""
    from predictor import Predictor
    from utils.checkpoint import load_checkpoint, save_checkpoint
    from utils.schema import InferenceConfig
    train.main(train_args(pose_manifest, tmp_path, "--run_name", "crop", "--epochs", "2", "--pose_features", "crop",
                          "--no-use_box_motion"))
    ckpt = load_checkpoint(tmp_path / "crop" / "best_model.pt")
    new_keys = ("box_motion_dim", "input_stats", "use_box_motion", "motion_proj_dim", "input_scaling")
    old = {**{k: v for k, v in ckpt.items() if k != "features"}, "config": {"min_keypoint_conf": 0.0},
           "format_version": 1,
           "model_args": {k: v for k, v in ckpt["model_args"].items() if k not in new_keys},
           "model": {k: v for k, v in ckpt["model"].items() if not k.endswith(("_mean", "_std", "_knots"))}}
    save_checkpoint(tmp_path / "old.pt", **old)
    predictor = Predictor.from_checkpoint(tmp_path / "old.pt", InferenceConfig(device="cpu"))
    assert predictor.features.pose_features == "crop" and not predictor.features.box_motion
    prediction = predictor.predict_video(videos["short"])
    assert prediction.windows > 0 and prediction.with_pose == prediction.windows


def test_live_mode_labels_windows_as_they_complete_and_writes_every_output(models, videos, tmp_path):
    result = run(models["gbt"], videos["short"], tmp_path, "--live")
    live = pd.read_csv(tmp_path / "session_00.live.csv")
    assert len(live) == result["windows"] > 0
    assert (live["window_end"] - live["window_start"] == 15).all() and live["window_start"].is_monotonic_increasing
    assert (live["latency_s"] >= 0).all() and set(live["label"]) <= set(BEHAVIORS)
    frames = pd.read_csv(tmp_path / "session_00.frames.csv")
    assert len(frames) == 64 and (tmp_path / "session_00.metrics.xlsx").is_file()
    # the same windows as the file run, so the same labels: live mode changes when, not what
    offline = run(models["gbt"], videos["short"], tmp_path / "offline")
    np.testing.assert_array_equal(frames["label"], pd.read_csv(tmp_path / "offline" / "session_00.frames.csv")["label"])
    assert offline["windows"] == result["windows"]


def test_live_mode_stopped_by_ctrl_c_keeps_what_it_saw(models, videos, tmp_path, monkeypatch):
    from detectors import YoloDetector
    calls, detect = [], YoloDetector.detect

    def interrupted(self, frames):
        calls.append(len(frames))
        if sum(calls) > 40:
            raise KeyboardInterrupt
        return detect(self, frames)
    monkeypatch.setattr(YoloDetector, "detect", interrupted)
    result = run(models["gbt"], videos["long"], tmp_path, "--live")
    frames = pd.read_csv(tmp_path / "session_00.frames.csv")
    assert 16 <= len(frames) < 450 and result["frames"] == len(frames)
    assert len(pd.read_csv(tmp_path / "session_00.live.csv")) == result["windows"] > 0


def test_a_live_source_that_outruns_the_pipeline_drops_frames_and_counts_them(videos):
    import time
    from utils.data.live import LiveSource
    source = LiveSource(videos["short"], pace=False, queue_frames=4)
    time.sleep(1.0)  # nothing consumed: the reader fills the queue, then drops
    kept = sum(len(batch) for batch in source.batches(16))
    source.close()
    assert kept == 4 and source.dropped == 60 and source.captured == 64
