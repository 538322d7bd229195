"""The neural network training loop: loaders, optimiser, loss (cross-entropy or focal, mixup), one epoch,
evaluation, best-checkpoint selection on validation, early stopping and exact resume.

    history = fit_network(net, run, loss_weights)     # one network, in run.run_dir
"""
import copy
import logging
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from data import WindowDataset, balanced_sampler, build_feature_cache
from model import quantile_knots
from training.run import TrainingRun, checkpoint_fields, write_evaluation
from utils import distributed
from utils.checkpoint import load_checkpoint, save_checkpoint
from utils.errors import UserError, first_line
from utils.io import atomic_write_csv
from utils.logging_utils import progress
from utils.results.metrics import classification_scores
from utils.results.plots import TrainingCurves

log = logging.getLogger("train")


def build_loaders(datasets: dict, cfg, epoch: int) -> dict:
    """Loaders for one epoch. The training order depends on (seed, epoch) only, so resume repeats it, and under
    torchrun every process draws the same one and takes its share (utils.distributed.shard)."""
    train = datasets["train"]
    train.set_epoch(epoch)
    seed = cfg.training.seed * 1000 + epoch
    if cfg.training.train_sampler == "weighted":
        order = list(balanced_sampler(train.labels, seed))
    else:
        order = shuffled_order(len(train), seed)
    workers = 0 if train.in_memory else cfg.training.num_workers
    kw = dict(batch_size=cfg.training.batch_size, num_workers=workers, persistent_workers=False)
    loaders = {"train": DataLoader(train, sampler=distributed.shard(order), drop_last=False,
                                   **{**kw, "batch_size": distributed.local_batch(cfg.training.batch_size)})}
    for split in ("val", "test"):
        if len(datasets[split]):
            loaders[split] = DataLoader(datasets[split], shuffle=False, **kw)
    return loaders


def shuffled_order(count: int, seed: int) -> list:
    """The order a DataLoader with shuffle=True and a generator seeded `seed` gives (it draws its workers' base seed
    from the generator before the permutation), drawn here so every torchrun process can take its share of it and
    runs made before torchrun was supported repeat exactly."""
    generator = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    return torch.randperm(count, generator=generator).tolist()


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
    """AdamW over parameter groups: the head at lr, a trained backbone at backbone_lr, and weights taken from
    init_from (model.initialised: their names) at lr * init_lr_scale (left out when 0: frozen)."""
    backbone = [p for p in (model.backbone.parameters() if model.backbone is not None else []) if p.requires_grad]
    ids = {id(p) for p in backbone}
    scale = cfg.training.init_lr_scale if cfg.training.init_from else 1.0
    taken = set() if scale == 1.0 else {id(p) for name, p in model.named_parameters()
                                        if name in getattr(model, "initialised", ())}
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in ids | taken]
    groups = [{"params": head, "lr": cfg.training.lr}] + ([{"params": backbone, "lr": cfg.training.backbone_lr}] if backbone else [])
    if not head and not backbone:
        raise UserError(f"init_lr_scale {scale:g} freezes every weight taken from init_from {cfg.training.init_from}, "
                        f"and the model has no other: nothing would learn; use a value above 0")
    if taken and scale > 0:
        groups.append({"params": [p for p in model.parameters() if id(p) in taken], "lr": cfg.training.lr * scale})
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
    return {"visual": batch.get("visual", batch.get("frames")) if model.sees_frames else None,
            "pose": batch["pose"] if model.uses_pose else None, "pose_present": batch["pose_present"],
            "motion": batch["motion"] if model.uses_motion else None}


def forward_batch(model, batch, inputs: dict):
    """Logits from frames, or from cached backbone features when the batch carries them."""
    if "visual" in batch:
        return model.forward_head(model.forward_from_features(**inputs))
    return model(inputs["visual"], inputs["pose"], inputs["pose_present"], inputs["motion"])


