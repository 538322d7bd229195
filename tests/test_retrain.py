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
    assert prep["dataset_layout"] == "labelled_videos" and prep["train_ratio"] == 1.0  # the merge holds some back
    sections = yaml.safe_load(plan.train_config.read_text())
    assert set(sections) == {"augmentation", "model", "training"}
    assert sections["training"]["init_from"] == str(checkpoint)
    assert sections["training"]["manifest_path"] == str(plan.merged_manifest)
    assert plan.corrections_manifest == plan.folder / "prepared" / "sequence_manifest.json"
    assert sections["model"]["classifier"] == "gbt" and sections["model"]["gbt_max_iter"] == 20
    assert sections["augmentation"]["hflip_prob"] == 0.3
    [command] = plan.commands()  # the whole retrain, one script
    assert command[2].endswith("retrain_behavior_model.py") and command[command.index("--model_path") + 1] == str(
        checkpoint) and command[command.index("--run_name") + 1] == plan.run_name
    assert command[command.index("--review_dir") + 1] == str(tmp_path / "review" / "corrected")


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


def test_an_ensemble_of_trees_is_retrained_as_one(checkpoint, tmp_path):
    ckpt = load_checkpoint(checkpoint)
    torch.save({**ckpt, "model_args": {**ckpt["model_args"], "ensemble_members": 3}}, tmp_path / "ensemble.pt")
    plan = plan_retrain(tmp_path / "ensemble.pt", corrected_folder(tmp_path, 1))
    assert yaml.safe_load(plan.train_config.read_text())["model"]["ensemble_members"] == 3


def test_nothing_exported_is_said(checkpoint, tmp_path):
    (tmp_path / "corrected").mkdir()
    with pytest.raises(UserError, match="no corrected labels in .*corrected: export"):
        plan_retrain(checkpoint, tmp_path / "corrected")


@pytest.fixture(scope="module")
def retrained(checkpoint, long_video_dataset, tmp_path_factory):
    """The gbt model knows walk/rest/groom/turn from clips; two reviewed long videos (frames 0-119 of 150 checked,
    rear among them) are added by retrain_behavior_model.py. (comparison, retrain folder, the model's hash before)."""
    import hashlib

    import pandas as pd

    import retrain_behavior_model as retrain
    root = tmp_path_factory.mktemp("retrained")
    corrected = root / "review" / "corrected"
    corrected.mkdir(parents=True)
    for video in sorted(long_video_dataset.glob("*.mp4")):
        pd.read_csv(video.with_suffix(".csv")).iloc[:120].to_csv(corrected / f"{video.stem}.csv", index=False)
        (corrected / video.name).symlink_to(video)
    before = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    result = retrain.main(retrain.get_args_parser().parse_args([
        "--model_path", str(checkpoint), "--review_dir", str(corrected), "--run_name", "r1", "--device", "cpu"]))
    return result, root / "review" / "retrain", before


def test_retraining_adds_reviewed_frames_to_the_training_data_and_compares_on_the_same_held_out_windows(
        checkpoint, retrained):
    import hashlib
    import json

    import pandas as pd

    from utils.data.manifest import load_manifest
    result, folder, before = retrained
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == before  # the current model is never replaced
    merged = load_manifest(folder / "merged" / "sequence_manifest.json")
    original = load_manifest(load_checkpoint(checkpoint)["config"]["training"]["manifest_path"])
    assert set(original["class_to_idx"]) < set(merged["class_to_idx"]) and "rear" in merged["class_to_idx"]
    kept = [e for entries in merged["splits"].values() for e in entries if e["origin"] == "original"]
    assert len(kept) == sum(len(v) for v in original["splits"].values())  # nothing of the original data dropped
    reviewed = [e for entries in merged["splits"].values() for e in entries if e["origin"] == "review"]
    assert reviewed and max(e["end_frame"] for e in reviewed) <= 119  # frames nobody reviewed are no labels
    for video in {e["source_video"] for e in reviewed}:
        train_end = max(e["end_frame"] for e in merged["splits"]["train"] if e["source_video"] == video)
        held_start = min(e["start_frame"] for e in merged["splits"]["test"] if e["source_video"] == video)
        assert train_end < held_start  # no frame both learned and held out
    assert "rear" in load_checkpoint(folder / "runs" / "r1" / "best_model_macro_f1.pt")["class_names"]
    saved = json.loads((folder / "runs" / "r1" / "comparison.json").read_text())
    assert saved["verdict"] == result["verdict"]
    assert {"all held-out", "original held-out", "reviewed held-out"} <= set(saved["groups"])
    assert saved["groups"]["reviewed held-out"]["current"]["per_class_f1"]["rear"] == 0.0  # it cannot say rear
    overall = saved["groups"]["all held-out"]
    assert saved["macro_f1_change"] == pytest.approx(overall["new"]["macro_f1"] - overall["current"]["macro_f1"])
    table = pd.read_csv(folder / "runs" / "r1" / "comparison.csv")
    row = table[(table["group"] == "all held-out") & (table["class"] == "macro-F1")].iloc[0]
    assert row["current_f1"] == pytest.approx(overall["current"]["macro_f1"], abs=1e-4)


def test_a_worse_model_is_marked_worse(checkpoint, retrained):
    """The same comparison with the roles swapped: the model that cannot say rear, as the 'new' one."""
    from training.retrain import compare_models
    folder = retrained[1]
    swapped = compare_models(folder / "runs" / "r1" / "best_model_macro_f1.pt", checkpoint,
                             folder / "merged" / "sequence_manifest.json")
    assert swapped["macro_f1_change"] == pytest.approx(-retrained[0]["macro_f1_change"])
    assert swapped["verdict"] == {"better": "worse", "worse": "better", "same": "same"}[retrained[0]["verdict"]]
    assert retrained[0]["verdict"] == "better"  # it learned rear, which the current model cannot say
    assert retrained[0]["recommended"] == "new" and swapped["recommended"] == "current"


def test_a_model_whose_training_data_is_gone_is_said(checkpoint, tmp_path):
    import retrain_behavior_model as retrain
    with pytest.raises(UserError, match=r"the training data of .* is not at .*missing\.json .*--manifest_path"):
        retrain.main(retrain.get_args_parser().parse_args([
            "--model_path", str(checkpoint), "--review_dir", str(corrected_folder(tmp_path, 1)),
            "--manifest_path", str(tmp_path / "missing.json")]))
