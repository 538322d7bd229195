"""The review loop's retrain, headless: never worse without saying so.

    plan = plan_retrain(model, corrected_folder)      # configs: the corrected videos prepared as the model's were
    merged = merge_corrections(original_manifest, plan.corrections_manifest, plan.merged_manifest)
    train(training_config(config=plan.train_config))  # the original training data plus every correction
    comparison = compare_models(model, plan.new_model, plan.merged_manifest)   # same held-out windows, both models

Only frames the user reviewed are labels (utils.results.review exports nothing else). Each corrected video's
windows are cut in time: the first (1 - HOLDOUT_SHARE) of its reviewed windows train, the last HOLDOUT_SHARE are
held out (windows across the cut are dropped, so no frame is in both), beside the original validation and test
windows. Both models are scored on exactly those held-out windows; the current model stays where it is, and the
new one is used only when the user takes it. retrain_behavior_model.py runs the whole loop; the dashboard's Review
tab runs that script as its job.
"""
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from utils.checkpoint import load_checkpoint
from utils.config import from_recorded, section_name, settings_dict
from utils.data.manifest import SCHEMA_VERSION, load_manifest, write_manifest
from utils.errors import UserError
from utils.features.motion import FeatureSpec
from utils.io import atomic_write_csv, atomic_write_json, atomic_write_text
from utils.jobs import script_args
from utils.results.metrics import classification_scores
from utils.schema import AugmentConfig, ModelSettings, PreprocessingConfig, TrainingConfig

log = logging.getLogger("retrain")
HOLDOUT_SHARE = 0.2  # of each corrected video's reviewed windows, the last ones in time: held out for the comparison
WORSE_BY = 0.01  # a new model this much below the current one (held-out macro-F1) is marked worse
# settings two prepared datasets must share for their windows to be one training set
SHARED_PREPARATION = ("window_size", "crop_size", "num_keypoints", "keypoint_names", "detector", "has_frames",
                      "spatial_dims", "sensor_channels")
PREPARED_BEFORE = {"spatial_dims": 2, "sensor_channels": []}  # what manifests from before these keys hold

@dataclass
class RetrainPlan:
    folder: Path  # <corrected folder's parent>/retrain: prepared data, runs, configs, retrain.log
    run_name: str
    prepare_config: Path
    train_config: Path
    old_metric: dict  # the checkpoint's best_metric (its own validation split)
    model: Path = None  # the current model
    original_manifest: Path = None  # what the current model was trained on
    corrected: Path = None  # the folder of reviewed labels (and their videos)

    @property
    def run_dir(self) -> Path:
        return self.folder / "runs" / self.run_name

    @property
    def new_model(self) -> Path:
        return self.run_dir / "best_model_macro_f1.pt"

    @property
    def corrections_manifest(self) -> Path:
        return self.folder / "prepared" / "sequence_manifest.json"

    @property
    def merged_manifest(self) -> Path:
        return self.folder / "merged" / "sequence_manifest.json"

    @property
    def comparison(self) -> Path:
        return self.run_dir / "comparison.json"

    def commands(self) -> list:
        """The whole retrain as one command (retrain_behavior_model.py): the dashboard's job."""
        return [script_args("retrain_behavior_model.py", "--model_path", self.model, "--review_dir",
                            self.corrected, "--manifest_path",
                            self.original_manifest, "--run_name", self.run_name)]


def recorded_sections(checkpoint: dict) -> dict:
    """The settings a checkpoint (utils.checkpoint.load_checkpoint, any format) was trained with, by section; the
    model's exactly as it was built (model_args)."""
    out = {section_name(cls): settings_dict(from_recorded(cls, checkpoint["config"][section_name(cls)], "checkpoint"))
           for cls in (AugmentConfig, TrainingConfig)}
    out["model"] = settings_dict(from_recorded(ModelSettings, checkpoint["model_args"], "checkpoint"))
    out["preprocessing"] = settings_dict(from_recorded(PreprocessingConfig, checkpoint["preprocessing"], "checkpoint"))
    return out


def original_manifest_of(checkpoint: dict, model_path, given=None) -> Path:
    """The manifest the model was trained on: `given`, else the path its checkpoint recorded; an error naming both
    when it is not there (a retrain without the original data would forget it)."""
    recorded = checkpoint["config"]["training"].get("manifest_path")
    path = Path(given or recorded or "")
    if not path.is_file():
        raise UserError(f"the training data of {model_path} is not at {path} (its checkpoint records {recorded}); a "
                        f"retrain adds the corrections to it, so pass the manifest it was trained on (--manifest_path)")
    return path


