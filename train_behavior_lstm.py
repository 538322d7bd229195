"""Stage C-E training: a frame backbone + temporal head (optionally fused with pose) on prepared windows.

Usage:
    python train_behavior_lstm.py --manifest_path prepared/sequence_manifest.json --run_name mobilenet_lstm
    python train_behavior_lstm.py --manifest_path prepared/sequence_manifest.json --backbone none --use_pose
    python train_behavior_lstm.py --config my_lab.yaml --resume runs/mobilenet_lstm/last_checkpoint.pt

Outputs in <output_dir>/<run_name>/: config.yaml, best_model.pt (best validation accuracy),
best_model_macro_f1.pt, last_checkpoint.pt, metrics.csv, training_curves.png, train.log, per best checkpoint
the confusion matrix (counts and normalised) and per-class precision/recall/F1 as CSV, and start-up previews
(startup_crops_preview.png; with keypoints startup_pose_preview_{train,val}.png, startup_pose_aug_preview_train.png).
When the manifest has a test split, best_model_macro_f1.pt is evaluated on it once at the end (never used for
selection): test_metrics.json (per-window and per-frame accuracy and macro-F1, per-class F1),
confusion_matrix_test*.csv and per_class_metrics_test.csv. Ctrl-C, SIGTERM or a file named STOP in the run
folder ends training after the current batch and still writes every output.

With --ensemble_members N > 1 the members are trained one after another in member_<i>/ (each a whole run with
seed + i); the run's best_model*.pt average them, each at its own best epoch (docs/formats.md, section 5). Resume
with the interrupted member's checkpoint: --resume runs/<run_name>/member_<i>/last_checkpoint.pt.
"""
import argparse
import copy
import logging
import random
import signal
import sys
import time
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, default_collate

from data import CachedFeatureDataset, WindowDataset, balanced_sampler, build_feature_cache, class_weights
from model import ClassifierEnsemble, ModelConfig, WindowStatsGBT, build_model, model_args, quantile_knots
from utils.checkpoint import load_checkpoint, save_checkpoint
from utils.config import add_config_arguments, dump_config, resolve_config, settings_dict
from utils.device import resolve_device, set_cpu_threads
from utils.drift import DriftReference
from utils.errors import UserError, first_line, run_cli
from utils.io import atomic_write_csv, atomic_write_json, ensure_dir
from utils.labels import label_file_of, load_frame_labels
from utils.logging_utils import progress, setup_logging
from utils.metrics import classification_scores, tune_decision_weights
from utils.plots import plot_training_curves, save_crops_preview, save_pose_preview
from utils.schema import AugmentConfig, ModelSettings, TrainingConfig
from utils.splits import time_blocked_folds
from utils.windows import frame_weights

log = logging.getLogger("train")
SECTIONS = (AugmentConfig, ModelSettings, TrainingConfig)
REQUIRED = ("manifest_path",)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, SECTIONS, required=REQUIRED)
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="continue from a last_checkpoint.pt (same run folder, same settings)")
    return parser


class StopFlag:
    """Set by SIGINT, SIGTERM or a stop file; checked between batches so every output is still written."""

    def __init__(self, stop_file: Path):
        self.stop_file, self.reason = stop_file, None
        self._old = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handler(self, signum, frame):
        self.reason = signal.Signals(signum).name

    def __bool__(self):
        if self.reason is None and self.stop_file.exists():
            self.reason = f"stop file {self.stop_file}"
        return self.reason is not None

    def restore(self):
        for s, handler in self._old.items():
            signal.signal(s, handler)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_datasets(cfg) -> dict:
    aug = copy.deepcopy(cfg.augmentation)  # the dataset fills in flip_idx from the manifest
    datasets = {split: dataset_of(cfg, split, aug if split == "train" else None) for split in ("train", "val", "test")}
    train = datasets["train"]
    check_frames_available(train.manifest, cfg)
    if len(train) == 0:
        raise UserError(f"{cfg.training.manifest_path} has no training windows; re-run preprocessing with a train_ratio > 0")
    counts = np.bincount(train.labels, minlength=len(train.manifest["class_to_idx"]))
    empty = [c for c, i in train.manifest["class_to_idx"].items() if counts[i] == 0]
    if empty:
        raise UserError(f"class(es) {', '.join(empty)} have no training windows in {cfg.training.manifest_path}; add videos "
                        f"of them or re-split (e.g. --split_strategy window for a quick test)")
    return datasets


def needs_frames(cfg) -> bool:
    return cfg.model.classifier == "neural" and cfg.model.backbone != "none"


def check_frames_available(manifest: dict, cfg) -> None:
    """Windows prepared from pose files without video hold no frames: only pose-only and gbt models train on
    them. Stop before anything is built."""
    if manifest["meta"].get("has_frames", True):
        return
    if needs_frames(cfg):
        raise UserError(f"{cfg.training.manifest_path} was prepared from pose files without video (no frames), but "
                        f"backbone {cfg.model.backbone} classifies frames; use --backbone none --use_pose (or "
                        f"--classifier gbt), or put the videos beside the pose files and prepare again")
    if cfg.training.pose_features == "crop":
        raise UserError(f"{cfg.training.manifest_path} has no frames for the crop pose features, which move with the "
                        f"frames' augmentation; use --pose_features body")


def dataset_of(cfg, split: str, augment=None) -> WindowDataset:
    return WindowDataset(cfg.training.manifest_path, split, augment, cfg.model.use_pose, cfg.training.min_keypoint_conf,
                         cfg.training.seed, cfg.training.pose_features, cfg.model.use_box_motion,
                         load_frames=needs_frames(cfg))


