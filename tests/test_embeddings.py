"""Embeddings and behaviour groups found without labels (embed_behavior.py, utils/results/embeddings.py)."""
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import prepared_pose_files
from utils.errors import UserError
from utils.results.embeddings import (FrameEmbeddings, choose_kmeans, group_purity, smooth_groups,
                                      standardised_pca)
from utils.results.review import ReviewSession
from utils.synthetic import BEHAVIORS


def test_frame_embeddings_are_weighted_like_probabilities():
    sums = FrameEmbeddings()
    weights = np.array([1.0, 2.0, 1.0])
    sums.add(0, np.array([1.0, 0.0]), weights)  # a window model: one embedding for its frames
    sums.add(2, np.array([[3.0, 3.0], [5.0, 5.0], [7.0, 7.0]]), weights)  # a dense model: one per frame
    frames = sums.frames(6)
    np.testing.assert_allclose(frames[:2], [[1, 0], [1, 0]])
    np.testing.assert_allclose(frames[2], [(1 * 1 + 1 * 3) / 2, (0 + 1 * 3) / 2])  # both windows, weights 1 and 1
    np.testing.assert_allclose(frames[3:5], [[5, 5], [7, 7]])
    assert np.isnan(frames[5]).all()  # no window over it
    starts, windows = sums.window_table()
    assert starts.tolist() == [0, 2] and np.allclose(windows, [[1, 0], [5, 5]])


