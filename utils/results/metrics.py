"""Classification scores used by training (validation), evaluation and the benches: one definition each.

macro-F1: the unweighted mean of the per-class F1 over the classes that occur in the truth or in the
predictions of the frames (or windows) scored. A class that does neither has no defined F1 (0/0) and is left
out, so a short video without grooming is not scored down for it; a class that occurs but is never predicted
correctly counts with F1 0. Labels outside `classes` (e.g. `unknown`, `no_window`) count as wrong predictions.
Segment F1: true and predicted bouts of a class are matched one-to-one, best frame IoU first, when IoU >= 0.5.
"""
import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from utils.results.timeline import to_bouts


def classification_scores(y_true, y_pred, classes: list) -> dict:
    """accuracy, macro_f1 (as defined above), per_class {class: precision, recall, f1, support} and the
    confusion matrix (rows: classes; columns: classes, then any other predicted label)."""
    y_true, y_pred = list(y_true), list(y_pred)
    if not y_true:
        raise ValueError("no labelled samples to score")
    p, r, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=0)
    predicted = set(y_pred)
    scored = [i for i, c in enumerate(classes) if support[i] or c in predicted]
    extra = sorted({p_ for p_ in predicted if p_ not in set(classes)}, key=str)
    columns = list(classes) + extra
    return {"accuracy": float(np.mean(np.asarray(y_true, dtype=object) == np.asarray(y_pred, dtype=object))),
            "macro_f1": float(np.mean(f1[scored])) if scored else 0.0,
            "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]),
                              "support": int(support[i])} for i, c in enumerate(classes)},
            "confusion": {"rows": list(classes), "columns": columns,
                          "counts": confusion_matrix(y_true, y_pred, labels=columns)[: len(classes)].tolist()}}


def segment_f1(true_labels, pred_labels, class_names: list, iou_threshold: float = 0.5) -> dict:
    """Bout-level F1 per class: a predicted bout matches an unmatched true bout of the same class when their
    frame IoU >= iou_threshold (one-to-one, best IoU first). Frames whose true label is None (not annotated)
    are ignored for both: a predicted bout in a stretch nobody labelled is not a false positive, and one that
    runs into it is cut at its edge. Returns {class: {"precision", "recall", "f1", "true_bouts", "pred_bouts"}} and "macro_f1"
    (over classes with a true or predicted bout)."""
    true_bouts = [b for b in to_bouts(np.asarray(true_labels, dtype=object), np.zeros(len(true_labels)))
                  if b.behavior != "None"]
    scored = [None if t is None else p for t, p in zip(true_labels, pred_labels)]
    pred_bouts = [b for b in to_bouts(np.asarray(scored, dtype=object), np.zeros(len(scored)))
                  if b.behavior != "None"]
    result = {}
    for name in class_names:
        t = [(b.start_frame, b.end_frame) for b in true_bouts if b.behavior == name]
        p = [(b.start_frame, b.end_frame) for b in pred_bouts if b.behavior == name]
        matched = _match_count(t, p, iou_threshold)
        precision = matched / len(p) if p else 0.0
        recall = matched / len(t) if t else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[name] = {"precision": precision, "recall": recall, "f1": f1, "true_bouts": len(t), "pred_bouts": len(p)}
    present = [c for c in class_names if result[c]["true_bouts"] or result[c]["pred_bouts"]]
    result["macro_f1"] = float(np.mean([result[c]["f1"] for c in present])) if present else 0.0
    return result


def _match_count(true_bouts: list, pred_bouts: list, iou_threshold: float) -> int:
    """One-to-one matches, best IoU first. Bouts are sorted runs, so only overlapping pairs are compared
    (two pointers), which keeps long videos linear in their bout count."""
    pairs, j0 = [], 0
    for i, a in enumerate(true_bouts):
        while j0 < len(pred_bouts) and pred_bouts[j0][1] < a[0]:
            j0 += 1
        j = j0
        while j < len(pred_bouts) and pred_bouts[j][0] <= a[1]:
            pairs.append((_iou(a, pred_bouts[j]), i, j))
            j += 1
    used_t, used_p, matched = set(), set(), 0
    for iou, i, j in sorted(pairs, reverse=True):
        if iou >= iou_threshold and i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
            matched += 1
    return matched


def _iou(a: tuple, b: tuple) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    return max(inter, 0) / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - max(inter, 0))


DECISION_GRID = np.exp(np.linspace(np.log(0.25), np.log(4.0), 17))  # multiplicative weights tried per class


def tune_decision_weights(probs: np.ndarray, labels, num_classes: int, passes: int = 2) -> tuple:
    """Per-class weights w for the decision argmax(p * w), chosen by coordinate ascent over DECISION_GRID to
    maximise macro-F1 on held-out windows (probs [N, C], labels [N]): a rare or under-predicted behaviour gets a
    weight above 1. Returns (weights [C], macro-F1 with them, macro-F1 without)."""
    labels = np.asarray(labels)
    classes = list(range(num_classes))

    def score(weights):
        return classification_scores(labels.tolist(), (probs * weights).argmax(1).tolist(), classes)["macro_f1"]
    weights = np.ones(num_classes)
    plain = best = score(weights)
    for _ in range(passes):
        for c in classes[1:]:  # weights are relative: the first class keeps 1
            for value in DECISION_GRID:
                trial = weights.copy()
                trial[c] = value
                trial_score = score(trial)
                if trial_score > best + 1e-9:
                    best, weights = trial_score, trial
    return weights, best, plain