def build_loaders(datasets: dict, cfg, epoch: int) -> dict:
    """Loaders for one epoch; the shuffle order depends on (seed, epoch) only, so resume repeats it."""
    train = datasets["train"]
    train.set_epoch(epoch)
    gen = torch.Generator().manual_seed(cfg.training.seed * 1000 + epoch)
    sampler = balanced_sampler(train.labels, cfg.training.seed * 1000 + epoch) if cfg.training.train_sampler == "weighted" else None
    workers = 0 if isinstance(train, CachedFeatureDataset) else cfg.training.num_workers  # cached features are in memory
    kw = dict(batch_size=cfg.training.batch_size, num_workers=workers, persistent_workers=False)
    loaders = {"train": DataLoader(train, shuffle=sampler is None, sampler=sampler, generator=gen, drop_last=False, **kw)}
    for split in ("val", "test"):
        if len(datasets[split]):
            loaders[split] = DataLoader(datasets[split], shuffle=False, **kw)
    return loaders


def build_model_config(cfg, datasets) -> ModelConfig:
    train = datasets["train"]
    meta = train.manifest["meta"]
    return ModelConfig(**settings_dict(cfg.model), num_classes=len(train.manifest["class_to_idx"]),
                       pose_dim=train.pose_dim, box_motion_dim=train.motion_dim, input_stats=True,
                       crop_size=meta["crop_size"], window_size=meta["window_size"])


def input_statistics(dataset: WindowDataset, limit: int = 2000) -> dict:
    """Mean, spread and quantile knots of the pose and box-motion inputs over (up to `limit`) clean training
    windows; the model scales its inputs with them (features in body lengths and radians differ in scale, and
    speeds have heavy tails)."""
    picks = np.linspace(0, len(dataset) - 1, min(len(dataset), limit)).astype(int)
    samples = [dataset.item(int(i), with_frames=False)[0] for i in picks]
    stats = {}
    for name in ("pose", "motion"):
        rows = torch.cat([s[name] for s in samples if name == "motion" or bool(s["pose_present"])] or
                         [torch.zeros(0, samples[0][name].shape[-1])])
        if len(rows) > 1 and rows.shape[1]:
            stats[f"{name}_mean"], stats[f"{name}_std"] = rows.mean(0), rows.std(0).clamp(min=1e-3)
            stats[f"{name}_knots"] = quantile_knots(rows)
    return stats


def build_optimizer(model, cfg):
    backbone = [p for p in (model.backbone.parameters() if model.backbone is not None else []) if p.requires_grad]
    ids = {id(p) for p in backbone}
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    groups = [{"params": head, "lr": cfg.training.lr}] + ([{"params": backbone, "lr": cfg.training.backbone_lr}] if backbone else [])
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.training.weight_decay)
    if cfg.training.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(cfg.training.patience // 5, 2))
    elif cfg.training.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.training.epochs)
    else:
        scheduler = None
    return optimizer, scheduler


def loss_fn(logits, target, weights, cfg):
    """Cross-entropy (label smoothing) or focal loss; target is class indices or mixup soft labels."""
    if cfg.training.loss == "focal":
        logp = F.log_softmax(logits, -1)
        soft = target if target.dim() == 2 else F.one_hot(target, logits.shape[-1]).float()
        focal = (1 - logp.exp()) ** cfg.training.focal_gamma
        w = weights if weights is not None else torch.ones(logits.shape[-1], device=logits.device)
        return -(soft * focal * logp * w).sum(-1).mean()
    return F.cross_entropy(logits, target, weight=weights, label_smoothing=cfg.training.label_smoothing)


def to_device(batch, device):
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def model_inputs(model, batch) -> dict:
    """Frames or cached visual features, pose, pose_present and box motion, as the model takes them."""
    return {"visual": batch.get("visual", batch.get("frames")) if model.backbone is not None else None,
            "pose": batch["pose"] if model.uses_pose else None, "pose_present": batch["pose_present"],
            "motion": batch["motion"] if model.uses_motion else None}


def forward_batch(model, batch, inputs: dict):
    """Logits from frames, or from cached backbone features when the batch carries them."""
    if "visual" in batch:
        return model.forward_head(model.forward_from_features(**inputs))
    return model(inputs["visual"], inputs["pose"], inputs["pose_present"], inputs["motion"])


def train_one_epoch(model, loader, optimizer, scaler, weights, cfg, device, stop, desc) -> tuple:
    """(mean loss, completed): completed is False when a stop request cut the epoch short."""
    model.train()
    total, count, batches = 0.0, 0, 0
    amp = device.startswith("cuda") and cfg.training.amp
    with progress(total=len(loader), desc=desc) as bar:
        for batch in loader:
            if stop:
                break
            batch = to_device(batch, device)
            target = batch["label"]
            inputs = model_inputs(model, batch)
            if cfg.training.mixup_alpha > 0:
                inputs, target = mixup(inputs, target, cfg, model.cfg.num_classes)
            with torch.autocast("cuda", enabled=amp):
                loss = loss_fn(forward_batch(model, batch, inputs), target, weights, cfg)
            if not torch.isfinite(loss):
                raise UserError(f"loss became {loss.item()} at {desc}; lower --lr or check the data")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.item() * len(target)
            count += len(target)
            batches += 1
            bar.update(1)
    return total / max(count, 1), batches == len(loader)


def mixup(inputs: dict, target, cfg, num_classes) -> tuple:
    # torch's RNG (saved in checkpoints), so a resumed run mixes exactly as an uninterrupted one
    lam = float(torch.distributions.Beta(cfg.training.mixup_alpha, cfg.training.mixup_alpha).sample())
    perm = torch.randperm(target.shape[0], device=target.device)
    soft = F.one_hot(target, num_classes).float()
    mixed = {k: None if x is None else lam * x + (1 - lam) * x[perm] for k, x in inputs.items() if k != "pose_present"}
    mixed["pose_present"] = inputs["pose_present"] & inputs["pose_present"][perm]
    return mixed, lam * soft + (1 - lam) * soft[perm]