def plan_retrain(model_path, corrected: Path, now: datetime = None, manifest_path=None, run_name=None) -> RetrainPlan:
    """Write the retrain configs for the labelled videos in `corrected` (<stem>.csv beside each video, as the
    Review tab exports them) and return the plan. The corrected videos are prepared with the checkpoint's own
    settings, all as training windows (merge_corrections holds some back); training starts from the current
    model's weights where its kind and classes allow (a network with the same classes)."""
    corrected = Path(corrected)
    labelled = sorted(corrected.glob("*.csv"))
    if not labelled:
        raise UserError(f"no corrected labels in {corrected}: export the reviewed video's labels first")
    checkpoint = load_checkpoint(model_path)
    sections = recorded_sections(checkpoint)
    folder = corrected.parent / "retrain"
    run_name = run_name or (now or datetime.now()).strftime("retrain_%Y%m%d_%H%M%S")
    sections["preprocessing"].update(
        dataset_root=str(corrected), output_root=str(folder / "prepared"), manifest_path=None,
        dataset_layout="labelled_videos", skip_existing=False, save_frame_crops=False,
        split_strategy="window", train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)
    if sections["preprocessing"]["body_length_cm"]:
        # one scale per prepared dataset: a corrected recording of another rig would be measured at the wrong one
        log.warning("%s measures features in cm: the corrected recordings are prepared at its training data's scale, "
                    "%g px/cm; recordings of another rig need their own preparation", model_path,
                    sections["preprocessing"]["pixels_per_cm"])
    sections["model"]["pretrained_backbone"] = False  # the weights come from the current model or are learned
    sections["training"].update(manifest_path=str(folder / "merged" / "sequence_manifest.json"),
                                output_dir=str(folder / "runs"), run_name=run_name, init_from=str(model_path))
    plan = RetrainPlan(folder, run_name, folder / "retrain_preprocessing.yaml", folder / "retrain_training.yaml",
                       checkpoint.get("best_metric") or {}, Path(model_path),
                       Path(manifest_path or checkpoint["config"]["training"].get("manifest_path") or ""), corrected)
    write_yaml(plan.prepare_config, {"preprocessing": sections["preprocessing"]})
    write_yaml(plan.train_config, {k: sections[k] for k in ("augmentation", "model", "training")})
    return plan


def write_yaml(path, values: dict) -> None:
    atomic_write_text(path, yaml.safe_dump(values, sort_keys=False))


# ------------------------------------------------------------------------------------------------ merging
def merge_corrections(original_path, corrections_path, out_path, holdout_share: float = HOLDOUT_SHARE) -> dict:
    """One manifest at out_path: the original's windows in their splits, and the corrections' windows cut in time
    per video (module docstring): train before the cut, `test` after it (marked origin "review"). Classes are the
    union (a behaviour added during review is learned); window files stay where they are (paths rewritten
    relative to out_path); recordings are named by absolute path, so label files are found from either root."""
    original, corrections = load_manifest(original_path), load_manifest(corrections_path)
    check_same_preparation(original, corrections, original_path, corrections_path)
    classes = sorted(set(original["class_to_idx"]) | set(corrections["class_to_idx"]))
    index = {c: i for i, c in enumerate(classes)}
    out_dir = Path(out_path).parent
    splits = {split: [moved(e, Path(original_path).parent, original["meta"], out_dir, index)
                      for e in original["splits"].get(split, [])] for split in ("train", "val", "test")}
    by_video = defaultdict(list)
    for entries in corrections["splits"].values():
        for entry in entries:
            by_video[entry["source_video"]].append(moved(entry, Path(corrections_path).parent, corrections["meta"],
                                                         out_dir, index, origin="review"))
    held = dropped = 0
    for video, entries in sorted(by_video.items()):
        entries.sort(key=lambda e: e["start_frame"])
        first_held = min(int(round(len(entries) * (1 - holdout_share))), len(entries) - 1)
        cut = entries[first_held]["start_frame"] if len(entries) > 1 else None
        for entry in entries:
            if cut is None or entry["end_frame"] < cut:
                splits["train"].append(entry)
            elif entry["start_frame"] >= cut:
                splits["test"].append(entry)
                held += 1
            else:
                dropped += 1
    manifest = {**original, "schema_version": SCHEMA_VERSION, "class_to_idx": index,
                "idx_to_class": {str(i): c for c, i in index.items()}, "splits": splits,
                "created": datetime.now().isoformat(timespec="seconds"),
                "meta": {**original["meta"], "split_strategy": "file", "merged_from": [str(original_path),
                                                                                      str(corrections_path)]},
                "summary": [f"original windows {sum(len(v) for v in original['splits'].values())}, corrected windows "
                            f"{sum(len(v) for v in by_video.values())}: {held} held out, {dropped} across the cut "
                            f"dropped"]}
    manifest.pop("videos", None)
    write_manifest(out_path, manifest)
    log.info("merged %s", manifest["summary"][0])
    return manifest


def check_same_preparation(original: dict, corrections: dict, original_path, corrections_path) -> None:
    for key in SHARED_PREPARATION:
        a, b = (m["meta"].get(key, PREPARED_BEFORE.get(key)) for m in (original, corrections))
        if a != b:
            raise UserError(f"{corrections_path} was prepared with {key} {b}, the model's data {original_path} with "
                            f"{a}; prepare the corrections with the model's settings (plan_retrain does)")


