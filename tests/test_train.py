"""train_behavior_lstm.py and the training engine (training/): it learns, resumes exactly, stops cleanly, and writes
safe checkpoints."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import train_behavior_lstm as train
import training.loop
import training.run
from classifiers import build_classifier
from conftest import train_args
from data import WindowDataset
from model import ModelConfig, build_model
from training.run import REQUIRED, SECTIONS, build_datasets, build_model_config
from training.trees import evaluate_trees, stacked_inputs
from utils.errors import UserError


@pytest.fixture(scope="module")
def learned(pose_manifest, tmp_path_factory):
    """A pose-only model trained on 4 behaviours x 4 training clips, validated on 4 x 3 clips of other animals
    (with a single validation clip per class, one clip decided a quarter of the accuracy). The keypoints come from
    a tracker's file beside each clip (the generator's truth with 1.5 px of noise), not from the tiny YOLO: learning
    from its keypoints is tested on the pose_manifest data (test_infer), and detecting 1792 frames took a third of
    this module's time."""
    from prepare_sequences_from_yolo import main as prepare
    from conftest import prepare_args
    from utils.readers.pose_io import write_pose_file
    from utils.synthetic import KEYPOINT_NAMES, make_class_folder_dataset
    root = tmp_path_factory.mktemp("learn_data")
    clips = make_class_folder_dataset(root / "clips", videos_per_class=7, num_frames=64, seed=23,
                                      behaviors=("walk", "rest", "groom", "turn"))
    noise = np.random.default_rng(23)
    for clip in clips:
        keypoints = np.load(clip.with_suffix(".truth.npz"))["keypoints"][:, None]
        write_pose_file(clip.with_name(clip.stem + "DLC_tracker.h5"), keypoints + noise.normal(0, 1.5, keypoints.shape),
                        np.full(keypoints.shape[:3], 0.95, np.float32), KEYPOINT_NAMES)
    prepare(prepare_args("--dataset_root", root / "clips", "--output_root", root / "prepared", "--detector",
                         "pose_file", "--crop_size", "48", "--window_size", "16", "--window_stride", "8",
                         "--train_ratio", "0.57", "--val_ratio", "0.43", "--test_ratio", "0"))
    out = tmp_path_factory.mktemp("runs")
    result = train.main(train_args(root / "prepared" / "sequence_manifest.json", out, "--run_name", "learn",
                                   "--epochs", "25", "--patience", "0"))
    return out / "learn", result, root / "prepared" / "sequence_manifest.json"


def test_pose_model_learns_well_above_chance(learned):
    run_dir, result, _ = learned
    history = pd.read_csv(run_dir / "metrics.csv")
    assert len(history) == 25
    best = history["val_acc"].max()
    assert best >= 0.6, f"best validation accuracy {best:.2f} with 4 classes (chance 0.25)"
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0] * 0.7


def test_outputs_and_checkpoint_round_trip(learned, pose_manifest):
    run_dir, _, _ = learned
    for name in ("config.yaml", "best_model.pt", "best_model_macro_f1.pt", "last_checkpoint.pt", "metrics.csv",
                 "training_curves.png", "startup_crops_preview.png", "startup_pose_preview_train.png",
                 "startup_pose_preview_val.png", "startup_pose_aug_preview_train.png",
                 "confusion_matrix_best_acc.csv", "confusion_matrix_best_macro_f1_normalized.csv",
                 "per_class_metrics_best_macro_f1.csv"):
        assert (run_dir / name).is_file(), name
    ckpt = torch.load(run_dir / "best_model.pt", map_location="cpu", weights_only=True)
    manifest = json.loads(pose_manifest.read_text())
    assert ckpt["class_names"] == [manifest["idx_to_class"][str(i)] for i in range(4)]
    assert ckpt["preprocessing"]["crop_size"] == 48 and ckpt["preprocessing"]["num_keypoints"] == 6
    json.dumps({k: ckpt[k] for k in ("model_args", "config", "class_names", "preprocessing", "best_metric")})
    model = build_model(ModelConfig(**ckpt["model_args"]))
    model.load_state_dict(ckpt["model"])  # strict: the metadata alone rebuilds the architecture
    history = pd.read_csv(run_dir / "metrics.csv")
    assert ckpt["best_metric"]["acc"] == pytest.approx(history["val_acc"].max())
    best_epoch = int(history["val_acc"].idxmax())
    assert ckpt["epoch"] == history["epoch"][best_epoch]
    cm = pd.read_csv(run_dir / "confusion_matrix_best_acc.csv").set_index("true")
    assert np.trace(cm.values) / cm.values.sum() == pytest.approx(ckpt["best_metric"]["acc"])