@torch.no_grad()
def evaluate(model, loader, weights, cfg, device) -> dict:
    """Loss and the scores of utils/metrics.py (accuracy, macro-F1, per class, confusion) over a split;
    `probs` are the windows' class probabilities in the split's order."""
    model.eval()
    losses, probs, targets = [], [], []
    for batch in loader:
        batch = to_device(batch, device)
        logits = forward_batch(model, batch, model_inputs(model, batch))
        losses.append(F.cross_entropy(logits, batch["label"], weight=weights, reduction="sum").item())
        probs.append(torch.softmax(logits.float(), -1).cpu())
        targets.append(batch["label"].cpu())
    probs, y_true = torch.cat(probs).numpy(), torch.cat(targets).numpy()
    scores = classification_scores(y_true.tolist(), probs.argmax(-1).tolist(), list(range(probs.shape[1])))
    return {"loss": sum(losses) / len(y_true), "acc": scores["accuracy"], "macro_f1": scores["macro_f1"],
            "scores": scores, "probs": probs}


def frame_scores(dataset, probs, class_names: list) -> dict:
    """Per-frame scores of a split: each frame's probabilities are the centre-weighted mean over the split's
    windows that cover it (as inference does), its truth is the video's label file (long videos) or the clip's
    class."""
    meta, sums, fps = dataset.manifest["meta"], {}, {}
    for entry, p in zip(dataset.entries, probs):
        video = sums.setdefault(entry["source_video"], {})
        fps[entry["source_video"]] = entry["fps"]
        weights = frame_weights(entry["end_frame"] - entry["start_frame"] + 1)
        for frame, weight in zip(range(entry["start_frame"], entry["end_frame"] + 1), weights):
            total = video.setdefault(frame, [np.zeros(len(p)), entry["class_name"]])
            total[0] += weight * p
    truth, predicted = [], []
    for rel, frames in sums.items():
        recording, _, animal = rel.partition("#")  # one animal of a multi-animal pose file: <file>#<animal>
        source = Path(meta["dataset_root"]) / recording
        label_file = label_file_of(source)
        labels = load_frame_labels(label_file, max(frames) + 1, fps[rel], animal or meta.get("boris_subject"),
                                   media=source) if label_file else None
        for frame, (total, clip_class) in frames.items():
            true = labels.label_at(frame, meta.get("background_label")) if labels else clip_class
            if true in class_names:
                truth.append(class_names.index(true))
                predicted.append(int(total.argmax()))
    return classification_scores(truth, predicted, list(range(len(class_names))))


def evaluate_test_split(datasets: dict, run_dir: Path, evaluate_split) -> dict:
    """The selected model, once, on the test split: per-window and per-frame scores, confusion and per-class
    tables (test_metrics.json, *_test.csv). Never used for selection. `evaluate_split(dataset, best_path)`
    returns what `evaluate` does."""
    test, best = datasets["test"], run_dir / "best_model_macro_f1.pt"
    if not len(test) or not best.is_file():
        log.info("no test split (or no best model): nothing evaluated on test")
        return {}
    result = evaluate_split(test, best)
    class_names = class_names_of(test.manifest)
    write_evaluation(run_dir, "test", result, class_names)
    frames = frame_scores(getattr(test, "source", test), result["probs"], class_names)
    summary = {"model": best.name, "windows": len(test), "window_accuracy": result["acc"],
               "window_macro_f1": result["macro_f1"], "frames": int(np.sum(frames["confusion"]["counts"])),
               "frame_accuracy": frames["accuracy"], "frame_macro_f1": frames["macro_f1"],
               "frame_per_class_f1": {class_names[i]: s["f1"] for i, s in frames["per_class"].items()}}
    atomic_write_json(run_dir / "test_metrics.json", summary)
    log.info("TEST split (%d windows, %d frames), %s: window macro-F1 %.3f, frame macro-F1 %.3f, per class %s",
             len(test), summary["frames"], best.name, result["macro_f1"], frames["macro_f1"],
             {c: round(f, 3) for c, f in summary["frame_per_class_f1"].items()})
    return summary


def neural_split_evaluator(model, cfg, device, weights):
    """evaluate_split for evaluate_test_split: the saved best weights, then `evaluate`."""
    def evaluate_split(dataset, best: Path) -> dict:
        model.load_state_dict(load_checkpoint(best)["model"])
        loader = DataLoader(dataset, batch_size=cfg.training.batch_size, shuffle=False, num_workers=0)
        return evaluate(model, loader, weights, cfg, device)
    return evaluate_split


# ------------------------------------------------------------------------------ drift reference
DRIFT_TRAIN_WINDOWS = 2000  # an even sample of the training windows is enough for a mean and a spread


@torch.no_grad()
def window_outputs(model, dataset, indices, device, batch_size: int) -> tuple:
    """(probabilities [N,C], embeddings [N,D]) of the given windows without augmentation, as inference
    computes them (model.window_outputs)."""
    model.eval()
    probs, embeddings = [], []
    for start in range(0, len(indices), batch_size):
        batch = to_device(default_collate([dataset.plain_item(int(i)) for i in indices[start:start + batch_size]]),
                          device)
        inputs = model_inputs(model, batch)
        if "frames" in batch and model.backbone is not None:  # not cached: encode as inference does
            inputs["visual"] = model.encode_frames(inputs["visual"])
        p, e = model.window_outputs(**inputs)
        probs.append(p.float().cpu().numpy())
        embeddings.append(e.float().cpu().numpy())
    return np.concatenate(probs), np.concatenate(embeddings)


