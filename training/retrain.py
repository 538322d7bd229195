"""The retrain plan of the review loop, headless: from a checkpoint and a folder of corrected videos, the
preprocessing and training configs that prepare those videos with the checkpoint's own settings and train from
its weights. The dashboard's Review tab runs the plan's commands as one job; tests and scripts can run it too.
"""
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from utils.checkpoint import load_checkpoint
from utils.config import from_recorded, section_name, settings_dict
from utils.errors import UserError
from utils.io import atomic_write_text
from utils.jobs import script_command
from utils.schema import AugmentConfig, ModelSettings, PreprocessingConfig, TrainingConfig

MIN_VIDEOS_FOR_VIDEO_SPLIT = 3  # fewer corrected videos: validation windows come from the same videos (leaky)


@dataclass
class RetrainPlan:
    folder: Path  # <corrected folder's parent>/retrain: prepared data, runs, configs, retrain.log
    run_name: str
    prepare_config: Path
    train_config: Path
    old_metric: dict  # the checkpoint's best_metric (its own validation split)

    @property
    def run_dir(self) -> Path:
        return self.folder / "runs" / self.run_name

    @property
    def new_model(self) -> Path:
        return self.run_dir / "best_model_macro_f1.pt"

    def commands(self) -> list:
        """Preprocess the corrected videos, then train: the stage scripts, one after the other."""
        return [script_command("prepare_sequences_from_yolo.py", self.prepare_config),
                script_command("train_behavior_lstm.py", self.train_config)]


def recorded_sections(checkpoint: dict) -> dict:
    """The settings a checkpoint (utils.checkpoint.load_checkpoint, any format) was trained with, by section; the
    model's exactly as it was built (model_args)."""
    out = {section_name(cls): settings_dict(from_recorded(cls, checkpoint["config"][section_name(cls)], "checkpoint"))
           for cls in (AugmentConfig, TrainingConfig)}
    out["model"] = settings_dict(from_recorded(ModelSettings, checkpoint["model_args"], "checkpoint"))
    out["preprocessing"] = settings_dict(from_recorded(PreprocessingConfig, checkpoint["preprocessing"], "checkpoint"))
    return out


def plan_retrain(model_path, corrected: Path, now: datetime = None) -> RetrainPlan:
    """Write the retrain configs for the labelled videos in `corrected` (<stem>.csv beside each video, as the
    Review tab exports them) and return the plan."""
    corrected = Path(corrected)
    videos = len(list(corrected.glob("*.csv")))
    if not videos:
        raise UserError(f"no corrected labels in {corrected}: export the reviewed video's labels first")
    checkpoint = load_checkpoint(model_path)
    sections = recorded_sections(checkpoint)
    folder = corrected.parent / "retrain"
    run_name = (now or datetime.now()).strftime("retrain_%Y%m%d_%H%M%S")
    sections["preprocessing"].update(
        dataset_root=str(corrected), output_root=str(folder / "prepared"), manifest_path=None,
        dataset_layout="labelled_videos", skip_existing=False, save_frame_crops=False,
        split_strategy="video" if videos >= MIN_VIDEOS_FOR_VIDEO_SPLIT else "window",
        train_ratio=0.8, val_ratio=0.2, test_ratio=0.0)
    sections["model"]["pretrained_backbone"] = False  # the weights come from init_from
    sections["training"].update(manifest_path=str(folder / "prepared" / "sequence_manifest.json"),
                                output_dir=str(folder / "runs"), run_name=run_name, init_from=str(model_path))
    plan = RetrainPlan(folder, run_name, folder / "retrain_preprocessing.yaml", folder / "retrain_training.yaml",
                       checkpoint.get("best_metric") or {})
    write_yaml(plan.prepare_config, {"preprocessing": sections["preprocessing"]})
    write_yaml(plan.train_config, {k: sections[k] for k in ("augmentation", "model", "training")})
    return plan


def write_yaml(path, values: dict) -> None:
    atomic_write_text(path, yaml.safe_dump(values, sort_keys=False))
