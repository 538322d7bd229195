"""Drift: how unlike the training videos a new video looks, so that good validation scores are not trusted
blindly on a video from another camera, arena, strain or frame rate.

Each window has an embedding: the clip representation the classifier reads (neural models) or the window
statistics of its pose and box-motion features (gradient-boosted trees). At the end of training the reference
is fitted and calibrated, and stored in the checkpoint (`drift`, plain numbers):
    means              per class and dimension, over the training windows of that class
    scale              per dimension, the spread of the training windows around their class mean (floored at a
                       tenth of the median, so a dimension that never moved in training cannot blow up the
                       distance)
    distance_limit     the 99th percentile of the validation windows' distance: the RMS of the standardised
                       embedding's difference from the nearest class mean. Class means, not one overall mean: a
                       window between behaviours (slow walking from a wrongly set frame rate, a posture no
                       training animal had) is far from every class yet inside the cloud of all training windows.
                       Validation videos are unseen videos of the same lab, so about 1% of a video like them
                       lies beyond it
    confidence_limit   the 5th percentile of the validation windows' top class probability
    warn_unfamiliar    the share of windows beyond distance_limit above which a video is flagged: twice the
                       largest share among the validation videos, and at least MIN_WARN_UNFAMILIAR (0.25)
    warn_low_confidence  the same for the share of windows below confidence_limit (at least MIN_WARN_LOW_CONFIDENCE,
                       0.25)
Per video (`DriftReference.score`): drift_score = the share of unfamiliar windows, low_confidence_share, the median
distance relative to the validation median, frame_rate_ratio (the video's frame rate over the training data's),
and drift_warning when either share passes its limit or the frame rate differs by more than 5%. The frame rate is
checked directly because a model need not be unsure of a video whose every speed is off by the same factor: slow
walking looks like some training window (measured: a video labelled 10 fps instead of 30 kept every window within
the distance limit, and a confident model kept its confidence).
"""
from dataclasses import asdict, dataclass

import numpy as np

from utils.data.windows import frame_rate_differs

DISTANCE_QUANTILE = 0.99
CONFIDENCE_QUANTILE = 0.05
# a quarter of the windows: at 0.10 the warning fired on 3 of the 4 held-out videos of bench_accuracy.py (other
# animals, floors and light of the same generator), two of them classified at per-frame macro-F1 0.93-0.95
MIN_WARN_UNFAMILIAR = 0.25
MIN_WARN_LOW_CONFIDENCE = 0.25  # five times the validation rate (5%)
SCALE_FLOOR = 0.1


@dataclass
class DriftReference:
    means: list
    scale: list
    distance_limit: float
    median_distance: float
    confidence_limit: float
    warn_unfamiliar: float
    warn_low_confidence: float
    validation_windows: int
    training_windows: int

    @classmethod
    def fit(cls, train_embeddings: np.ndarray, train_labels, val_embeddings: np.ndarray, val_probs: np.ndarray,
            val_groups) -> "DriftReference":
        """Class means and spread from the training windows, limits from the validation windows; `val_groups`
        names each validation window's video."""
        train, labels = np.asarray(train_embeddings, np.float64), np.asarray(train_labels)
        classes = np.unique(labels)
        means = np.stack([train[labels == c].mean(0) for c in classes])
        std = (train - means[np.searchsorted(classes, labels)]).std(0)
        scale = np.maximum(std, SCALE_FLOOR * float(np.median(std)) + 1e-8)
        ref = cls(means.tolist(), scale.tolist(), 0.0, 0.0, 0.0, 0.0, 0.0, len(val_probs), len(train))
        distances, confidence = ref.distances(val_embeddings), np.asarray(val_probs).max(1)
        ref.distance_limit = float(np.quantile(distances, DISTANCE_QUANTILE))
        ref.median_distance = float(np.median(distances))
        ref.confidence_limit = float(np.quantile(confidence, CONFIDENCE_QUANTILE))
        groups = np.asarray(val_groups)
        shares = [ref.shares(distances[groups == g], confidence[groups == g]) for g in np.unique(groups)]
        ref.warn_unfamiliar = max(MIN_WARN_UNFAMILIAR, 2 * max(s[0] for s in shares))
        ref.warn_low_confidence = max(MIN_WARN_LOW_CONFIDENCE, 2 * max(s[1] for s in shares))
        return ref

    def distances(self, embeddings: np.ndarray) -> np.ndarray:
        """Per window, the RMS of the standardised difference from the nearest training class mean."""
        x = np.asarray(embeddings, np.float64)[:, None] / np.asarray(self.scale)
        z = x - np.asarray(self.means) / np.asarray(self.scale)  # (N, C, D)
        return np.sqrt(np.mean(z * z, axis=2).min(1))

    def shares(self, distances: np.ndarray, confidence: np.ndarray) -> tuple:
        """(share of windows beyond distance_limit, share below confidence_limit)."""
        if not len(distances):
            return 0.0, 0.0
        return float(np.mean(distances > self.distance_limit)), float(np.mean(confidence < self.confidence_limit))

    def score(self, distances: np.ndarray, confidence: np.ndarray, fps: float = None,
              trained_fps: float = None) -> dict:
        """A video's drift from its windows' distances and top probabilities, and its frame rate against the
        training data's (module docstring)."""
        unfamiliar, low = self.shares(np.asarray(distances), np.asarray(confidence))
        relative = float(np.median(distances) / self.median_distance) if len(distances) and self.median_distance else 0.0
        other_rate = bool(fps and frame_rate_differs(fps, trained_fps))
        warn = unfamiliar > self.warn_unfamiliar or low > self.warn_low_confidence or other_rate
        return {"drift_score": round(unfamiliar, 4), "low_confidence_share": round(low, 4),
                "distance_limit": round(self.distance_limit, 4),
                "relative_median_distance": round(relative, 3),
                "frame_rate_ratio": round(fps / trained_fps, 3) if fps and trained_fps else None,
                "drift_warning": bool(warn),
                "drift_limits": f"unfamiliar > {self.warn_unfamiliar:.3f} or low confidence > "
                                f"{self.warn_low_confidence:.3f} (calibrated on {self.validation_windows} "
                                f"validation windows)"}

    def recorded(self) -> dict:
        return asdict(self)

    @classmethod
    def from_checkpoint(cls, ckpt: dict):
        """The checkpoint's reference, or None (trained before drift references, or without validation)."""
        recorded = ckpt.get("drift")
        return cls(**recorded) if recorded else None