def fit_drift_reference(model, datasets: dict, device, batch_size: int) -> DriftReference:
    """Standardised on an even sample of the training windows, calibrated on the validation windows."""
    train, val = datasets["train"], datasets["val"]
    sample = np.unique(np.linspace(0, len(train) - 1, min(len(train), DRIFT_TRAIN_WINDOWS)).round().astype(int))
    _, train_embeddings = window_outputs(model, train, sample, device, batch_size)
    val_probs, val_embeddings = window_outputs(model, val, np.arange(len(val)), device, batch_size)
    videos = [e["source_video"] for e in getattr(val, "source", val).entries]
    reference = DriftReference.fit(train_embeddings, np.asarray(train.labels)[sample], val_embeddings, val_probs,
                                   videos)
    return reference, val_probs


def add_drift_references(model, datasets: dict, run_dir: Path, device, batch_size: int,
                         tune_decisions: bool = False, more_held_out: tuple = None) -> None:
    """Store a drift reference (utils.drift) in each best checkpoint, fitted with that checkpoint's weights, and
    with tune_decisions the per-class decision weights tuned on the same validation windows, plus
    more_held_out = (probabilities, labels) of other windows the model did not learn from (out-of-fold)."""
    if not len(datasets["val"]):
        log.warning("no validation split: the models get no drift reference, so inference cannot flag videos "
                    "unlike the training ones")
        return
    start = time.time()
    for name in ("best_model.pt", "best_model_macro_f1.pt"):
        path = run_dir / name
        if not path.is_file():
            continue
        ckpt = load_checkpoint(path)
        model.load_state_dict(ckpt["model"])
        reference, val_probs = fit_drift_reference(model, datasets, device, batch_size)
        ckpt["drift"] = reference.recorded()
        if tune_decisions:
            probs, labels = val_probs, list(datasets["val"].labels)
            if more_held_out is not None:
                probs, labels = np.concatenate([probs, more_held_out[0]]), labels + list(more_held_out[1])
            weights, tuned, plain = tune_decision_weights(probs, labels, probs.shape[1])
            ckpt["decision_weights"] = [float(w) for w in weights]
            log.info("%s: decision weights %s: macro-F1 of %d held-out windows %.3f -> %.3f", name,
                     dict(zip(ckpt["class_names"], np.round(weights, 2).tolist())), len(labels), plain, tuned)
        save_checkpoint(path, **{k: v for k, v in ckpt.items() if k != "format_version"})
        log.info("%s: drift reference from %d training and %d validation windows; a video is flagged above %.0f%% "
                 "unfamiliar or %.0f%% low-confidence windows (%.1f s)", name, reference.training_windows,
                 reference.validation_windows, 100 * reference.warn_unfamiliar, 100 * reference.warn_low_confidence,
                 time.time() - start)


# ------------------------------------------------------------------------------ gradient-boosted trees
def stacked_inputs(dataset: WindowDataset, augmented_views: int = 0) -> tuple:
    """(pose [N,T,Dp], motion [N,T,Dm], labels [N]) of every window: the clean windows, then `augmented_views`
    feature-space augmented draws of each (training)."""
    samples = [dataset.plain_item(i) for i in range(len(dataset))]
    for view in range(1, 1 + (augmented_views if dataset.augment is not None else 0)):
        dataset.set_epoch(view)
        samples += [dataset.item(i, with_frames=False)[0] for i in range(len(dataset))]
    return tuple(torch.stack([s[key] for s in samples]).numpy() for key in ("pose", "motion", "label"))


def evaluate_gbt(model: WindowStatsGBT, pose, motion, labels) -> dict:
    """What `evaluate` returns, for the tree model: log loss, scores and probabilities of every window."""
    probs = model.predict_proba(pose, motion)
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1)).mean())
    scores = classification_scores(labels.tolist(), probs.argmax(-1).tolist(), list(range(model.cfg.num_classes)))
    return {"loss": loss, "acc": scores["accuracy"], "macro_f1": scores["macro_f1"], "scores": scores,
            "probs": probs}


