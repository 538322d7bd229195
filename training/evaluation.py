"""After fitting, for every kind of classifier: drift references and decision weights stored in the best
checkpoints, the selected model scored once on the test split (per window and per frame), and the start-up
previews of what the model sees."""
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from training.loop import model_inputs, to_device
from training.run import TrainingRun, dataset_of, write_evaluation
from utils.checkpoint import load_checkpoint, save_checkpoint
from utils.results.drift import DriftReference
from utils.io import atomic_write_json
from utils.readers.labels import label_file_of, load_frame_labels
from utils.results.metrics import classification_scores, tune_decision_weights
from utils.results.plots import save_crops_preview, save_pose_preview
from utils.data.windows import frame_weights

log = logging.getLogger("train")
DRIFT_TRAIN_WINDOWS = 2000  # an even sample of the training windows is enough for a mean and a spread


def frame_scores(dataset, probs, class_names: list, frame_probs: dict = None) -> dict:
    """Per-frame scores of a split: each frame's probabilities are the centre-weighted mean over the split's
    windows that cover it (as inference does), or a dense model's own (frame_probs: {source video: [N, C]}); its
    truth is the video's label file (long videos) or the clip's class."""
    meta, sums, fps = dataset.manifest["meta"], {}, {}
    for entry, p in zip(dataset.entries, probs):
        video = sums.setdefault(entry["source_video"], {})
        fps[entry["source_video"]] = entry["fps"]
        weights = frame_weights(entry["end_frame"] - entry["start_frame"] + 1)
        own = frame_probs[entry["source_video"]] if frame_probs else None
        for frame, weight in zip(range(entry["start_frame"], entry["end_frame"] + 1), weights):
            total = video.setdefault(frame, [np.zeros(len(p)), entry["class_name"]])
            total[0] = own[frame] if own is not None else total[0] + weight * p
    truth, predicted = [], []
    for rel, frames in sums.items():
        recording, _, animal = rel.partition("#")  # one animal of a multi-animal pose file: <file>#<animal>
        source = Path(meta["dataset_root"]) / recording
        label_file = label_file_of(source)
        labels = load_frame_labels(label_file, None, fps[rel], animal or meta.get("boris_subject"),
                                   media=source) if label_file else None
        for frame, (total, clip_class) in frames.items():
            true = labels.label_at(frame, meta.get("background_label")) if labels else clip_class
            if true in class_names:
                truth.append(class_names.index(true))
                predicted.append(int(total.argmax()))
    return classification_scores(truth, predicted, list(range(len(class_names))))


def evaluate_test_split(classifier, run: TrainingRun) -> dict:
    """The selected model, once, on the test split: per-window and per-frame scores, confusion and per-class
    tables (test_metrics.json, *_test.csv). Never used for selection."""
    test, best = run.datasets["test"], run.run_dir / "best_model_macro_f1.pt"
    if not len(test) or not best.is_file():
        log.info("no test split (or no best model): nothing evaluated on test")
        return {}
    classifier.load_state_dict(load_checkpoint(best)["model"])
    result = classifier.evaluate(test, run)
    class_names = run.class_names
    write_evaluation(run.run_dir, "test", result, class_names)
    frames = frame_scores(test, result["probs"], class_names, result.get("frame_probs"))
    summary = {"model": best.name, "windows": len(test), "window_accuracy": result["acc"],
               "window_macro_f1": result["macro_f1"], "frames": int(np.sum(frames["confusion"]["counts"])),
               "frame_accuracy": frames["accuracy"], "frame_macro_f1": frames["macro_f1"],
               "frame_per_class_f1": {class_names[i]: s["f1"] for i, s in frames["per_class"].items()}}
    atomic_write_json(run.run_dir / "test_metrics.json", summary)
    log.info("TEST split (%d windows, %d frames), %s: window macro-F1 %.3f, frame macro-F1 %.3f, per class %s",
             len(test), summary["frames"], best.name, result["macro_f1"], frames["macro_f1"],
             {c: round(f, 3) for c, f in summary["frame_per_class_f1"].items()})
    return summary


