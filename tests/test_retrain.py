"""training/retrain.py: the review loop's retrain plan, headless: the checkpoint's own settings, the corrected
videos, its weights to start from; old checkpoint formats planned the same way."""
from datetime import datetime

import pytest
import torch
import yaml

from conftest import train_args
from training.retrain import plan_retrain
from utils.checkpoint import load_checkpoint
from utils.errors import UserError


@pytest.fixture(scope="module")
def checkpoint(pose_manifest, tmp_path_factory):
    import train_behavior_lstm as train
    out = tmp_path_factory.mktemp("retrain_runs")
    train.main(train_args(pose_manifest, out, "--run_name", "gbt", "--classifier", "gbt", "--gbt_max_iter", "20",
                          "--hflip_prob", "0.3"))
    return out / "gbt" / "best_model_macro_f1.pt"


def corrected_folder(root, videos: int):
    folder = root / "review" / "corrected"
    folder.mkdir(parents=True)
    for i in range(videos):
        (folder / f"session_{i}.csv").write_text("frame,behavior\n0,walk\n")
    return folder


def test_the_plan_prepares_the_corrected_videos_as_the_model_was_and_trains_from_it(checkpoint, tmp_path):
    plan = plan_retrain(checkpoint, corrected_folder(tmp_path, 1), now=datetime(2026, 12, 3, 10, 15))
    ckpt = load_checkpoint(checkpoint)
    assert plan.folder == tmp_path / "review" / "retrain" and plan.run_name == "retrain_20261203_101500"
    assert plan.new_model == plan.folder / "runs" / plan.run_name / "best_model_macro_f1.pt"
    assert plan.old_metric == ckpt["best_metric"]
    prep = yaml.safe_load(plan.prepare_config.read_text())["preprocessing"]
    assert (prep["crop_size"], prep["window_size"], prep["window_stride"]) == (48, 16, 8)  # the model's own
    assert prep["dataset_root"] == str(tmp_path / "review" / "corrected")
    assert prep["dataset_layout"] == "labelled_videos" and prep["split_strategy"] == "window"  # one video only
    sections = yaml.safe_load(plan.train_config.read_text())
    assert set(sections) == {"augmentation", "model", "training"}
    assert sections["training"]["init_from"] == str(checkpoint)
    assert sections["training"]["manifest_path"] == str(plan.folder / "prepared" / "sequence_manifest.json")
    assert sections["model"]["classifier"] == "gbt" and sections["model"]["gbt_max_iter"] == 20
    assert sections["augmentation"]["hflip_prob"] == 0.3
    commands = plan.commands()
    assert [c[2].rsplit("/", 1)[-1] for c in commands] == ["prepare_sequences_from_yolo.py", "train_behavior_lstm.py"]
    assert commands[0][-1] == str(plan.prepare_config) and commands[1][-1] == str(plan.train_config)
    three = plan_retrain(checkpoint, corrected_folder(tmp_path / "three", 3))
    assert yaml.safe_load(three.prepare_config.read_text())["preprocessing"]["split_strategy"] == "video"


def test_a_format_1_checkpoint_is_planned_with_the_settings_it_was_trained_with(checkpoint, tmp_path):
    """Its flat config and missing model settings go through the one migration, as every reader's do."""
    ckpt = load_checkpoint(checkpoint)
    flat = {k: v for section in ckpt["config"].values() for k, v in section.items()}
    old_args = {k: v for k, v in ckpt["model_args"].items() if k not in ("input_scaling", "feature_shift")}
    torch.save({**ckpt, "format_version": 1, "config": flat, "model_args": old_args}, tmp_path / "old.pt")
    plan = plan_retrain(tmp_path / "old.pt", corrected_folder(tmp_path, 1))
    sections = yaml.safe_load(plan.train_config.read_text())
    assert sections["augmentation"]["hflip_prob"] == 0.3 and sections["model"]["gbt_max_iter"] == 20
    assert sections["model"]["input_scaling"] == "standard" and sections["model"]["feature_shift"] == 0.0


def test_nothing_exported_is_said(checkpoint, tmp_path):
    (tmp_path / "corrected").mkdir()
    with pytest.raises(UserError, match="no corrected labels in .*corrected: export"):
        plan_retrain(checkpoint, tmp_path / "corrected")