def fit_gbt(model: WindowStatsGBT, datasets: dict, cfg, mcfg, run_dir: Path) -> dict:
    """Fit the trees once on the training windows (plus cache_augmented_views augmented draws), score them on
    validation and test, and save them as best_model*.pt with the usual metadata."""
    start = time.time()
    views = cfg.training.cache_augmented_views
    pose, motion, labels = stacked_inputs(datasets["train"], views)
    weights = None if cfg.training.class_weighting == "none" else dict(enumerate(class_weights(
        labels, mcfg.num_classes, cfg.training.class_weighting, cfg.training.class_weight_clamp).tolist()))
    model.fit(pose, motion, labels, weights, cfg.training.seed)
    clean = len(datasets["train"])  # the clean windows come first, before the augmented views
    train = evaluate_gbt(model, pose[:clean], motion[:clean], labels[:clean])
    row = {"epoch": 0, "train_loss": train["loss"], "train_acc": train["acc"]}
    result = evaluate_gbt(model, *stacked_inputs(datasets["val"])) if len(datasets["val"]) else None
    if result:
        row.update(val_loss=result["loss"], val_acc=result["acc"], val_macro_f1=result["macro_f1"])
    row["seconds"] = round(time.time() - start, 2)
    log.info("gbt: %d training windows (%d augmented views each) fitted in %.1f s; %s", len(datasets["train"]),
             views, row["seconds"], ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
    atomic_write_csv(run_dir / "metrics.csv", pd.DataFrame([row]))
    saved = checkpoint_fields(model, None, None, None, 0, {"acc": row.get("val_acc", -1.0),
                              "macro_f1": row.get("val_macro_f1", -1.0)}, cfg, mcfg, datasets)
    selection = "gradient-boosted trees, fitted once" + ("" if result else "; NO validation split")
    class_names = class_names_of(datasets["train"].manifest)
    for metric, name in (("acc", "best_model.pt"), ("macro_f1", "best_model_macro_f1.pt")):
        save_checkpoint(run_dir / name, selection=selection, **saved)
        if result:
            write_evaluation(run_dir, f"best_{metric}", result, class_names)
    # without validation nothing is tuned (add_drift_references returns early): no out-of-fold fits either
    folds = cfg.training.decision_folds if cfg.training.tune_decision_weights and len(datasets["val"]) else 0
    add_drift_references(model, datasets, run_dir, "cpu", cfg.training.batch_size, cfg.training.tune_decision_weights,
                         out_of_fold_probs(mcfg, datasets["train"], (pose, motion, labels), weights, cfg, folds))
    test = evaluate_test_split(datasets, run_dir, lambda dataset, best: evaluate_gbt(model, *stacked_inputs(dataset)))
    return {"run_dir": str(run_dir), "history": [row], "stopped": None, "test": test}


def out_of_fold_probs(mcfg, train: WindowDataset, stacked: tuple, class_weight, cfg, folds: int):
    """(probabilities, labels) of the training windows, each predicted by trees fitted without its block of time
    (utils.splits.time_blocked_folds) and without the augmented views of the held-out windows; None when folds < 2.
    Decision weights tuned on validation alone follow its few bouts; these add every training bout."""
    if folds < 2:
        return None
    pose, motion, labels = stacked
    clean = len(train)
    views = len(labels) // clean  # the clean windows, then each augmented view, in the same order
    probs, held_labels, start = [], [], time.time()
    for fit, held in time_blocked_folds(train.entries, folds):
        rows = np.concatenate([np.asarray(fit) + v * clean for v in range(views)])
        if len(set(labels[rows].tolist())) < mcfg.num_classes:
            log.info("decision weights: a fold is left out, its other blocks lack a class")
            continue
        trees = WindowStatsGBT(mcfg).fit(pose[rows], motion[rows], labels[rows], class_weight, cfg.training.seed)
        probs.append(trees.predict_proba(pose[held], motion[held]))
        held_labels += labels[held].tolist()
    if not probs:
        return None
    log.info("decision weights: out-of-fold predictions of %d training windows in %d blocks of time (%.1f s)",
             len(held_labels), len(probs), time.time() - start)
    return np.concatenate(probs), held_labels


def write_evaluation(run_dir: Path, tag: str, result: dict, class_names: list) -> None:
    """Confusion matrix (counts and row-normalised) and per-class precision/recall/F1, as CSV."""
    scores = result["scores"]
    cm = np.array(scores["confusion"]["counts"])
    atomic_write_csv(run_dir / f"confusion_matrix_{tag}.csv", pd.DataFrame(cm, index=class_names, columns=class_names)
                     .rename_axis("true").reset_index())
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    atomic_write_csv(run_dir / f"confusion_matrix_{tag}_normalized.csv",
                     pd.DataFrame(norm.round(4), index=class_names, columns=class_names).rename_axis("true").reset_index())
    per_class = [scores["per_class"][i] for i in range(len(class_names))]
    atomic_write_csv(run_dir / f"per_class_metrics_{tag}.csv", pd.DataFrame(
        {"class": class_names, **{k: [c[k] for c in per_class] for k in ("precision", "recall", "f1", "support")}}))


def one_per_class(dataset, limit: int = 8) -> list:
    """Indices of the first window of each class (then more), at most `limit`."""
    seen, picks = set(), []
    for i, label in enumerate(dataset.labels):
        if label not in seen:
            seen.add(label)
            picks.append(i)
    return picks[:limit]


def write_startup_previews(datasets: dict, cfg, run_dir: Path) -> None:
    """What the model will see: augmented training crops, and keypoints before and after augmentation."""
    train, class_names = datasets["train"], class_names_of(datasets["train"].manifest)
    if not train.manifest["meta"].get("has_frames", True):
        log.info("no crop or pose previews: the windows come from pose files without video")
        return
    picks = one_per_class(train)
    save_crops_preview([train.item(i, with_frames=True)[0] for i in picks], class_names,
                       run_dir / "startup_crops_preview.png")
    if train.num_keypoints == 0:
        return
    plain_train = dataset_of(cfg, "train")
    for name, ds, idx in (("startup_pose_preview_train.png", plain_train, picks),
                          ("startup_pose_preview_val.png", datasets["val"], one_per_class(datasets["val"])),
                          ("startup_pose_aug_preview_train.png", train, picks)):
        if len(ds):
            items = [ds.item(i, with_frames=True) for i in idx]
            save_pose_preview([s for s, _ in items], [k for _, k in items], class_names, run_dir / name)


def make_run_dir(cfg) -> Path:
    name = cfg.training.run_name or datetime.now().strftime("behavior_%Y%m%d_%H%M%S")
    return ensure_dir(Path(cfg.training.output_dir) / name, "run folder")


def checkpoint_fields(model, optimizer, scheduler, scaler, epoch, best, cfg, mcfg, datasets) -> dict:
    manifest = datasets["train"].manifest
    config = {section: settings_dict(values) for section, values in vars(cfg).items()}
    features = datasets["train"].spec.recorded()
    return dict(model=model.state_dict(), optimizer=optimizer.state_dict() if optimizer is not None else None,
                scheduler=scheduler.state_dict() if scheduler is not None else None,
                scaler=scaler.state_dict() if scaler is not None else None,
                epoch=epoch, best_metric=dict(best) if best else None, model_args=model_args(mcfg), config=config,
                features=features,
                class_names=class_names_of(manifest),
                preprocessing=manifest["meta"], rng={"torch": torch.get_rng_state(), "python": list(random.getstate()[1])})


def main(args):
    cfg = resolve_config(args, SECTIONS, required=REQUIRED)
    run_dir = make_run_dir(cfg)
    setup_logging(run_dir / "train.log")
    log.info("command: %s", " ".join(sys.argv))
    dump_config(cfg, run_dir / "config.yaml")
    seed_everything(cfg.training.seed)
    device = resolve_device(cfg.training.device)
    set_cpu_threads(0)
    datasets = build_datasets(cfg)
    write_startup_previews(datasets, cfg, run_dir)
    if cfg.model.backbone != "none" and not cfg.model.pretrained_backbone and not cfg.model.train_backbone:
        log.warning("the backbone is random (--no_pretrained_backbone) and frozen: its features are noise; "
                    "add --train_backbone, give --backbone_weights, or use --backbone none --use_pose")
    mcfg = build_model_config(cfg, datasets)
    model = build_model(mcfg)
    for name, why in ignored_settings(cfg, model):
        log.warning("%s is ignored: %s", name, why)
    if isinstance(model, WindowStatsGBT):
        return fit_gbt(model, datasets, cfg, mcfg, run_dir)
    model.set_input_stats(**input_statistics(datasets["train"]))
    model = model.to(device)
    if cfg.training.init_from:
        init_weights(model, cfg.training.init_from, class_names_of(datasets["train"].manifest))
    if uses_feature_cache(cfg, model):
        datasets = cache_features(model, datasets, cfg, device)
    weights = None if cfg.training.class_weighting == "none" else class_weights(
        datasets["train"].labels, mcfg.num_classes, cfg.training.class_weighting, cfg.training.class_weight_clamp).to(device)
    if not len(datasets["val"]):
        log.warning("NO VALIDATION SPLIT: nothing is selected on validation; best_model*.pt are the last epoch's "
                    "weights, and early stopping is off. Re-run preprocessing with --val_ratio > 0.")
    stop = StopFlag(run_dir / cfg.training.stop_file)
    try:
        if isinstance(model, ClassifierEnsemble):
            history, model = fit_members(model, datasets, weights, cfg, mcfg, device, run_dir, stop, args.resume)
        else:
            history = fit_network(model, datasets, weights, cfg, mcfg, device, run_dir, stop, args.resume)
    finally:
        stop.restore()
    if history:
        add_drift_references(model, datasets, run_dir, device, cfg.training.batch_size,
                             cfg.training.tune_decision_weights)
    evaluate_split = neural_split_evaluator(model, cfg, device, weights)
    test = evaluate_test_split(datasets, run_dir, evaluate_split) if history else {}
    return {"run_dir": str(run_dir), "history": history, "stopped": stop.reason, "test": test}


PIXEL_AUGMENTATION = ("brightness", "contrast", "saturation", "blur_prob", "noise_std")
FRAME_AUGMENTATION = ("hflip_prob", "vflip_prob", "rotation_deg", "scale_range", "translate_frac", *PIXEL_AUGMENTATION)
# body pose is egocentric and box motion uses no crop: only flips (mirror) and scale (reference jitter) reach them
BODY_POSE_UNUSED = ("rotation_deg", "translate_frac", *PIXEL_AUGMENTATION)


GBT_UNUSED_MODEL = tuple(f.name for f in fields(ModelSettings) if f.name not in (
    "classifier", "gbt_max_iter", "gbt_learning_rate", "backbone", "use_pose", "use_box_motion"))
GBT_UNUSED_TRAINING = ("lr", "backbone_lr", "weight_decay", "epochs", "batch_size", "patience", "scheduler", "loss",
                       "label_smoothing", "focal_gamma", "train_sampler", "mixup_alpha",
                       "feature_cache", "amp", "init_from")


def ignored_settings(cfg, model) -> list:
    """(setting, why) for each setting given a non-default value that this run cannot apply."""
    def changed(section, names):
        defaults = type(getattr(cfg, section))()
        return [f"{section}.{n}" for n in names if getattr(getattr(cfg, section), n) != getattr(defaults, n)]
    folds = [] if cfg.training.tune_decision_weights else [
        (n, "tune_decision_weights is off") for n in changed("training", ("decision_folds",))]
    if isinstance(model, WindowStatsGBT):
        frames = [] if cfg.model.backbone == "none" else changed("model", ("backbone",))
        return folds + [(n, "the gbt classifier has no neural network and sees no frames") for n in
                        frames + changed("model", GBT_UNUSED_MODEL) + changed("training", GBT_UNUSED_TRAINING) +
                        changed("augmentation", PIXEL_AUGMENTATION if cfg.training.pose_features == "crop"
                                else BODY_POSE_UNUSED)]
    out = folds or [(n, "only the gbt classifier is refitted per block of time; a neural model's decision weights "
                     "are tuned on validation") for n in changed("training", ("decision_folds",))]
    if model.backbone is None:
        unused = PIXEL_AUGMENTATION if cfg.training.pose_features == "crop" else BODY_POSE_UNUSED
        out += [(n, "a pose-only model sees no frames") for n in changed("augmentation", unused)]
        out += [(n, "a pose-only model has no backbone") for n in
                changed("model", ("train_backbone", "backbone_weights")) + changed("training", ("feature_cache",))]
    elif uses_feature_cache(cfg, model) and cfg.training.cache_augmented_views == 0:
        out += [(n, "cached frame features are clean with cache_augmented_views 0; set it to 1 or more")
                for n in changed("augmentation", FRAME_AUGMENTATION) or ["augmentation (frames)"]]
    if model.is_video:
        out += [(n, "a video backbone gives one embedding per clip: no temporal head") for n in
                changed("model", ("sequence_model", "hidden_dim", "num_layers", "bidirectional", "attention_pool",
                                  "temporal_attention_layers"))]
    elif cfg.model.sequence_model != "lstm":
        out += [(n, f"only the lstm head uses it, not {cfg.model.sequence_model}")
                for n in changed("model", ("bidirectional", "attention_pool"))]
        if cfg.model.sequence_model != "tcn":
            out += [(n, f"only the lstm and tcn heads use it, not {cfg.model.sequence_model}")
                    for n in changed("model", ("num_layers",))]
    if not cfg.model.use_pose:
        out += [(n, "use_pose is off") for n in changed("training", ("min_keypoint_conf", "pose_features"))]
    return out


def init_weights(model, path, class_names: list) -> None:
    """Start from another run's weights: same classes in the same order, same architecture."""
    ckpt = load_checkpoint(path)
    if list(ckpt["class_names"]) != list(class_names):
        raise UserError(f"init_from {path} was trained on classes {ckpt['class_names']}, the manifest has "
                        f"{class_names}; label windows of every class of the model (or train without init_from)")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise UserError(f"init_from {path} has another architecture than these settings "
                        f"({first_line(exc, 160)}); use the model settings it was trained with") from None
    log.info("weights initialised from %s (%s)", path, ckpt.get("selection"))


def uses_feature_cache(cfg, model) -> bool:
    return bool(cfg.training.feature_cache and model.backbone is not None and not cfg.model.train_backbone and not model.is_video)


def cache_features(model, datasets: dict, cfg, device) -> dict:
    """Replace each split by its cached backbone features (the frozen backbone never changes)."""
    model.eval()
    start, cached = time.time(), {}
    for split, ds in datasets.items():
        views = cfg.training.cache_augmented_views if split == "train" else 0
        cached[split] = build_feature_cache(model.encode_frames, ds, device, views) if len(ds) else ds
    frames = sum(len(ds) * (1 + (cfg.training.cache_augmented_views if s == "train" else 0)) * ds.frame_index.shape[-1]
                 for s, ds in cached.items() if len(ds))
    encoded = sum(len(ds.bank) for ds in cached.values() if len(ds))
    log.info("feature cache: %d frames encoded for %d window frames (%.1fx fewer) in %.1f s", encoded, frames,
             frames / max(encoded, 1), time.time() - start)
    return cached


def fit_network(model, datasets, weights, cfg, mcfg, device, run_dir, stop, resume_path=None, desc="epoch") -> list:
    """Train one network in run_dir (from resume_path's last checkpoint when given); the epochs' history."""
    optimizer, scheduler = build_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=device.startswith("cuda") and cfg.training.amp)
    state = {"start": 0, "best": {"acc": -1.0, "macro_f1": -1.0}, "since_best": 0}
    if resume_path:
        state = resume(resume_path, model, optimizer, scheduler, scaler)
    return fit(model, datasets, optimizer, scheduler, scaler, weights, cfg, mcfg, device, run_dir, state, stop, desc)