def test_resume_reaches_the_same_weights(pose_manifest, tmp_path):
    common = ["--seed", "3", "--scheduler", "plateau", "--patience", "0", "--mixup_alpha", "0.4"]
    train.main(train_args(pose_manifest, tmp_path, "--run_name", "full", "--epochs", "4", *common))
    train.main(train_args(pose_manifest, tmp_path, "--run_name", "split", "--epochs", "2", *common))
    train.main(train_args(pose_manifest, tmp_path, "--run_name", "split", "--epochs", "4", *common,
                          "--resume", tmp_path / "split" / "last_checkpoint.pt"))
    full = torch.load(tmp_path / "full" / "last_checkpoint.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "last_checkpoint.pt", weights_only=True)
    assert full["epoch"] == split["epoch"] == 3
    for key, value in full["model"].items():
        assert torch.equal(value, split["model"][key]), key
    a, b = pd.read_csv(tmp_path / "full" / "metrics.csv"), pd.read_csv(tmp_path / "split" / "metrics.csv")
    np.testing.assert_allclose(a["val_loss"], b["val_loss"], rtol=1e-6)


def test_stop_file_ends_cleanly_with_outputs(pose_manifest, tmp_path, monkeypatch):
    real = training.loop.train_one_epoch

    def epoch_then_stop_file(*args):
        result = real(*args)
        if args[-1] == "epoch 1":  # desc
            (tmp_path / "stopper" / "STOP").touch()  # appears after epoch 1's last batch: epoch 1 still counts
        return result

    monkeypatch.setattr(training.loop, "train_one_epoch", epoch_then_stop_file)
    result = train.main(train_args(pose_manifest, tmp_path, "--run_name", "stopper", "--epochs", "50"))
    assert result.stopped.startswith("stop file")
    assert len(pd.read_csv(tmp_path / "stopper" / "metrics.csv")) == 2
    assert torch.load(tmp_path / "stopper" / "last_checkpoint.pt", weights_only=True)["epoch"] == 1
    assert (tmp_path / "stopper" / "training_curves.png").is_file()
    assert not list((tmp_path / "stopper").glob("*.tmp*"))


def test_an_ensemble_trains_each_member_on_its_own_stops_resumes_and_averages_them(pose_manifest, tmp_path,
                                                                                    monkeypatch):
    common = ["--run_name", "ens", "--epochs", "3", "--patience", "0", "--ensemble_members", "3", "--seed", "4"]
    run, real = tmp_path / "ens", training.loop.train_one_epoch

    def stop_during_the_second_member(*args):
        result = real(*args)
        if args[-1] == "member 2/3 epoch 1":
            (run / "STOP").touch()
        return result

    monkeypatch.setattr(training.loop, "train_one_epoch", stop_during_the_second_member)
    stopped = train.main(train_args(pose_manifest, tmp_path, *common))
    assert stopped.stopped.startswith("stop file") and not (run / "member_2").exists()
    load = (lambda path: torch.load(path, map_location="cpu", weights_only=True))
    assert load(run / "best_model_macro_f1.pt")["model_args"]["ensemble_members"] == 2  # the members trained so far
    (run / "STOP").unlink()
    monkeypatch.undo()
    train.main(train_args(pose_manifest, tmp_path, *common, "--resume", run / "member_1" / "last_checkpoint.pt"))
    assert pd.read_csv(run / "metrics.csv").groupby("member").size().tolist() == [3, 3, 3]
    ckpt = load(run / "best_model_macro_f1.pt")
    members = [load(run / f"member_{i}" / "best_model_macro_f1.pt") for i in range(3)]
    assert ckpt["model_args"]["ensemble_members"] == 3 and "drift" in ckpt
    assert [m["model_args"]["ensemble_members"] for m in members] == [1, 1, 1]  # each a model on its own
    assert [m["config"]["training"]["seed"] for m in members] == [4, 5, 6]  # own batch order and augmentation
    for i, member in enumerate(members):
        for key, value in member["model"].items():
            assert torch.equal(ckpt["model"][f"members.{i}.{key}"], value), (i, key)
    assert not torch.equal(members[0]["model"]["classifier.weight"], members[1]["model"]["classifier.weight"])
    ensemble = build_model(ModelConfig(**ckpt["model_args"])).eval()
    ensemble.load_state_dict(ckpt["model"])
    nets = [build_model(ModelConfig(**m["model_args"])).eval() for m in members]
    for net, member in zip(nets, members):
        net.load_state_dict(member["model"])
    torch.manual_seed(0)
    pose = torch.randn(5, 16, ckpt["model_args"]["pose_dim"])
    motion = torch.randn(5, 16, ckpt["model_args"]["box_motion_dim"])
    probs = ensemble.window_outputs(pose=pose, motion=motion)[0]
    alone = torch.stack([net.window_outputs(pose=pose, motion=motion)[0] for net in nets])
    assert not torch.allclose(alone[0], alone[1], atol=1e-3)
    torch.testing.assert_close(probs, alone.mean(0))
    per_class = pd.read_csv(run / "per_class_metrics_best_macro_f1.csv")  # the ensemble, scored on validation
    assert ckpt["best_metric"]["macro_f1"] == pytest.approx(per_class["f1"].mean(), abs=1e-6)


def test_frozen_backbone_is_unchanged_by_training(pose_manifest, tmp_path):
    train.main(train_args(pose_manifest, tmp_path, "--run_name", "frozen", "--epochs", "1", "--backbone",
                          "mobilenet_v3_small", "--no_pretrained_backbone", "--seed", "5"))
    ckpt = torch.load(tmp_path / "frozen" / "last_checkpoint.pt", weights_only=True)
    training.run.seed_everything(5)
    fresh = build_model(ModelConfig(**ckpt["model_args"])).state_dict()
    backbone_keys = [k for k in fresh if k.startswith("backbone.")]
    assert backbone_keys and any("running_mean" in k for k in backbone_keys)
    for key in backbone_keys:
        assert torch.equal(fresh[key], ckpt["model"][key]), key
    assert not torch.equal(fresh["classifier.weight"], ckpt["model"]["classifier.weight"])


def test_clear_errors(pose_manifest, tmp_path):
    with pytest.raises(UserError, match="manifest not found"):
        train.main(train_args(tmp_path / "missing.json", tmp_path))
    manifest = json.loads(pose_manifest.read_text())
    manifest["splits"]["train"] = [e for e in manifest["splits"]["train"] if e["class_name"] != "rest"]
    bad = pose_manifest.parent / "no_rest.json"
    bad.write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="class\\(es\\) rest have no training windows"):
        train.main(train_args(bad, tmp_path, "--epochs", "1"))
    manifest["splits"]["train"] = []
    bad.write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="no training windows"):
        train.main(train_args(bad, tmp_path, "--epochs", "1"))
    manifest = json.loads(pose_manifest.read_text())
    manifest["meta"]["num_keypoints"] = 0
    bad.write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="--use_pose asked for, but .* has no keypoints"):
        train.main(train_args(bad, tmp_path, "--epochs", "1"))
    with pytest.raises(UserError, match="takes 224x224 crops, the data has 48"):
        train.main(train_args(pose_manifest, tmp_path, "--epochs", "1", "--backbone", "vit_b_16",
                              "--no_pretrained_backbone"))


