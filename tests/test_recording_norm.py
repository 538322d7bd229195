"""Per-recording feature normalisation (--feature_normalisation recording, utils.features.recording_norm): the
statistics, what they remove, and training and inference normalising a window alike."""
import numpy as np
import pytest

from conftest import prepare_args, prepared_pose_files
from utils.errors import UserError
from utils.features.recording_norm import RecordingNorm, coverage_problem, mix_problem


def test_statistics_are_the_recordings_10th_percentile_and_range_without_missing_values():
    column = np.arange(1, 101, dtype=np.float32)  # 1..100: 10th percentile 10.9, 90th 90.1
    pose = np.stack([column, np.zeros(100), np.full(100, 0.7), np.where(column > 50, column, 0)], 1).astype(np.float32)
    norm = RecordingNorm.from_windows([pose[:40], None, pose[40:]], [None])
    np.testing.assert_allclose(norm.pose_low, [10.9, 0.0, 0.7, 55.9], rtol=1e-6)  # the last over 51..100 only
    # spread: the 10-90 percentile distance; constant or always-missing features are only shifted
    np.testing.assert_allclose(norm.pose_spread, [79.2, 1.0, 1.0, 39.2], rtol=1e-5)
    assert norm.motion_low is None
    out, motion = norm.apply(pose, None)
    assert motion is None
    np.testing.assert_allclose(out[[0, 9, 89, 99], 0], [(1 - 10.9) / 79.2, (10 - 10.9) / 79.2, (90 - 10.9) / 79.2,
                                                        (100 - 10.9) / 79.2], rtol=1e-5)
    assert (out[:50, 3] == 0).all() and (out[:, [1, 2]] == [0, 0]).all()  # missing stays 0, a constant goes to 0
    assert np.abs(norm.apply(pose * 1e4, None)[0]).max() == 50  # clipped like the features


def test_a_rigs_offset_and_gain_per_feature_are_removed():
    rng = np.random.default_rng(0)
    pose = rng.gamma(2.0, 1.0, (600, 6)).astype(np.float32)
    motion = rng.normal(0, 1, (600, 3)).astype(np.float32)
    windows = [slice(s, s + 30) for s in range(0, 571, 10)]
    # another rig: every feature scaled and shifted (a noisier tracker's speeds, another body shape's distances)
    gain, offset = rng.uniform(0.3, 3, 6).astype(np.float32), rng.uniform(-2, 2, 6).astype(np.float32)
    other = pose * gain + offset
    a = RecordingNorm.from_windows([pose[w] for w in windows], [motion[w] for w in windows])
    b = RecordingNorm.from_windows([other[w] for w in windows], [motion[w] for w in windows])
    np.testing.assert_allclose(a.apply(pose, motion)[0], b.apply(other, motion)[0], atol=1e-4)
    assert np.abs(pose - other).mean() > 0.5  # the raw features differ


def test_recordings_that_differ_in_their_mix_of_behaviours_are_named():
    # BehaviorDEPOT's session cut in parts: 9% freezing in one, 64% in another (bench/README.md)
    keys, labels = ["train"] * 100 + ["val"] * 100 + ["short"] * 5, ["freezing"] * 9 + ["other"] * 91 + [
        "freezing"] * 64 + ["other"] * 36 + ["freezing"] * 5
    problem = mix_problem(keys, labels)
    assert "freezing fills 9% of the windows of train and 64% of val" in problem  # the 5-window one is not judged
    alike = ["rest"] * 30 + ["walk"] * 70 + ["rest"] * 50 + ["walk"] * 50
    assert mix_problem(["a"] * 100 + ["b"] * 100, alike) is None


def test_recordings_labelled_in_stretches_are_named():
    videos = {"whole.csv": {"frames": 100}, "parts.csv": {"frames": 100}}
    entries = [{"start_frame": s, "end_frame": s + 29, "source_video": "whole.csv"} for s in range(0, 71, 10)]
    entries += [{"start_frame": s, "end_frame": s + 29, "source_video": "parts.csv"} for s in (0, 10, 60)]
    keys = [e["source_video"] for e in entries]
    assert coverage_problem(entries[:8], videos, keys[:8]) is None  # frames 0-99: all of it
    assert "the windows of parts.csv cover 70% of its frames" in coverage_problem(entries, videos, keys)