MEMBER_DIR = "member_{}"


def fit_members(ensemble, datasets, weights, cfg, mcfg, device, run_dir, stop, resume_path=None) -> tuple:
    """Train each member of an ensemble as one network would be, one after another in run_dir/member_<i>/ (its
    own seed for batch order and augmentation, its own early stopping and best epochs; a member's checkpoints are
    models on their own), then write the run's best_model*.pt: the members at their best epochs, averaged.
    A resumed run continues the member whose last_checkpoint.pt it names; earlier members are done. A stop ends
    the ensemble with the members trained so far. Returns (history with a member column, the ensemble)."""
    first = resumed_member(resume_path, run_dir) if resume_path else 0
    member_cfg = replace(mcfg, ensemble_members=1)
    count, history = len(ensemble.members), []
    for i in range(first):
        history += member_history(run_dir, i)
    for i in range(first, count):
        member_dir = ensure_dir(run_dir / MEMBER_DIR.format(i), "ensemble member folder")
        net = ensemble.members[i]
        if net.backbone is None and ensemble.backbone is not None:
            net.backbone = ensemble.backbone  # borrowed for training: frames are encoded by the shared backbone
        member_train = copy.copy(cfg)  # its own seed: batch order, sampler, dropout and augmentation
        member_train.training = replace(cfg.training, seed=cfg.training.seed + i)
        seed_everything(member_train.training.seed)
        log.info("ensemble member %d of %d (seed %d) in %s", i + 1, count, member_train.training.seed, member_dir)
        fit_network(net, datasets, weights, member_train, member_cfg, device, member_dir, stop,
                    resume_path if i == first else None, desc=f"member {i + 1}/{count} epoch")
        if i:
            net.backbone = None
        history += member_history(run_dir, i)
        if stop:
            count = i + 1 if (member_dir / "best_model_macro_f1.pt").is_file() else i
            log.warning("stopped during ensemble member %d: the model averages the %d member(s) trained so far",
                        i + 1, count)
            break
    if history:
        atomic_write_csv(run_dir / "metrics.csv", pd.DataFrame(history))
        plot_training_curves(history, run_dir / "training_curves.png")
    if not count:
        return [], ensemble
    model = ensemble if count == len(ensemble.members) else build_model(replace(mcfg, ensemble_members=count))
    model = model.to(device)
    save_ensemble_bests(model, count, datasets, weights, cfg, device, run_dir)
    return history, model


