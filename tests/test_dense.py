"""Dense models (mstcn, dense_transformer): whole recordings stitched from the prepared windows, every labelled frame
learned, per-frame outputs at inference from overlapping chunks."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import prepare_args
from utils.data.recordings import UNLABELLED, stitch_chunk_probs, stitch_recordings
from utils.synthetic import make_pose_file_dataset

SMALL = dict(use_pose=True, dense_hidden=32, dense_layers=6, dense_stages=2, dense_chunk=64, batch_size=4,
             num_workers=0, device="cpu", dropout=0.2, lr=3e-3)


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory):
    """4 generated pose recordings (450 frames, 30 fps) prepared from pose files (2 train, 1 val, 1 test), an MS-TCN
    trained on them, and 2 held-out recordings of other animals."""
    from prepare_sequences_from_yolo import main as prepare
    from training.engine import train, training_config
    root = tmp_path_factory.mktemp("dense")
    make_pose_file_dataset(root / "data", 4, 450, seed=3)
    make_pose_file_dataset(root / "held_out", 2, 450, seed=4)
    prepare(prepare_args("--dataset_root", root / "data", "--output_root", root / "prepared", "--detector",
                         "pose_file", "--pose_fps", 30, "--window_size", 30, "--window_stride", 10,
                         "--train_ratio", 0.5, "--val_ratio", 0.25, "--test_ratio", 0.25))
    manifest = root / "prepared" / "sequence_manifest.json"
    result = train(training_config(classifier="mstcn", manifest_path=manifest, output_dir=root / "runs",
                                   run_name="mstcn", epochs=10, **SMALL))
    return root, manifest, result


def held_out_scores(model, root, out) -> dict:
    import benchmark_pipeline
    return benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
        "--model_path", str(model), "--input_dir", str(root / "held_out"), "--output_root", str(out),
        "--device", "cpu"]))["scores"]


def test_every_frame_of_a_window_file_carries_its_label(dense_run):
    root, manifest, _ = dense_run
    entry = json.loads(manifest.read_text())["splits"]["train"][3]
    truth = pd.read_csv(root / "data" / entry["source_video"].replace("DLC_synthetic", "")).set_index("frame")
    with np.load(manifest.parent / entry["npz"]) as npz:
        assert npz["frame_labels"].tolist() == truth.loc[npz["frame_index"], "behavior"].tolist()
        assert npz["frame_labels"][15] == entry["class_name"]


def test_recordings_are_stitched_from_their_windows(dense_run):
    from data import WindowDataset
    root, manifest, _ = dense_run
    dataset = WindowDataset(manifest, "train", use_pose=True, load_frames=False)
    recordings = stitch_recordings(dataset, 5)
    assert len(recordings) == 2 and {r.source for r in recordings} == {e["source_video"] for e in dataset.entries}
    recording = recordings[0]
    truth = pd.read_csv(root / "data" / recording.source.replace("DLC_synthetic", ""))["behavior"]
    names = [dataset.manifest["idx_to_class"][str(i)] for i in recording.labels[recording.covered]]
    assert names == truth[recording.covered].tolist()
    assert recording.covered.sum() >= 440 and np.isfinite(recording.arrays["bbox_xyxy"][recording.covered]).all()
    window = dataset.small_arrays(recording.windows[5][0])
    np.testing.assert_array_equal(recording.arrays["keypoints_xy_raw"][window["frame_index"]],
                                  window["keypoints_xy_raw"])
    # chunks follow inference's rule: size 64 every 32 frames, the tail aligned to the last covered frame
    chunks = recording.chunks(64, 32)
    assert chunks[0] == (0, 64) and chunks[1] == (32, 96) and chunks[-1][1] == recording.covered.nonzero()[0][-1] + 1


def test_frame_dropout_reaches_the_chunks_of_dense_models(dense_run, monkeypatch):
    """--frame_dropout holds frames in a dense model's training chunks as in a window's (it was ignored there)."""
    import random
    from data import WindowDataset
    from utils.data.recordings import chunk_features
    from utils.schema import AugmentConfig
    _, manifest, _ = dense_run
    still = dict(hflip_prob=0, vflip_prob=0, scale_range=0, speed_range=0, pose_jitter=0)
    dataset = WindowDataset(manifest, "train", AugmentConfig(frame_dropout=0.5, **still), use_pose=True,
                            load_frames=False)
    recording = stitch_recordings(dataset, 5)[0]
    seen = []
    compute = dataset.spec.window_inputs
    monkeypatch.setattr(dataset.spec, "window_inputs", lambda arrays, *a: seen.append(arrays) or compute(arrays, *a))
    chunk_features(dataset, recording, 0, 64)
    chunk_features(dataset, recording, 0, 64, random.Random(1))
    truth = recording.arrays["keypoints_xy_raw"][:64]
    plain, held = seen[0]["keypoints_xy_raw"], seen[1]["keypoints_xy_raw"]
    np.testing.assert_array_equal(plain, truth)  # without a draw: as recorded
    own = np.isclose(held, truth, equal_nan=True).all((1, 2))
    before = np.r_[False, np.isclose(held[1:], held[:-1], equal_nan=True).all((1, 2))]
    assert own[0] and (own | before).all() and 0.3 < (~own).mean() < 0.7  # each frame its own track or the one before


def test_windows_prepared_before_frame_labels_label_their_centre_frames_only(dense_run, monkeypatch):
    from data import WindowDataset
    _, manifest, _ = dense_run
    dataset = WindowDataset(manifest, "train", use_pose=True, load_frames=False)
    monkeypatch.setattr(dataset, "frame_labels", lambda index: None)
    recording = stitch_recordings(dataset, 5)[0]
    labelled = np.flatnonzero(recording.labels != UNLABELLED)
    starts = [start for _, start, _ in recording.windows]
    assert labelled.tolist() == [s + 15 for s in starts]


def test_a_gap_splits_a_recording_and_no_chunk_crosses_it(dense_run):
    from data import WindowDataset
    _, manifest, _ = dense_run
    dataset = WindowDataset(manifest, "train", use_pose=True, load_frames=False)
    recording = stitch_recordings(dataset, 5)[0]
    recording.covered[200:230] = False
    assert recording.runs()[:2] == [(0, 200), (230, recording.covered.nonzero()[0][-1] + 1)]
    chunks = recording.chunks(64, 32)
    assert all(end <= 200 or start >= 230 for start, end in chunks)
    assert (136, 200) in chunks and (230, 294) in chunks
    recording.covered[:] = False
    recording.covered[10:40] = True  # a stretch shorter than a chunk is one shorter chunk
    assert recording.chunks(64, 32) == [(10, 40)]


def test_overlapping_chunks_are_stitched_centre_weighted():
    a, b = np.tile([1.0, 0.0], (8, 1)), np.tile([0.0, 1.0], (8, 1))
    probs, covered = stitch_chunk_probs(14, [(0, 8), (4, 12)], [a, b])
    assert covered.tolist() == [True] * 12 + [False] * 2
    np.testing.assert_allclose(probs[:4], [[1, 0]] * 4)
    np.testing.assert_allclose(probs[8:12], [[0, 1]] * 4)
    np.testing.assert_allclose(probs[:12].sum(1), 1)
    assert probs[5, 0] > 0.5 > probs[6, 0]  # each frame leans to the chunk it lies nearer the centre of


def test_the_dense_loss_leaves_unlabelled_frames_out_and_penalises_flicker():
    from training.dense import dense_loss
    torch.manual_seed(0)
    logits = torch.randn(1, 10, 3)
    labels = torch.tensor([[0, 0, 1, UNLABELLED, UNLABELLED, 2, 2, 2, 1, 0]])
    padding = torch.zeros(1, 10, dtype=torch.bool)
    other = logits.clone()
    other[0, 3:5] = torch.randn(2, 3) * 5  # unlabelled frames change: the cross-entropy does not
    assert dense_loss([other], labels, None, 0.0, padding) == pytest.approx(dense_loss([logits], labels, None, 0.0,
                                                                                       padding).item())
    steady, flicker = torch.zeros(1, 10, 3), torch.zeros(1, 10, 3)
    steady[..., 0], flicker[0, ::2, 0], flicker[0, 1::2, 1] = 4.0, 4.0, 4.0
    unlabelled = torch.full((1, 10), UNLABELLED)
    assert dense_loss([steady], unlabelled, None, 1.0, padding) == 0
    assert dense_loss([flicker], unlabelled, None, 1.0, padding) > 10
    padded = padding.clone()
    padded[0, 1:] = True  # padding carries no smoothing loss
    assert dense_loss([flicker], unlabelled, None, 1.0, padded) == 0


def test_the_mstcn_labels_held_out_recordings_frame_by_frame(dense_run, tmp_path):
    root, manifest, result = dense_run
    run = root / "runs" / "mstcn"
    history = pd.read_csv(run / "metrics.csv")
    assert history["val_macro_f1"].max() > 0.8 and len(history) == len(result.history)
    test = json.loads((run / "test_metrics.json").read_text())
    assert test["frame_macro_f1"] > 0.7 and test["frames"] >= 440
    scores = held_out_scores(run / "best_model_macro_f1.pt", root, tmp_path)
    assert scores["macro_f1"] > 0.75, scores  # five behaviours: chance is 0.2
    frames = pd.read_csv(tmp_path / "session_00.frames.csv")
    assert len(frames) == 450 and frames["label"].notna().all()


def test_a_dense_checkpoint_predicts_as_trained_and_resumes(dense_run, tmp_path):
    from classifiers import load_classifier
    from training.engine import train, training_config
    from utils.checkpoint import load_checkpoint
    root, manifest, _ = dense_run
    ckpt = load_checkpoint(root / "runs" / "mstcn" / "best_model_macro_f1.pt")
    assert ckpt["model_args"]["classifier"] == "mstcn" and "drift" in ckpt
    classifier = load_classifier(ckpt)
    pose = torch.randn(2, 64, ckpt["model_args"]["pose_dim"])
    motion = torch.randn(2, 64, ckpt["model_args"]["box_motion_dim"])
    with torch.no_grad():
        frames, window, embedding = classifier.frame_outputs(None, pose, torch.ones(2, dtype=torch.bool), motion)
    assert frames.shape == (2, 64, 5) and torch.allclose(window, frames[:, 32])
    np.testing.assert_allclose(frames.sum(-1).numpy(), 1, atol=1e-5)
    assert embedding.shape == (2, 32)
    common = dict(classifier="dense_transformer", manifest_path=manifest, output_dir=tmp_path, run_name="t",
                  **{**SMALL, "dense_layers": 2})
    train(training_config(epochs=2, **common))
    resumed = train(training_config(epochs=3, **common), resume=tmp_path / "t" / "last_checkpoint.pt")
    assert [row["epoch"] for row in resumed.history] == [0, 1, 2]
    assert "resumed from" in (tmp_path / "t" / "train.log").read_text()


def test_dense_kinds_are_the_schemas():
    from model import DENSE_MODELS
    from utils.schema import DENSE_KINDS
    assert sorted(DENSE_KINDS) == DENSE_MODELS.names()


def pretrain_args(manifest, pose_dir, out, *extra):
    from pretrain_pose import get_args_parser
    small = ["--dense_hidden", 32, "--dense_layers", 6, "--dense_stages", 2, "--dense_chunk", 64, "--batch_size", 8,
             "--lr", 3e-3]
    return get_args_parser().parse_args([str(a) for a in [
        "--manifest_path", manifest, "--pose_dir", pose_dir, "--classifier", "mstcn", "--use_pose", "--output_dir",
        out, "--run_name", "p", "--device", "cpu", *small, *extra]])


def test_pretraining_learns_to_fill_in_hidden_frames_and_resumes(dense_run, tmp_path):
    import pretrain_pose
    from training.pretrain import Pretraining, unlabelled_recordings
    from utils.checkpoint import load_checkpoint
    root, manifest, _ = dense_run
    first = pretrain_pose.main(pretrain_args(manifest, root / "held_out", tmp_path, "--epochs", 4))
    # the manifest's 4 recordings (every split, labels unused) and the 2 unlabelled pose files
    assert first.recordings == 6 and first.frames >= 6 * 440
    resumed = pretrain_pose.main(pretrain_args(manifest, root / "held_out", tmp_path, "--epochs", 5, "--resume",
                                               tmp_path / "p" / "last_checkpoint.pt"))
    assert [row["epoch"] for row in resumed.history] == list(range(5))
    # the held-out chunks' hidden frames, predicted by the pretrained model against predicting the typical value (0)
    args = pretrain_args(manifest, root / "held_out", tmp_path)
    cfg = pretrain_pose.resolve_config(args, pretrain_pose.SECTIONS)
    job = Pretraining(cfg, *unlabelled_recordings(cfg), "cpu")
    job.net.load_state_dict(load_checkpoint(tmp_path / "p" / "best_model.pt")["model"])
    learned = job.held_out_loss()
    torch.nn.init.zeros_(job.net.reconstruct.weight)
    torch.nn.init.zeros_(job.net.reconstruct.bias)
    assert learned < 0.85 * job.held_out_loss(), learned


def test_a_dense_model_starts_from_pretraining_only_with_the_same_features(dense_run, tmp_path):
    import pretrain_pose
    from training.engine import train, training_config
    from utils.errors import UserError
    root, manifest, _ = dense_run
    pretrain_pose.main(pretrain_args(manifest, root / "held_out", tmp_path, "--epochs", 1))
    pretrained = tmp_path / "p" / "best_model.pt"
    common = dict(classifier="mstcn", manifest_path=manifest, output_dir=tmp_path, epochs=1, init_from=pretrained,
                  **{**SMALL, "batch_size": 8})
    with pytest.raises(UserError, match="init_from .* trained on features .*track_smoothing_s"):
        train(training_config(run_name="other", track_smoothing_s=0.3, **common))
    with pytest.raises(UserError, match="another architecture"):
        train(training_config(run_name="wider", **{**common, "dense_hidden": 48}))
    train(training_config(run_name="tuned", masked_feature_loss=1.0, **common))
    log = (tmp_path / "tuned" / "train.log").read_text()
    assert "weights initialised from" in log and "left fresh for these classes: body.stages.0.out.bias" in log
    from utils.checkpoint import load_checkpoint
    tuned, start = (load_checkpoint(tmp_path / n)["model"] for n in ("tuned/last_checkpoint.pt", "p/best_model.pt"))
    assert torch.equal(tuned["pose_knots"], start["pose_knots"])  # the pretrained input scaling is kept
    # init_lr_scale 0: the pretrained layers stay as they were, the fresh class outputs learn
    train(training_config(run_name="frozen", init_lr_scale=0.0, **common))
    frozen = load_checkpoint(tmp_path / "frozen" / "last_checkpoint.pt")["model"]
    taken = [k for k in start if k.startswith("body.stages.0.") and ".out." not in k]
    assert taken and all(torch.equal(frozen[k], start[k]) for k in taken)
    assert not all(torch.equal(tuned[k], start[k]) for k in taken)  # at full rate they move
    optimizer = load_checkpoint(tmp_path / "frozen" / "last_checkpoint.pt")["optimizer"]
    assert len(optimizer["param_groups"]) == 1 and optimizer["state"]  # only the fresh layers, and they stepped