def moved(entry: dict, manifest_dir: Path, meta: dict, out_dir: Path, index: dict, origin: str = "original") -> dict:
    """A window entry as the merged manifest holds it: file paths relative to out_dir, the recording by absolute
    path, the label as the merged class index."""
    out = {**entry, "label": index[entry["class_name"]], "origin": origin,
           "source_video": str(Path(meta["dataset_root"]) / entry["source_video"])}
    for key in ("npz", "crop_store"):
        if entry.get(key):
            out[key] = os.path.relpath((manifest_dir / entry[key]).resolve(), out_dir.resolve())
    return out


# ------------------------------------------------------------------------------------------------ comparing
def compare_models(current, new, manifest_path, device: str = "cpu") -> dict:
    """Both models on the same held-out windows of the merged manifest (val and test: the original held-out
    windows and the held-back corrections), per class; `verdict` better / same / worse (by WORSE_BY) and the model
    `recommended` ("new" only when better)."""
    manifest = load_manifest(manifest_path)
    classes = [manifest["idx_to_class"][str(i)] for i in range(len(manifest["idx_to_class"]))]
    scored = {name: held_out_predictions(path, manifest_path, device) for name, path in
              (("current", current), ("new", new))}
    truth, origin = scored["new"][0], scored["new"][2]
    groups = {"all held-out": np.ones(len(truth), bool), "original held-out": origin == "original",
              "reviewed held-out": origin == "review"}
    result = {"current_model": str(current), "new_model": str(new), "manifest": str(manifest_path), "groups": {}}
    for group, mask in groups.items():
        if not mask.any():
            continue
        result["groups"][group] = {"windows": int(mask.sum()), **{
            name: summary(classification_scores(truth[mask].tolist(), predicted[mask].tolist(), classes))
            for name, (_, predicted, _) in scored.items()}}
    overall = result["groups"]["all held-out"]
    change = overall["new"]["macro_f1"] - overall["current"]["macro_f1"]
    result["macro_f1_change"] = change
    result["verdict"] = "worse" if change < -WORSE_BY else "better" if change > WORSE_BY else "same"
    # only a model shown to be better is recommended: one within WORSE_BY of the current model on these windows
    # can still be worse on other recordings (bench/README.md, "Which bouts to review": -0.028 on held-out
    # recordings for a retrain judged -0.010 here), and keeping the current model never loses anything
    result["recommended"] = "new" if result["verdict"] == "better" else "current"
    return result


def summary(scores: dict) -> dict:
    return {"macro_f1": scores["macro_f1"], "accuracy": scores["accuracy"],
            "per_class_f1": {c: s["f1"] for c, s in scores["per_class"].items()},
            "support": {c: int(s["support"]) for c, s in scores["per_class"].items()}}


def held_out_predictions(model_path, manifest_path, device: str) -> tuple:
    """(true class names, predicted class names, origin) of every val and test window of the manifest, as the model
    at model_path classifies them with its own input settings (a model that lacks a class never predicts it)."""
    from classifiers import load_classifier
    from data import WindowDataset
    from training.evaluation import window_outputs
    checkpoint = load_checkpoint(model_path)
    sections = recorded_sections(checkpoint)
    model, training = sections["model"], sections["training"]
    classifier = load_classifier(checkpoint, device)
    frames = classifier.sees_frames  # decoded for the backbone, as inference sees them
    names = np.array(checkpoint["class_names"], dtype=object)
    spec = FeatureSpec.from_checkpoint(checkpoint)
    truth, predicted, origin = [], [], []
    for split in ("val", "test"):
        dataset = WindowDataset(manifest_path, split, None, model["use_pose"], training["min_keypoint_conf"],
                                training["seed"], training["pose_features"], model["use_box_motion"],
                                load_frames=frames, track_smoothing_s=spec.track_smoothing_s,
                                use_sensors=bool(spec.sensor_channels), feature_normalisation=spec.normalisation)
        if not len(dataset):
            continue
        probs, _ = window_outputs(classifier, dataset, np.arange(len(dataset)), device, training["batch_size"])
        truth += [e["class_name"] for e in dataset.entries]
        predicted += names[probs.argmax(1)].tolist()
        origin += [e.get("origin", "original") for e in dataset.entries]
    if not truth:
        raise UserError(f"{manifest_path} holds no held-out windows to compare the models on; review more frames")
    return np.array(truth, dtype=object), np.array(predicted, dtype=object), np.array(origin)


def write_comparison(result: dict, path) -> tuple:
    """comparison.json and comparison.csv (per class, side by side) beside each other; the table's lines."""
    path = Path(path)
    atomic_write_json(path, result)
    rows = []
    for group, scores in result["groups"].items():
        for c in [c for c, n in scores["new"]["support"].items() if n]:  # classes this group holds
            rows.append({"group": group, "class": c, "windows": scores["new"]["support"][c],
                         "current_f1": round(scores["current"]["per_class_f1"][c], 4),
                         "new_f1": round(scores["new"]["per_class_f1"][c], 4)})
        rows.append({"group": group, "class": "macro-F1", "windows": scores["windows"],
                     "current_f1": round(scores["current"]["macro_f1"], 4), "new_f1": round(scores["new"]["macro_f1"], 4)})
    table = pd.DataFrame(rows)
    atomic_write_csv(path.with_suffix(".csv"), table)
    return table