def resumed_member(path, run_dir: Path) -> int:
    """Index of the member whose last_checkpoint.pt an ensemble run resumes."""
    folder = Path(path).resolve().parent
    for i in range(len(list(run_dir.glob(MEMBER_DIR.format("*"))))):
        if folder == (run_dir / MEMBER_DIR.format(i)).resolve():
            return i
    raise UserError(f"--resume {path}: an ensemble resumes from one member's checkpoint, "
                    f"{run_dir / MEMBER_DIR.format('<i>') / 'last_checkpoint.pt'} (the member that was training)")


def member_history(run_dir: Path, i: int) -> list:
    path = run_dir / MEMBER_DIR.format(i) / "metrics.csv"
    return [dict(row, member=i) for row in pd.read_csv(path).to_dict("records")] if path.is_file() else []


def save_ensemble_bests(model, count: int, datasets, weights, cfg, device, run_dir: Path) -> None:
    """best_model.pt and best_model_macro_f1.pt of the run: every member at its own best epoch for that metric,
    averaged; evaluated on validation as one model (the evaluation files, best_metric)."""
    class_names = class_names_of(datasets["train"].manifest)
    loader = DataLoader(datasets["val"], batch_size=cfg.training.batch_size, shuffle=False, num_workers=0)
    for metric, name in (("acc", "best_model.pt"), ("macro_f1", "best_model_macro_f1.pt")):
        members = [load_checkpoint(run_dir / MEMBER_DIR.format(i) / name) for i in range(count)]
        states = [{k: v for k, v in m["model"].items() if not (i and k.startswith("backbone."))}
                  for i, m in enumerate(members)]
        model.load_state_dict(states[0] if count == 1 else
                              {f"members.{i}.{k}": v for i, state in enumerate(states) for k, v in state.items()})
        best = None
        if len(datasets["val"]):
            result = evaluate(model, loader, weights, cfg, device)
            best = {"acc": result["acc"], "macro_f1": result["macro_f1"]}
            write_evaluation(run_dir, f"best_{metric}", result, class_names)
        epochs = [m["epoch"] for m in members]
        saved = checkpoint_fields(model, None, None, None, max(epochs), best, cfg, model.cfg, datasets)
        save_checkpoint(run_dir / name, selection=f"{count} ensemble members, each at its {members[0]['selection']}"
                        f" (epochs {epochs})", **saved)
        log.info("%s: %d members at epochs %s%s", name, count, epochs,
                 f", validation {metric} {best[metric]:.4f}" if best else "")