def test_feature_cache_encodes_each_frame_once_and_matches_the_backbone(pose_manifest):
    from data import WindowDataset, build_feature_cache
    # resnet18: a random MobileNetV3 in eval mode outputs ~1e-8 everywhere (BatchNorm on untrained statistics)
    model = build_model(ModelConfig(num_classes=4, backbone="resnet18", pretrained_backbone=False, crop_size=48)).eval()
    dataset = WindowDataset(pose_manifest, "train")
    encoded = []

    def counting_encode(x):
        encoded.append(x.shape[1])
        return model.encode_frames(x)
    cache = build_feature_cache(counting_encode, dataset, "cpu", batch_frames=40)
    unique = {(e["source_video"], f) for e in dataset.entries for f in range(e["start_frame"], e["end_frame"] + 1)}
    window_frames = sum(e["end_frame"] - e["start_frame"] + 1 for e in dataset.entries)
    assert sum(encoded) == len(unique) < window_frames  # stride 8, window 16: frames shared by 2 windows
    for i in (0, len(dataset) - 1):
        direct = model.encode_frames(dataset[i]["frames"][None])[0]
        torch.testing.assert_close(cache[i]["visual"], direct, atol=2e-2, rtol=1e-2)  # float16 bank
        assert cache[i]["label"] == dataset.labels[i]
    with_views = build_feature_cache(model.encode_frames, WindowDataset(pose_manifest, "train",
                                     augment=__import__("data").AugmentConfig()), "cpu", augmented_views=2)
    assert with_views.frame_index.shape[1] == 3  # clean + 2 augmented views
    drawn = set()
    for epoch in range(6):
        with_views.set_epoch(epoch)
        drawn.add(float(with_views[0]["visual"].sum()))
    assert len(drawn) > 1  # different epochs see different views


