"""The training engine: settings in, a trained and checked model out, for every kind of classifier.

    from training.engine import train, training_config
    result = train(training_config(manifest_path="prepared/sequence_manifest.json", classifier="gbt"))
    result = train(training_config("--backbone", "none", "--use_pose", manifest_path=manifest))

train_behavior_lstm.py, demo.py, the benches and the tests call `train`; the dashboard (and its retrain) runs
train_behavior_lstm.py as a job, so it reaches `train` through the script. Under torchrun (several processes) each
process runs `train` and they train one network together (utils/distributed.py).
"""
import argparse
import copy
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from classifiers import build_classifier
from training.evaluation import add_drift_references, evaluate_test_split, write_startup_previews
from training.run import (REQUIRED, SECTIONS, StopFlag, TrainingRun, build_datasets, build_model_config,
                          open_run_folder, run_name_of)
from utils import distributed
from utils.config import add_config_arguments, did_you_mean, resolve_config, section_options
from utils.device import resolve_device
from utils.errors import UserError

log = logging.getLogger("train")


@dataclass
class TrainResult:
    """run_dir: the run folder; history: one row per epoch (metrics.csv); stopped: why training ended early
    (None when it ran to the end); test: test_metrics.json's summary ({} without a test split)."""
    run_dir: str
    history: list
    stopped: str = None
    test: dict = field(default_factory=dict)


def training_config(*flags, config: str = None, **settings):
    """The resolved sections (augmentation, model, training) as the command line gives them: schema defaults <
    default_config.yaml < the YAML file `config` < `flags` (command-line spelling, e.g. "--backbone", "none") <
    `settings` by name; every value validated, an unknown name answered with the closest one."""
    parser = argparse.ArgumentParser(prog="training_config", add_help=False)
    add_config_arguments(parser, SECTIONS)
    args = parser.parse_args([str(f) for f in flags])
    known = [name for cls in SECTIONS for name in section_options(cls)]
    for name, value in settings.items():
        if name not in known:
            raise UserError(f"unknown training setting {name!r}{did_you_mean(name, known)}")
        setattr(args, name, str(value) if isinstance(value, Path) else value)
    args.config = config or args.config
    return resolve_config(args, SECTIONS, required=REQUIRED)


def start_run(cfg, resume=None, command: str = None) -> TrainingRun:
    """The run folder (config.yaml, train.log), seeds, device, datasets and the model config."""
    run_dir, device = open_run_folder(cfg, resume, command, "train.log")
    datasets = build_datasets(cfg)
    return TrainingRun(cfg, run_dir, device, datasets, build_model_config(cfg, datasets),
                       resume=Path(resume) if resume else None)


def warn_about_settings(cfg, classifier) -> None:
    if classifier.sees_frames and not cfg.model.pretrained_backbone and not cfg.model.train_backbone:
        log.warning("the backbone is random (--no_pretrained_backbone) and frozen: its features are noise; "
                    "add --train_backbone, give --backbone_weights, or use --backbone none --use_pose")
    for name, why in classifier.ignored_settings(cfg):
        log.warning("%s is ignored: %s", name, why)


def train(cfg, resume=None, command: str = None) -> TrainResult:
    """Train the classifier `cfg` describes (training_config) in <output_dir>/<run_name>/, from `resume` (a
    last_checkpoint.pt) when given: fit, drift references and decision weights, then the test split once.
    `command`: the command line, for train.log."""
    if distributed.world_size() > 1:
        return train_distributed(cfg, resume, command)
    return train_here(cfg, resume, command)


def train_here(cfg, resume=None, command: str = None, stop_file: Path = None) -> TrainResult:
    """`train` in this process (`stop_file`: watched besides the run folder's own)."""
    run = start_run(cfg, resume, command)
    classifier = build_classifier(run.mcfg)
    if distributed.active():
        if not classifier.resumable:
            raise UserError(f"classifier {cfg.model.classifier} trains in one go, in one process; run "
                            f"train_behavior_lstm.py without torchrun")
        log.info("%s; every process takes %d of each batch's %d windows", distributed.describe(run.device),
                 distributed.local_batch(cfg.training.batch_size), cfg.training.batch_size)
    if distributed.is_main():
        write_startup_previews(run)
    if run.resume and not classifier.resumable:
        raise UserError(f"--resume {run.resume}: classifier {cfg.model.classifier} trains in one go and has no epochs "
                        f"to continue; drop --resume (a new run takes seconds)")
    warn_about_settings(cfg, classifier)
    if not run.has_validation:
        log.warning("NO VALIDATION SPLIT: nothing is selected on validation; best_model*.pt are the last epoch's "
                    "weights, and early stopping is off. Re-run preprocessing with --val_ratio > 0.")
    run.stop = StopFlag(stop_file or run.run_dir / cfg.training.stop_file)
    try:
        history = classifier.fit(run)
    finally:
        run.stop.restore()
    test = {}
    if history and distributed.is_main():
        add_drift_references(classifier, run, classifier.held_out_predictions(run))
        test = evaluate_test_split(classifier, run)
    return TrainResult(str(run.run_dir), history, run.stop.reason, test)


def train_distributed(cfg, resume, command: str) -> TrainResult:
    """One of torchrun's processes: they train one network together; rank 0 writes the run folder, the others a
    temporary one (utils/distributed.py)."""
    device = distributed.start(resolve_device(cfg.training.device))
    name = distributed.from_main(run_name_of(cfg))  # rank 0's clock, when the name comes from it
    stop_file = Path(cfg.training.output_dir) / name / cfg.training.stop_file  # rank 0's folder, watched by all
    if not distributed.is_main():
        logging.getLogger().setLevel(logging.WARNING)
    try:
        with distributed.main_process_files(Path(cfg.training.output_dir)) as out:
            cfg = copy.copy(cfg)
            cfg.training = replace(cfg.training, output_dir=str(out), run_name=name, device=device)
            result = train_here(cfg, resume, command if distributed.is_main() else None, stop_file)
    finally:
        distributed.finish()
    return result