def train_one_epoch(model, step, loader, optimizer, scaler, weights, cfg, device, stop, desc) -> tuple:
    """(mean loss, completed): completed is False when a stop request cut the epoch short. `step`: the model as
    utils.distributed.synced gives it (gradients averaged over torchrun's processes)."""
    model.train()
    total, count, batches = 0.0, 0, 0
    amp = device.startswith("cuda") and cfg.training.amp
    with progress(total=len(loader), desc=desc) as bar:
        for batch in loader:
            if distributed.any_process(stop):
                break
            batch = to_device(batch, device)
            target = batch["label"]
            inputs = model_inputs(model, batch)
            if cfg.training.mixup_alpha > 0:
                inputs, target = mixup(inputs, target, cfg, model.cfg.num_classes)
            with torch.autocast("cuda", enabled=amp):
                loss = loss_fn(step(forward_batch, batch, inputs), target, weights, cfg)
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
    return distributed.average(total / max(count, 1)), batches == len(loader)


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
    """Loss and the scores of utils/results/metrics.py (accuracy, macro-F1, per class, confusion) over a split;
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


def evaluate_dataset(model, dataset, weights, run: TrainingRun) -> dict:
    """`evaluate` over a whole split in its order, without augmentation."""
    loader = DataLoader(dataset, batch_size=run.cfg.training.batch_size, shuffle=False, num_workers=0)
    return evaluate(model, loader, weights, run.cfg, run.device)


# ------------------------------------------------------------------------------------------------ start-up
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
    model.initialised = set(ckpt["model"])  # build_optimizer: their learning rate is lr * init_lr_scale
    log.info("weights initialised from %s (%s)", path, ckpt.get("selection"))


def uses_feature_cache(cfg, model) -> bool:
    return bool(cfg.training.feature_cache and model.sees_frames and not cfg.model.train_backbone and not model.is_video)


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


# ------------------------------------------------------------------------------------------------ the loop
def fit_network(model, run: TrainingRun, weights, desc: str = "epoch", steps=None) -> list:
    """Train one network in run.run_dir (from run.resume's last checkpoint when given); the epochs' history.
    `steps(model, run, opt)`: what one epoch and one validation are (WindowSteps: the split's windows)."""
    optimizer, scheduler = build_optimizer(model, run.cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=run.device.startswith("cuda") and run.cfg.training.amp)
    state = {"start": 0, "best": {"acc": -1.0, "macro_f1": -1.0}, "since_best": 0}
    if run.resume:
        state = resume(run.resume, model, optimizer, scheduler, scaler)
    opt = Optimisation(optimizer, scheduler, scaler, weights)
    return fit(model, run, opt, state, desc, (steps or WindowSteps)(model, run, opt))


class WindowSteps:
    """One training epoch and one validation of a window classifier, over loaders of the run's window datasets."""

    def __init__(self, model, run: TrainingRun, opt: "Optimisation"):
        self.model, self.run, self.opt, self.loaders = model, run, opt, None
        self.step = distributed.synced(model, run.device)

    def train_epoch(self, epoch: int, desc: str) -> tuple:
        """(mean loss, completed)."""
        run = self.run
        self.loaders = build_loaders(run.datasets, run.cfg, epoch)
        return train_one_epoch(self.model, self.step, self.loaders["train"], self.opt.optimizer, self.opt.scaler,
                               self.opt.weights, run.cfg, run.device, run.stop, desc)

    def validate(self) -> dict:
        return evaluate(self.model, self.loaders["val"], self.opt.weights, self.run.cfg, self.run.device)


class Optimisation:
    """What one network's epochs update and checkpoint: optimiser, scheduler, AMP scaler, and the loss weights."""

    def __init__(self, optimizer, scheduler, scaler, weights):
        self.optimizer, self.scheduler, self.scaler, self.weights = optimizer, scheduler, scaler, weights

    def fields(self, run: TrainingRun, model, epoch: int, best) -> dict:
        return checkpoint_fields(run, model.state_dict(), epoch, best, optimizer=self.optimizer,
                                 scheduler=self.scheduler, scaler=self.scaler)


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


def fit(model, run: TrainingRun, opt: Optimisation, state: dict, desc: str, steps) -> list:
    run_dir = run.run_dir
    history_path = run_dir / "metrics.csv"
    history = pd.read_csv(history_path).to_dict("records") if state["start"] and history_path.exists() else []
    history = [h for h in history if h["epoch"] < state["start"]]
    best, since_best = state["best"], state["since_best"]
    curves = TrainingCurves(run_dir / "training_curves.png")
    try:
        history = fit_epochs(model, run, opt, state, desc, steps, history, best, since_best, curves)
    finally:
        curves.finish()
    if not run.has_validation and history:  # nothing was selected on validation: say so in the files themselves
        last = opt.fields(run, model, history[-1]["epoch"], None)
        for name in ("best_model.pt", "best_model_macro_f1.pt"):
            save_checkpoint(run_dir / name, selection="last epoch: NO validation split, nothing selected", **last)
    return history


def fit_epochs(model, run: TrainingRun, opt: Optimisation, state: dict, desc: str, steps, history: list, best: dict,
               since_best: int, curves: TrainingCurves) -> list:
    """The epochs from state["start"]: train, validate, record, save; until the last epoch, early stopping or STOP."""
    cfg, run_dir = run.cfg, run.run_dir
    for epoch in range(state["start"], cfg.training.epochs):
        start = time.time()
        train_loss, completed = steps.train_epoch(epoch, f"{desc} {epoch}")
        if not completed:  # its weights are half-updated: resume restarts it from the last checkpoint
            log.warning("stopping (%s) during epoch %d: that epoch is not counted", run.stop.reason or "another process",
                        epoch)
            break
        row = {"epoch": epoch, "train_loss": train_loss, "lr": opt.optimizer.param_groups[0]["lr"]}
        result = steps.validate() if run.has_validation else None
        if result:
            row.update(val_loss=result["loss"], val_acc=result["acc"], val_macro_f1=result["macro_f1"])
        row["seconds"] = round(time.time() - start, 2)
        history.append(row)
        atomic_write_csv(run_dir / "metrics.csv", pd.DataFrame(history))
        curves.update(history)
        improved = save_bests(model, run, opt, result, best, epoch)
        since_best = 0 if improved or not run.has_validation else since_best + 1
        step_scheduler(opt.scheduler, result["loss"] if result else None)
        save_checkpoint(run_dir / "last_checkpoint.pt", since_best=since_best, **opt.fields(run, model, epoch, best))
        log.info("epoch %d: %s", epoch, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
        if run.has_validation and cfg.training.patience and since_best >= cfg.training.patience:
            log.info("early stop: no validation improvement for %d epochs", cfg.training.patience)
            break
        if distributed.any_process(run.stop):
            log.warning("stopping (%s) after epoch %d", run.stop.reason or "another process", epoch)
            break
    return history


def step_scheduler(scheduler, val_loss) -> None:
    """Plateau watches the validation loss (no validation: it never steps); cosine steps every epoch."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if val_loss is not None:
            scheduler.step(val_loss)
    elif scheduler is not None:
        scheduler.step()


def save_bests(model, run: TrainingRun, opt: Optimisation, result, best: dict, epoch: int) -> bool:
    """Save best_model.pt / best_model_macro_f1.pt from a copy of the weights, with their evaluations."""
    if result is None:
        return False
    improved = False
    for metric, name in (("acc", "best_model.pt"), ("macro_f1", "best_model_macro_f1.pt")):
        if result[metric] > best[metric]:
            best[metric] = result[metric]
            improved = True
            fields = opt.fields(run, model, epoch, best)
            fields["model"] = copy.deepcopy(model.state_dict())  # a copy, not an alias of the live parameters
            save_checkpoint(run.run_dir / name, selection=f"best validation {metric} (epoch {epoch})", **fields)
            write_evaluation(run.run_dir, f"best_{metric}", result, run.class_names)
    return improved


def history_of(path: Path) -> list:
    return pd.read_csv(path).to_dict("records") if path.is_file() else []