def frame_unfamiliarity(windows: list, window_frames: int, num_frames: int, distance_limit: float) -> np.ndarray:
    """Per frame, the largest distance from the training data among the windows covering it, in units of the drift
    limit (above 1: beyond what 99% of validation windows reach); NaN where no window covered the frame.
    windows: the predictor's (start, probabilities, has_pose, distance, top probability) per window."""
    out = np.full(num_frames, np.nan)
    for start, _, _, distance, _ in windows:
        span = out[start:start + window_frames]
        np.fmax(span, distance / distance_limit, out=span)
    return out


def warning_text(video, score: dict) -> str:
    ratio = score.get("frame_rate_ratio")
    rate = (f"; its frame rate is {ratio:.2f} times the training videos' (a wrong rate in the file scales every "
            f"speed)" if ratio and frame_rate_differs(ratio, 1.0) else "")
    return (f"{video} looks unlike the training videos: {100 * score['drift_score']:.0f}% of its windows are "
            f"farther from the training data than 99% of validation windows, {100 * score['low_confidence_share']:.0f}% "
            f"are low-confidence ({score['drift_limits']}){rate}. Its counts may be wrong: check a few bouts in the "
            f"Review tab, and label some of its clips for training if they are")


def feature_shift(source: np.ndarray, source_labels, target: np.ndarray, target_labels) -> np.ndarray:
    """Per feature column, how far a behaviour's frames moved between two rigs relative to how far the behaviours lie
    apart: the mean over the behaviours both rigs show of |median on target - median on source|, over the mean
    distance between the behaviours' medians on the source, or over the spread within a behaviour (the median
    interquartile range) where that is larger: a feature that does not separate the behaviours is judged by how much
    it moved against its own noise. Above about 0.5, a threshold learned on the source no longer separates the
    behaviours on the target. [N, D] per-frame features and their labels."""
    source_labels, target_labels = np.asarray(source_labels), np.asarray(target_labels)
    shared = [c for c in np.unique(source_labels) if (target_labels == c).any()]
    on_source = np.stack([np.median(source[source_labels == c], 0) for c in shared])
    on_target = np.stack([np.median(target[target_labels == c], 0) for c in shared])
    shift = np.abs(on_target - on_source).mean(0)
    i, j = np.triu_indices(len(shared), 1)
    gap = np.abs(on_source[i] - on_source[j]).mean(0) if len(i) else np.zeros(source.shape[1])
    spread = np.median([np.subtract(*np.percentile(source[source_labels == c], [75, 25], 0)) for c in shared], 0)
    return shift / np.maximum(np.maximum(gap, spread), 1e-6)