def resume(path, model, optimizer, scheduler, scaler) -> dict:
    ckpt = load_checkpoint(path)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt["scheduler"] is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    random.setstate((3, tuple(ckpt["rng"]["python"]), None))
    log.info("resumed from %s at epoch %d", path, ckpt["epoch"] + 1)
    return {"start": ckpt["epoch"] + 1, "best": ckpt["best_metric"], "since_best": ckpt.get("since_best", 0)}


def fit(model, datasets, optimizer, scheduler, scaler, weights, cfg, mcfg, device, run_dir, state, stop,
        desc="epoch"):
    has_val = len(datasets["val"]) > 0
    history_path = run_dir / "metrics.csv"
    history = pd.read_csv(history_path).to_dict("records") if state["start"] and history_path.exists() else []
    history = [h for h in history if h["epoch"] < state["start"]]
    best, since_best = state["best"], state["since_best"]
    for epoch in range(state["start"], cfg.training.epochs):
        start = time.time()
        loaders = build_loaders(datasets, cfg, epoch)
        train_loss, completed = train_one_epoch(model, loaders["train"], optimizer, scaler, weights, cfg, device,
                                                stop, f"{desc} {epoch}")
        if not completed:  # its weights are half-updated: resume restarts it from the last checkpoint
            log.warning("stopping (%s) during epoch %d: that epoch is not counted", stop.reason, epoch)
            break
        row = {"epoch": epoch, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"]}
        result = evaluate(model, loaders["val"], weights, cfg, device) if has_val else None
        if result:
            row.update(val_loss=result["loss"], val_acc=result["acc"], val_macro_f1=result["macro_f1"])
        row["seconds"] = round(time.time() - start, 2)
        history.append(row)
        atomic_write_csv(history_path, pd.DataFrame(history))
        plot_training_curves(history, run_dir / "training_curves.png")
        improved = save_bests(model, result, best, run_dir, epoch, optimizer, scheduler, scaler, cfg, mcfg, datasets)
        since_best = 0 if improved or not has_val else since_best + 1
        step_scheduler(scheduler, result["loss"] if result else None)
        fields = checkpoint_fields(model, optimizer, scheduler, scaler, epoch, best, cfg, mcfg, datasets)
        save_checkpoint(run_dir / "last_checkpoint.pt", since_best=since_best, **fields)
        log.info("epoch %d: %s", epoch, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
        if has_val and cfg.training.patience and since_best >= cfg.training.patience:
            log.info("early stop: no validation improvement for %d epochs", cfg.training.patience)
            break
        if stop:
            log.warning("stopping (%s) after epoch %d", stop.reason, epoch)
            break
    if not has_val and history:  # nothing was selected on validation: say so in the files themselves
        last = checkpoint_fields(model, optimizer, scheduler, scaler, history[-1]["epoch"], None, cfg, mcfg, datasets)
        for name in ("best_model.pt", "best_model_macro_f1.pt"):
            save_checkpoint(run_dir / name, selection="last epoch: NO validation split, nothing selected", **last)
    return history


def step_scheduler(scheduler, val_loss) -> None:
    """Plateau watches the validation loss (no validation: it never steps); cosine steps every epoch."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if val_loss is not None:
            scheduler.step(val_loss)
    elif scheduler is not None:
        scheduler.step()


def class_names_of(manifest) -> list:
    return [manifest["idx_to_class"][str(i)] for i in range(len(manifest["idx_to_class"]))]


def save_bests(model, result, best, run_dir, epoch, optimizer, scheduler, scaler, cfg, mcfg, datasets) -> bool:
    """Save best_model.pt / best_model_macro_f1.pt from a copy of the weights, with their evaluations."""
    if result is None:
        return False
    improved = False
    class_names = class_names_of(datasets["train"].manifest)
    for metric, name in (("acc", "best_model.pt"), ("macro_f1", "best_model_macro_f1.pt")):
        if result[metric] > best[metric]:
            best[metric] = result[metric]
            improved = True
            fields = checkpoint_fields(model, optimizer, scheduler, scaler, epoch, best, cfg, mcfg, datasets)
            fields["model"] = copy.deepcopy(model.state_dict())  # a copy, not an alias of the live parameters
            save_checkpoint(run_dir / name, selection=f"best validation {metric} (epoch {epoch})", **fields)
            write_evaluation(run_dir, f"best_{metric}", result, class_names)
    return improved


if __name__ == "__main__":
    run_cli(main, get_args_parser())