# ------------------------------------------------------------------------------ drift reference
@torch.no_grad()
def window_outputs(classifier, dataset, indices, device, batch_size: int) -> tuple:
    """(probabilities [N,C], embeddings [N,D]) of the given windows without augmentation, as inference
    computes them (Classifier.window_outputs)."""
    probs, embeddings = [], []
    for start in range(0, len(indices), batch_size):
        batch = to_device(default_collate([dataset.plain_item(int(i)) for i in indices[start:start + batch_size]]),
                          device)
        inputs = model_inputs(classifier, batch)
        if "frames" in batch and classifier.sees_frames:  # not cached: encode as inference does
            inputs["visual"] = classifier.encode_frames(inputs["visual"])
        p, e = classifier.window_outputs(**inputs)
        probs.append(p.float().cpu().numpy())
        embeddings.append(e.float().cpu().numpy())
    return np.concatenate(probs), np.concatenate(embeddings)


def fit_drift_reference(classifier, run: TrainingRun) -> tuple:
    """Standardised on an even sample of the training windows, calibrated on the validation windows."""
    train, val, batch = run.datasets["train"], run.datasets["val"], run.cfg.training.batch_size
    sample = np.unique(np.linspace(0, len(train) - 1, min(len(train), DRIFT_TRAIN_WINDOWS)).round().astype(int))
    _, train_embeddings = window_outputs(classifier, train, sample, run.device, batch)
    val_probs, val_embeddings = window_outputs(classifier, val, np.arange(len(val)), run.device, batch)
    videos = [e["source_video"] for e in val.entries]
    reference = DriftReference.fit(train_embeddings, np.asarray(train.labels)[sample], val_embeddings, val_probs,
                                   videos)
    return reference, val_probs


def add_drift_references(classifier, run: TrainingRun, more_held_out: tuple = None) -> None:
    """Store a drift reference (utils.results.drift) in each best checkpoint, fitted with that checkpoint's weights, and
    with tune_decision_weights the per-class decision weights tuned on the same validation windows, plus
    more_held_out = (probabilities, labels) of other windows the model did not learn from (out-of-fold)."""
    if not run.has_validation:
        log.warning("no validation split: the models get no drift reference, so inference cannot flag videos "
                    "unlike the training ones")
        return
    start = time.time()
    classifier.to_inference(run.device)
    for name in ("best_model.pt", "best_model_macro_f1.pt"):
        path = run.run_dir / name
        if not path.is_file():
            continue
        ckpt = load_checkpoint(path)
        classifier.load_state_dict(ckpt["model"])
        reference, val_probs = fit_drift_reference(classifier, run)
        ckpt["drift"] = reference.recorded()
        if run.cfg.training.tune_decision_weights:
            probs, labels = val_probs, list(run.datasets["val"].labels)
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


# ------------------------------------------------------------------------------ previews
def one_per_class(dataset, limit: int = 8) -> list:
    """Indices of the first window of each class (then more), at most `limit`."""
    seen, picks = set(), []
    for i, label in enumerate(dataset.labels):
        if label not in seen:
            seen.add(label)
            picks.append(i)
    return picks[:limit]


def write_startup_previews(run: TrainingRun) -> None:
    """What the model will see: augmented training crops, and keypoints before and after augmentation."""
    train, class_names, run_dir = run.datasets["train"], run.class_names, run.run_dir
    if not train.manifest["meta"].get("has_frames", True):
        log.info("no crop or pose previews: the windows come from pose files without video")
        return
    picks = one_per_class(train)
    save_crops_preview([train.item(i, with_frames=True)[0] for i in picks], class_names,
                       run_dir / "startup_crops_preview.png")
    if train.num_keypoints == 0:
        return
    plain_train = dataset_of(run.cfg, "train")
    for name, ds, idx in (("startup_pose_preview_train.png", plain_train, picks),
                          ("startup_pose_preview_val.png", run.datasets["val"], one_per_class(run.datasets["val"])),
                          ("startup_pose_aug_preview_train.png", train, picks)):
        if len(ds):
            items = [ds.item(i, with_frames=True) for i in idx]
            save_pose_preview([s for s, _ in items], [k for _, k in items], class_names, run_dir / name)