@pytest.fixture(scope="module")
def normalised_run(tmp_path_factory):
    """6 generated pose files (450 frames, 30 fps) prepared with --detector pose_file, gradient-boosted trees trained
    with --feature_normalisation recording; 2 held-out recordings of other animals."""
    import train_behavior_lstm as train
    root = tmp_path_factory.mktemp("recording_norm")
    manifest = prepared_pose_files(root, 6, 450, seed=3, train_ratio=0.67)
    train.main(train.get_args_parser().parse_args([
        "--manifest_path", str(manifest), "--output_dir", str(root / "runs"),
        "--run_name", "gbt", "--classifier", "gbt", "--use_pose", "--gbt_max_iter", "40", "--num_workers", "0",
        "--device", "cpu", "--feature_normalisation", "recording"]))
    return root, root / "runs" / "gbt" / "best_model_macro_f1.pt"


def test_a_normalised_model_learns_and_records_its_normalisation(normalised_run):
    import benchmark_pipeline
    from utils.checkpoint import load_checkpoint
    root, model = normalised_run
    assert load_checkpoint(model)["features"]["normalisation"] == "recording"
    result = benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
        "--model_path", str(model), "--input_dir", str(root / "held_out"), "--output_root", str(root / "eval"),
        "--device", "cpu"]))
    assert result["scores"]["macro_f1"] > 0.7  # five behaviours: chance is 0.2


def test_inference_normalises_a_window_as_training_does(normalised_run, tmp_path, monkeypatch):
    """A held-out recording prepared with the inference's windows (30 frames every 5): the windows' normalised inputs
    as the training dataset gives them equal those the predictor classifies."""
    import predictor as predictor_module
    from data import WindowDataset
    from prepare_sequences_from_yolo import main as prepare
    root, model = normalised_run
    prepare(prepare_args("--dataset_root", root / "held_out", "--output_root", tmp_path / "p", "--detector",
                         "pose_file", "--pose_fps", 30, "--window_size", 30, "--window_stride", 5, "--train_ratio", 1,
                         "--val_ratio", 0, "--test_ratio", 0))
    dataset = WindowDataset(tmp_path / "p" / "sequence_manifest.json", "train", use_pose=True,
                            load_frames=False, feature_normalisation="recording")
    trained = {e["start_frame"]: i for i, e in enumerate(dataset.entries) if e["source_video"].startswith("session_00")}
    classified = {}
    flush = predictor_module.WindowClassifier.flush

    def keep(self):
        classified.update({start: (pose.numpy(), motion.numpy()) for start, _, pose, motion in self.pending})
        flush(self)
    monkeypatch.setattr(predictor_module.WindowClassifier, "flush", keep)
    predictor = predictor_module.Predictor.from_checkpoint(model)
    predictor.predict_video(root / "held_out" / "session_00DLC_synthetic.csv")
    assert len(classified) == len(trained) > 50
    for start in (0, 200, max(trained)):
        sample = dataset[trained[start]]
        np.testing.assert_allclose(classified[start][0], sample["pose"].numpy(), atol=1e-4)
        np.testing.assert_allclose(classified[start][1], sample["motion"].numpy(), atol=1e-4)
    rows = np.concatenate([p for p, _ in classified.values()])
    assert (np.abs(np.percentile(rows, 10, 0)) < 0.1).all() and (np.percentile(rows, 90, 0) < 1.1).all()
    # dense models take the statistics of the stitched recording: its windows' within a tenth of the range (rates
    # near a window's edges are taken over shorter lags)
    from utils.data.recordings import recording_key, recording_norm, stitch_recordings
    recording = next(r for r in stitch_recordings(dataset, 5) if r.source.startswith("session_00"))
    windows = dataset.recording_norm(recording_key(dataset.entries[trained[0]]))
    stitched = recording_norm(dataset, recording)
    assert (np.abs(stitched.pose_low - windows.pose_low) <= 0.1 * windows.pose_spread).all()
    np.testing.assert_allclose(stitched.pose_spread, windows.pose_spread, rtol=0.1)


def test_normalisation_is_refused_where_it_cannot_work(normalised_run):
    from conftest import train_args
    from predictor import Predictor
    import train_behavior_lstm as train
    root, model = normalised_run
    with pytest.raises(UserError, match="normalises its features per recording.*classify the video"):
        Predictor.from_checkpoint(model).predict_live(None, None)
    with pytest.raises(UserError, match="feature_normalisation recording .* model that sees frames"):
        train.main(train_args(root / "prepared" / "sequence_manifest.json", root / "runs", "--backbone",
                              "mobilenet_v3_small", "--no_pretrained_backbone", "--feature_normalisation", "recording"))