def test_groups_are_chosen_smoothed_and_scored():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0, 0], [6, 0, 0], [0, 6, 0]])
    truth = rng.integers(0, 3, 900)
    x = centres[truth] + rng.normal(0, 0.5, (900, 3))
    z, _, _ = standardised_pca(x)
    labels, count, scores = choose_kmeans(z, 6)
    assert count == 3 and max(scores, key=scores.get) == 3 and len(scores) == 5
    scored = group_purity([f"b{t}" for t in truth], labels)
    assert scored["adjusted_rand_index"] > 0.95
    assert all(s["purity"] > 0.95 for s in scored["per_behaviour"].values())
    noisy = np.array([0] * 10 + [1] + [0] * 10 + [2] * 20)
    smoothed, share = smooth_groups(noisy, fps=10.0, seconds=0.5)
    assert smoothed.tolist() == [0] * 21 + [2] * 20 and share[10] == pytest.approx(4 / 5)
    known = group_purity(["a", None, "b", "b"], np.array([1, 1, 2, 2]))
    assert known["per_behaviour"]["b"] == {"group": 2, "purity": 1.0, "frames": 2}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A gbt on generated pose files (4 labelled recordings) and embed_behavior.py run with it on 2 held-out ones
    (with their label files, so the groups can be scored)."""
    import embed_behavior
    from training.engine import train, training_config
    root = tmp_path_factory.mktemp("embed")
    manifest = prepared_pose_files(root, 4, 600, seed=21, train_ratio=0.75)
    run = train(training_config(manifest_path=str(manifest), classifier="gbt",
                                use_pose=True, gbt_max_iter=40, output_dir=str(root / "runs"), run_name="gbt",
                                num_workers=0, device="cpu"))
    model = Path(run.run_dir) / "best_model_macro_f1.pt"
    report = embed_behavior.main(embed_behavior.get_args_parser().parse_args([
        "--model_path", str(model), "--input_dir", str(root / "held_out"), "--output_root", str(root / "out"),
        "--device", "cpu", "--max_groups", "8", "--plot_points", "400", "--window_stride", "5", "--embedding",
        "model"]))
    import infer_behavior_lstm as infer
    infer.main(infer.get_args_parser().parse_args([
        "--model_path", str(model), "--video_path", str(root / "held_out" / "session_00DLC_synthetic.csv"),
        "--output_dir", str(root / "held_infer"), "--device", "cpu"]))
    return root, model, report


def test_embeddings_groups_and_maps_are_written(embedded):
    root, _, report = embedded
    out = root / "out"
    with np.load(out / "session_00.embeddings.npz", allow_pickle=False) as npz:
        frames, valid, groups = npz["frame_embeddings"], npz["valid"], npz["groups"]
        assert frames.shape[0] == 600 and valid.all() and npz["fps"] == 30.0
        assert npz["window_embeddings"].shape[1] == frames.shape[1] and npz["window_start"][1] == 5
        assert set(npz["prediction"]) <= set(BEHAVIORS)
        truth = pd.read_csv(root / "held_out" / "session_00.csv")["behavior"].to_numpy()
        assert (npz["truth"] == truth).all()
    assert 2 <= report["groups"] <= 8 and set(report["silhouette"]) == {str(k) for k in range(2, 9)}
    table = pd.read_csv(out / "groups.csv")
    assert table["frames"].sum() == 1200 and table["share"].sum() == pytest.approx(1.0, abs=1e-3)
    assert set(table["group"]) == {f"group_{g:02d}" for g in np.unique(groups)} | set(table["group"])
    # a model trained with labels separates the behaviours in its window statistics: groups follow them
    assert report["against_labels"]["adjusted_rand_index"] > 0.3, report["against_labels"]
    session = ReviewSession.from_frames_csv(out / "groups" / "session_00.frames.csv")
    assert session.classes == sorted({f"group_{g:02d}" for g in groups}) and len(session) == 600
    # the boxes and keypoints the Review tab draws, as inference writes them
    shown = pd.read_csv(out / "groups" / "session_00.frames.csv")
    predicted = pd.read_csv(root / "held_infer" / "session_00.frames.csv")
    for column in ("box_x1", "box_y2", "kp0_x", "kp5_conf"):
        np.testing.assert_allclose(shown[column], predicted[column], atol=6e-3)  # inference rounds to 0.01 px
    for name in ("embedding_pca.png", "embedding_umap.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[1] > 1000 and image.std() > 10  # panels with points drawn
    saved = json.loads((out / "embedding_report.json").read_text())
    assert saved["groups"] == report["groups"] and saved["frames"] == 1200
    assert not list(out.glob("clips/*/*.mp4"))  # pose files without video: no clips


def test_a_pretrained_model_embeds_without_classes(embedded, tmp_path):
    import embed_behavior
    import pretrain_pose
    root, _, _ = embedded
    pretrain_pose.main(pretrain_pose.get_args_parser().parse_args([str(a) for a in [
        "--manifest_path", root / "prepared" / "sequence_manifest.json", "--classifier", "mstcn", "--use_pose",
        "--output_dir", tmp_path, "--run_name", "p", "--device", "cpu", "--epochs", 1, "--dense_hidden", 16,
        "--dense_layers", 4, "--dense_stages", 1, "--dense_chunk", 64, "--batch_size", 8]]))
    report = embed_behavior.main(embed_behavior.get_args_parser().parse_args([
        "--model_path", str(tmp_path / "p" / "best_model.pt"), "--input_dir", str(root / "held_out"), "--output_root",
        str(tmp_path / "out"), "--device", "cpu", "--groups", "hdbscan", "--no-umap", "--plot_points", "300",
        "--embedding", "model"]))
    with np.load(tmp_path / "out" / "session_01.embeddings.npz", allow_pickle=False) as npz:
        assert npz["frame_embeddings"].shape == (600, 16) and (npz["prediction"] == "").all()
    assert report["groups_method"] == "hdbscan" and "against_labels" in report
    assert not (tmp_path / "out" / "embedding_umap.png").exists()
    # the features the model is given instead of what it learned: the same for any model of these feature settings
    embed_behavior.main(embed_behavior.get_args_parser().parse_args([
        "--model_path", str(tmp_path / "p" / "best_model.pt"), "--input_dir", str(root / "held_out"), "--output_root",
        str(tmp_path / "inputs"), "--device", "cpu", "--embedding", "inputs", "--no-umap", "--plot_points", "300"]))
    with np.load(tmp_path / "inputs" / "session_01.embeddings.npz", allow_pickle=False) as npz:
        from utils.checkpoint import load_checkpoint
        args = load_checkpoint(tmp_path / "p" / "best_model.pt")["model_args"]
        assert npz["frame_embeddings"].shape == (600, args["pose_dim"] + args["box_motion_dim"])


def test_missing_umap_is_reported_before_any_recording_is_read(monkeypatch, tmp_path):
    import importlib.util
    import embed_behavior
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "umap" else real(name, *a))
    with pytest.raises(UserError, match="pip install umap-learn .*--no-umap"):
        embed_behavior.main(embed_behavior.get_args_parser().parse_args([
            "--model_path", str(tmp_path / "none.pt"), "--input_dir", str(tmp_path), "--output_root",
            str(tmp_path / "out")]))