def test_no_validation_split_is_said_loudly_and_nothing_called_best(pose_manifest, tmp_path, caplog):
    manifest = json.loads(pose_manifest.read_text())
    manifest["splits"]["val"] = []
    no_val = pose_manifest.parent / "no_val.json"
    no_val.write_text(json.dumps(manifest))
    train.main(train_args(no_val, tmp_path, "--run_name", "noval", "--epochs", "2"))
    assert "NO VALIDATION SPLIT" in caplog.text
    ckpt = torch.load(tmp_path / "noval" / "best_model.pt", weights_only=True)
    assert ckpt["selection"].startswith("last epoch: NO validation split") and ckpt["best_metric"] is None
    assert ckpt["epoch"] == 1
    assert "val_acc" not in pd.read_csv(tmp_path / "noval" / "metrics.csv").columns


def test_settings_a_run_cannot_apply_are_named(pose_manifest):
    from utils.config import resolve_config
    args = train_args(pose_manifest, "unused", "--brightness", "0.5", "--hflip_prob", "0.2", "--bidirectional",
                      "--sequence_model", "tcn", "--tune_decision_weights", "--decision_folds", "3")
    cfg = resolve_config(args, SECTIONS, required=REQUIRED)
    model = build_classifier(build_model_config(cfg, build_datasets(cfg)))
    ignored = dict(model.ignored_settings(cfg))
    # hflip mirrors the pose: used
    assert set(ignored) == {"augmentation.brightness", "model.bidirectional", "training.decision_folds"}
    assert "pose-only" in ignored["augmentation.brightness"] and "tcn" in ignored["model.bidirectional"]
    assert "only the gbt" in ignored["training.decision_folds"]
    args = train_args(pose_manifest, "unused", "--sequence_model", "attention", "--num_layers", "2")
    cfg = resolve_config(args, SECTIONS, required=REQUIRED)
    model = build_classifier(build_model_config(cfg, build_datasets(cfg)))
    assert dict(model.ignored_settings(cfg)) == {
        "model.num_layers": "only the lstm and tcn heads use it, not attention"}
    args = train_args(pose_manifest, "unused", "--classifier", "gbt", "--epochs", "7", "--hflip_prob", "0.2",
                      "--decision_folds", "3")
    cfg = resolve_config(args, SECTIONS, required=REQUIRED)
    model = build_classifier(build_model_config(cfg, build_datasets(cfg)))
    ignored = dict(model.ignored_settings(cfg))  # train_args' small network and lr are for a neural model
    assert {"training.epochs", "training.lr", "model.hidden_dim"} <= set(ignored)
    assert "augmentation.hflip_prob" not in ignored and "gbt" in ignored["training.epochs"]
    assert "model.backbone" not in ignored  # none, as train_args gives it: the value that switches frames off
    assert "tune_decision_weights is off" in ignored["training.decision_folds"]


