"""Fitting the gradient-boosted trees: once, on the training windows' features (plus augmented draws), saved as
best_model*.pt like a network's; out-of-fold predictions of the training windows for tuning decision weights."""
import logging
import time

import numpy as np
import pandas as pd
import torch

from data import WindowDataset, class_weights
from training.run import TrainingRun, checkpoint_fields, write_evaluation
from utils.checkpoint import save_checkpoint
from utils.io import atomic_write_csv
from utils.results.metrics import classification_scores
from utils.data.splits import time_blocked_folds

log = logging.getLogger("train")


def stacked_inputs(dataset: WindowDataset, augmented_views: int = 0) -> tuple:
    """(pose [N,T,Dp], motion [N,T,Dm], labels [N]) of every window: the clean windows, then `augmented_views`
    feature-space augmented draws of each (training)."""
    samples = [dataset.plain_item(i) for i in range(len(dataset))]
    for view in range(1, 1 + (augmented_views if dataset.augment is not None else 0)):
        dataset.set_epoch(view)
        samples += [dataset.item(i, with_frames=False)[0] for i in range(len(dataset))]
    return tuple(torch.stack([s[key] for s in samples]).numpy() for key in ("pose", "motion", "label"))


def evaluate_trees(trees, pose, motion, labels) -> dict:
    """What the network loop's `evaluate` returns: log loss, scores and probabilities of every window."""
    probs = trees.predict_proba(pose, motion)
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1)).mean())
    scores = classification_scores(labels.tolist(), probs.argmax(-1).tolist(), list(range(trees.cfg.num_classes)))
    return {"loss": loss, "acc": scores["accuracy"], "macro_f1": scores["macro_f1"], "scores": scores,
            "probs": probs}


def tree_class_weights(labels, run: TrainingRun):
    """{class index: loss weight} from the training counts, or None (class_weighting none)."""
    t = run.cfg.training
    if t.class_weighting == "none":
        return None
    weights = class_weights(labels, run.mcfg.num_classes, t.class_weighting, t.class_weight_clamp)
    return dict(enumerate(weights.tolist()))


def fit_trees(trees, run: TrainingRun) -> tuple:
    """Fit the trees once on the training windows (plus cache_augmented_views augmented draws), score them on
    validation, and save them as best_model*.pt with the usual metadata. Returns (history, the stacked training
    inputs (pose, motion, labels), the class weights), which the out-of-fold fits reuse."""
    start = time.time()
    views = run.cfg.training.cache_augmented_views
    pose, motion, labels = stacked = stacked_inputs(run.datasets["train"], views)
    weights = tree_class_weights(labels, run)
    clean = len(run.datasets["train"])  # the clean windows come first, then each augmented view in the same order
    trees.fit_arrays(pose, motion, labels, weights, run.cfg.training.seed, windows=np.arange(len(labels)) % clean)
    train = evaluate_trees(trees, pose[:clean], motion[:clean], labels[:clean])
    row = {"epoch": 0, "train_loss": train["loss"], "train_acc": train["acc"]}
    result = evaluate_trees(trees, *stacked_inputs(run.datasets["val"])) if run.has_validation else None
    if result:
        row.update(val_loss=result["loss"], val_acc=result["acc"], val_macro_f1=result["macro_f1"])
    row["seconds"] = round(time.time() - start, 2)
    members = run.mcfg.ensemble_members
    log.info("gbt: %d training windows (%d augmented views each)%s fitted in %.1f s; %s", clean, views,
             f", {members} tree models on bootstraps," if members > 1 else "", row["seconds"],
             ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
    atomic_write_csv(run.run_dir / "metrics.csv", pd.DataFrame([row]))
    saved = checkpoint_fields(run, trees.state_dict(), 0, {"acc": row.get("val_acc", -1.0),
                                                            "macro_f1": row.get("val_macro_f1", -1.0)})
    selection = "gradient-boosted trees, fitted once" + ("" if result else "; NO validation split")
    for metric, name in (("acc", "best_model.pt"), ("macro_f1", "best_model_macro_f1.pt")):
        save_checkpoint(run.run_dir / name, selection=selection, **saved)
        if result:
            write_evaluation(run.run_dir, f"best_{metric}", result, run.class_names)
    return [row], stacked, weights


def out_of_fold_probs(build_trees, run: TrainingRun, stacked: tuple, class_weight):
    """(probabilities, labels) of the training windows, each predicted by trees fitted without its block of time
    (utils.data.splits.time_blocked_folds) and without the augmented views of the held-out windows; None when
    decision_folds < 2 or nothing is tuned. Decision weights tuned on validation alone follow its few bouts;
    these add every training bout. `build_trees()` gives an unfitted tree model."""
    t = run.cfg.training
    # without validation nothing is tuned (the drift step returns early): no out-of-fold fits either
    folds = t.decision_folds if t.tune_decision_weights and run.has_validation else 0
    if folds < 2:
        return None
    pose, motion, labels = stacked
    train = run.datasets["train"]
    clean = len(train)
    views = len(labels) // clean  # the clean windows, then each augmented view, in the same order
    probs, held_labels, start = [], [], time.time()
    for fit, held in time_blocked_folds(train.entries, folds):
        rows = np.concatenate([np.asarray(fit) + v * clean for v in range(views)])
        if len(set(labels[rows].tolist())) < run.mcfg.num_classes:
            log.info("decision weights: a fold is left out, its other blocks lack a class")
            continue
        trees = build_trees().fit_arrays(pose[rows], motion[rows], labels[rows], class_weight, t.seed,
                                         windows=rows % clean)
        probs.append(trees.predict_proba(pose[held], motion[held]))
        held_labels += labels[held].tolist()
    if not probs:
        return None
    log.info("decision weights: out-of-fold predictions of %d training windows in %d blocks of time (%.1f s)",
             len(held_labels), len(probs), time.time() - start)
    return np.concatenate(probs), held_labels