def test_gradient_boosted_trees_learn_and_are_stored_without_pickle(learned, tmp_path):
    import skops.io
    from sklearn.preprocessing import FunctionTransformer
    manifest = learned[2]
    result = train.main(train_args(manifest, tmp_path, "--run_name", "gbt", "--classifier", "gbt"))
    run_dir = tmp_path / "gbt"
    row = pd.read_csv(run_dir / "metrics.csv").iloc[0]
    assert row["val_acc"] >= 0.6, f"gbt validation accuracy {row['val_acc']:.2f} with 4 classes (chance 0.25)"
    ckpt = torch.load(run_dir / "best_model_macro_f1.pt", map_location="cpu", weights_only=True)
    assert ckpt["model_args"]["classifier"] == "gbt" and ckpt["model"]["skops"].dtype == torch.uint8
    model = build_classifier(ModelConfig(**ckpt["model_args"]))
    model.load_state_dict(ckpt["model"])
    val = evaluate_trees(model, *stacked_inputs(WindowDataset(manifest, "val", use_pose=True, load_frames=False)))
    assert val["macro_f1"] == pytest.approx(ckpt["best_metric"]["macro_f1"])  # the stored trees, unchanged
    assert result.history[0]["val_macro_f1"] == pytest.approx(val["macro_f1"])
    hostile = {"skops": torch.frombuffer(bytearray(skops.io.dumps(FunctionTransformer(func=print))), dtype=torch.uint8)}
    with pytest.raises(UserError, match="not trusted"):
        model.load_state_dict(hostile)


def test_best_model_is_evaluated_once_on_the_test_split_per_window_and_per_frame(tmp_path):
    from conftest import prepare_args
    from prepare_sequences_from_yolo import main as prepare
    from utils.synthetic import make_long_video_dataset
    make_long_video_dataset(tmp_path / "videos", 3, 90, seed=4, truth=False, min_bout=30, max_bout=45,
                            behaviors=("walk", "rest"))
    split_file = tmp_path / "splits.csv"
    split_file.write_text("video,split\nsession_00.mp4,train\nsession_01.mp4,val\nsession_02.mp4,test\n")
    manifest = prepare(prepare_args("--dataset_root", tmp_path / "videos", "--output_root", tmp_path / "prep",
                                    "--yolo_weights", Path(__file__).parent / "fixtures" / "tiny_yolo_pose.pt",
                                    "--device", "cpu", "--crop_size", "48", "--window_size", "16",
                                    "--window_stride", "8", "--split_strategy", "file", "--split_file", split_file))
    test_entries = manifest["splits"]["test"]
    result = train.main(train_args(tmp_path / "prep" / "sequence_manifest.json", tmp_path / "runs", "--run_name",
                                   "t", "--epochs", "3", "--patience", "0"))
    summary = json.loads((tmp_path / "runs" / "t" / "test_metrics.json").read_text())
    assert summary == result.test and summary["windows"] == len(test_entries) > 0
    covered = {f for e in test_entries for f in range(e["start_frame"], e["end_frame"] + 1)}
    assert summary["frames"] == len(covered)  # every frame under a test window, truth from the label file
    assert 0 <= summary["frame_macro_f1"] <= 1 and 0 <= summary["window_macro_f1"] <= 1
    per_class = pd.read_csv(tmp_path / "runs" / "t" / "per_class_metrics_test.csv")
    assert per_class["support"].sum() == len(test_entries)
