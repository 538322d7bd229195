"""One contract for every kind of classifier, and the registry that creates them by name (`model.classifier`).

    classifier = build_classifier(ModelConfig(...))            # the kind named by cfg.classifier
    history = classifier.fit(run)                               # training.TrainingRun: data, settings, run folder
    classifier = load_classifier(checkpoint, device)            # for prediction, from the checkpoint alone
    probs, embeddings = classifier.window_outputs(visual, pose, pose_present, motion)

The training engine (training/) and the predictor use only what `Classifier` declares; a new kind of model
registers itself here with its own build, fit, evaluation, state and the settings that do not apply to it.

Kinds today: `neural` (one network, model.BehaviorSequenceClassifier, or with ensemble_members > 1 a deep
ensemble, model.ClassifierEnsemble), `gbt` (gradient-boosted trees on window statistics of the pose and
box-motion features, stored with skops, never pickled), and the dense models `mstcn` and `dense_transformer`
(model.DENSE_MODELS: a label for every frame of chunks of pose and box motion; training/dense.py).
"""
from abc import ABC, abstractmethod

import numpy as np
import torch

from data import class_weights
from model import DENSE_MODELS, DenseSequenceLabeller, ModelConfig, build_model
from training.dense import (DenseSteps, dense_recordings, evaluate_recordings, frame_class_counts,
                            init_dense_weights)
from training.ensemble import fit_members
from training.loop import (cache_features, evaluate_dataset, fit_network, init_weights, input_statistics,
                           uses_feature_cache)
from training.run import TrainingRun
from training.trees import evaluate_trees, fit_trees, out_of_fold_probs, stacked_inputs
from utils.config import inapplicable_settings, settings_that_apply
from utils.errors import UserError
from utils.registry import Registry
from utils.schema import AugmentConfig

CLASSIFIERS = Registry("classifier")


class Classifier(ABC):
    """What training and prediction need of a model, whatever its kind.

    cfg: the ModelConfig it was built from (stored in checkpoints as model_args).
    sees_frames: frames (or cached frame features) are an input; is_video: a video backbone encodes whole windows;
    resumable: fit continues from a last_checkpoint.pt (epochs); a kind that trains in one go is not.
    dense: per-frame outputs over chunks of cfg.dense_chunk frames; the others label a window by its centre frame.
    """
    cfg: ModelConfig
    sees_frames: bool = False
    is_video: bool = False
    resumable: bool = False
    dense: bool = False  # labels every frame (frame_outputs); inference runs it on chunks of cfg.dense_chunk frames

    @property
    def uses_pose(self) -> bool:
        return bool(self.cfg.use_pose and self.cfg.pose_dim)

    @property
    def uses_motion(self) -> bool:
        return bool(self.cfg.motion_input_dim)

    @abstractmethod
    def fit(self, run: TrainingRun) -> list:
        """Train on run.datasets, writing best_model.pt / best_model_macro_f1.pt (and what else the kind keeps) in
        run.run_dir; the per-epoch history rows (empty when stopped before anything was saved)."""

    @abstractmethod
    def evaluate(self, dataset, run: TrainingRun) -> dict:
        """loss, acc, macro_f1, scores (utils.results.metrics) and probs [N, C] of every window of a split, in
        order."""

    @abstractmethod
    def window_outputs(self, visual=None, pose=None, pose_present=None, motion=None) -> tuple:
        """(class probabilities (B, C), embeddings (B, D)) of a batch of windows; the embeddings feed
        utils.results.drift."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Tensors and plain types only: checkpoints load with weights_only=True."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        ...

    def frame_outputs(self, visual=None, pose=None, pose_present=None, motion=None) -> tuple:
        """(per-frame class probabilities (B, T, C), or None for a kind that labels whole windows, whose frames then
        share the window's; window probabilities (B, C); embeddings (B, D)): what inference accumulates."""
        return (None,) + tuple(self.window_outputs(visual, pose, pose_present, motion))

    def outputs_with_embeddings(self, visual=None, pose=None, pose_present=None, motion=None) -> tuple:
        """frame_outputs and per-frame embeddings (B, T, D) (embed_behavior.py), or None for a kind whose frames
        share their window's embedding."""
        return (*self.frame_outputs(visual, pose, pose_present, motion), None)

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"classifier {self.cfg.classifier} sees no frames")

    def to_inference(self, device: str) -> "Classifier":
        """Ready to predict on `device` (evaluation mode); returns itself."""
        return self

    def held_out_predictions(self, run: TrainingRun):
        """(probabilities, labels) of training windows predicted by models that did not learn them, for tuning
        decision weights beside the validation windows; None when the kind has none."""
        return None

    def ignored_settings(self, cfg) -> list:
        """(section.setting, why) for each setting given a non-default value that this kind cannot apply, from
        what the schema declares of each setting (utils.config: applies, requires) and this run's context."""
        return inapplicable_settings(cfg, ("augmentation", "model", "training"), self.applicability(cfg))

    @abstractmethod
    def applicability(self, cfg) -> dict:
        """{dimension: (this run's values, how to call them)} for utils.config.inapplicable_settings: the
        classifier, the backbone, the temporal head and the inputs an augmentation can reach."""


def pose_inputs(cfg) -> set:
    """The augmentable inputs besides frames: crop-pixel keypoints, or body pose and box motion (frame pixels)."""
    inputs = set()
    if cfg.model.use_pose:
        inputs.add("crop_keypoints" if cfg.training.pose_features == "crop" else "body_features")
    if cfg.model.use_box_motion:
        inputs.add("body_features")
    return inputs


# ------------------------------------------------------------------------------------------------ networks
@CLASSIFIERS.register("neural")
def _neural(cfg: ModelConfig) -> "NetworkClassifier":
    return EnsembleClassifier(cfg) if cfg.ensemble_members > 1 else NetworkClassifier(cfg)


class TorchClassifier(Classifier):
    """A kind whose model is one torch nn.Module, `net`, trained over epochs by training/loop.py (resumable)."""
    resumable = True
    net: torch.nn.Module

    @property
    def uses_pose(self) -> bool:
        return self.net.uses_pose

    @property
    def uses_motion(self) -> bool:
        return self.net.uses_motion

    def state_dict(self) -> dict:
        return self.net.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state)

    def to_inference(self, device: str) -> "TorchClassifier":
        self.net = self.net.to(device).eval()
        return self


class NetworkClassifier(TorchClassifier):
    """One torch network (model.BehaviorSequenceClassifier): frames and/or pose and box motion, trained by the
    loop in training/loop.py; `net` is the nn.Module."""

    def __init__(self, cfg: ModelConfig):
        self.cfg, self.net = cfg, build_model(cfg)
        self.sees_frames, self.is_video = self.net.sees_frames, self.net.is_video
        self.loss_weights = None

    def fit(self, run: TrainingRun) -> list:
        self.net.set_input_stats(**input_statistics(run.datasets["train"]))
        self.net = self.net.to(run.device)
        if run.cfg.training.init_from:
            init_weights(self.net, run.cfg.training.init_from, run.class_names)
        if uses_feature_cache(run.cfg, self.net):
            run.datasets = cache_features(self.net, run.datasets, run.cfg, run.device)
        t = run.cfg.training
        if t.class_weighting != "none":
            self.loss_weights = class_weights(run.datasets["train"].labels, self.cfg.num_classes, t.class_weighting,
                                              t.class_weight_clamp).to(run.device)
        return self._fit_networks(run)

    def _fit_networks(self, run: TrainingRun) -> list:
        return fit_network(self.net, run, self.loss_weights)

    def evaluate(self, dataset, run: TrainingRun) -> dict:
        return evaluate_dataset(self.net, dataset, self.loss_weights, run)

    def window_outputs(self, visual=None, pose=None, pose_present=None, motion=None) -> tuple:
        return self.net.window_outputs(visual, pose, pose_present, motion)

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net.encode_frames(frames)

    def applicability(self, cfg) -> dict:
        inputs, seen = pose_inputs(cfg), "a pose-only model sees no frames"
        if self.sees_frames and self.cached_clean(cfg):
            seen = f"frame features are cached clean with cache_augmented_views 0; {CLEAN_CACHE_FIX}"
        elif self.sees_frames:
            inputs.add("frames")
        backbone = "video" if self.is_video else "frame" if self.sees_frames else None
        head = None if self.is_video else cfg.model.sequence_model
        return {"classifier": ({"neural"}, "neural"),
                "backbone": ({backbone} - {None}, f"this one has a {backbone} backbone" if backbone else
                             "a pose-only model has none"),
                "head": ({head} - {None}, head or "a video backbone (one embedding per clip, no temporal head)"),
                "input": (inputs, seen)}

    def cached_clean(self, cfg) -> bool:
        """Frames are encoded once into the feature cache, without augmented views: no frame augmentation acts."""
        return uses_feature_cache(cfg, self.net) and cfg.training.cache_augmented_views == 0

    def ignored_settings(self, cfg) -> list:
        ignored = super().ignored_settings(cfg)
        frame_augmentation = settings_that_apply(AugmentConfig, "input", "frames")
        if self.cached_clean(cfg) and not any(n.split(".")[1] in frame_augmentation for n, _ in ignored):
            ignored.append(("augmentation (frames)", f"frame features are cached clean with cache_augmented_views 0;"
                            f" {CLEAN_CACHE_FIX}"))
        return ignored


CLEAN_CACHE_FIX = "set it to 1 or more"


class EnsembleClassifier(NetworkClassifier):
    """ensemble_members networks on one frozen backbone (model.ClassifierEnsemble), each trained on its own
    (training/ensemble.py); predictions average their probabilities."""

    def _fit_networks(self, run: TrainingRun) -> list:
        history, self.net = fit_members(self.net, run, self.loss_weights)
        self.cfg = self.net.cfg  # a stopped run keeps the members trained so far
        return history


# ------------------------------------------------------------------------------------------------ trees
# the only class a stored tree model may hold beyond skops' own safe list (numpy arrays, sklearn estimators)
GBT_TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


def window_statistics(x: np.ndarray) -> np.ndarray:
    """(B, T, D) per-frame features -> (B, 6D): mean, spread, min, max over the window, the mean of its centre
    third (windows are labelled by their centre frame) and the change from its first to its last quarter."""
    t = x.shape[1]
    q, third = max(t // 4, 1), slice(t // 3, max(2 * t // 3, t // 3 + 1))
    return np.concatenate([x.mean(1), x.std(1), x.min(1), x.max(1), x[:, third].mean(1),
                           x[:, -q:].mean(1) - x[:, :q].mean(1)], 1).astype(np.float32)


def bootstrap_weights(labels: np.ndarray, windows, seed: int) -> np.ndarray:
    """How often each row is drawn in one bootstrap of the windows, within each class (every class keeps its
    count of windows, so a rare behaviour is never drawn out); a window's rows (its augmented views) share its
    count."""
    windows = np.arange(len(labels)) if windows is None else np.asarray(windows)
    rng = np.random.default_rng(seed)
    first_row = np.unique(windows, return_index=True)[1]
    counts = np.zeros(windows.max() + 1)
    for label in np.unique(labels):
        pool = windows[first_row[labels[first_row] == label]]
        np.add.at(counts, rng.choice(pool, len(pool)), 1)
    return counts[windows]


@CLASSIFIERS.register("gbt")
class WindowStatsGBT(Classifier):
    """Gradient-boosted trees (scikit-learn's histogram GBT) on window statistics of the pose and box-motion
    features: the SimBA / A-SOiD recipe, trained in seconds on a CPU. Sees no frames; stored with skops."""

    def __init__(self, cfg: ModelConfig):
        if not (cfg.use_pose and cfg.pose_dim) and not cfg.motion_input_dim:
            raise UserError("classifier gbt needs pose (--use_pose with YOLO-pose data), box motion "
                            "(--use_box_motion) or sensor streams; it does not see frames")
        self.cfg, self.estimators = cfg, []
        self._held_out = None

    def window_features(self, pose, motion) -> np.ndarray:
        parts = [p for p, used in ((pose, self.uses_pose), (motion, self.uses_motion)) if used]
        return window_statistics(np.concatenate([np.asarray(p, np.float32) for p in parts], -1))

    def fit_arrays(self, pose, motion, labels, class_weight=None, seed: int = 0, windows=None) -> "WindowStatsGBT":
        """Fit on stacked window inputs (pose [N,T,Dp], motion [N,T,Dm], labels [N]); with ensemble_members > 1
        each member on its own bootstrap of the windows (`windows`: the window each row is a view of, so a
        window's augmented views are drawn together; default: every row its own window)."""
        features = self.window_features(pose, motion)
        labels = np.asarray(labels)
        members = self.cfg.ensemble_members
        self.estimators = []
        for member in range(members):
            weights = None if members == 1 else bootstrap_weights(labels, windows, seed + member)
            rows = slice(None) if weights is None else weights > 0
            self.estimators.append(self._fitted_estimator(features[rows], labels[rows], class_weight, seed + member,
                                                          None if weights is None else weights[rows]))
        return self

    def _fitted_estimator(self, features, labels, class_weight, seed: int, sample_weight):
        from sklearn.ensemble import HistGradientBoostingClassifier
        estimator = HistGradientBoostingClassifier(
            max_iter=self.cfg.gbt_max_iter, learning_rate=self.cfg.gbt_learning_rate, early_stopping=False,
            max_features=self.cfg.gbt_max_features, class_weight=class_weight, random_state=seed,
        ).fit(features, labels, sample_weight=sample_weight)
        if len(estimator.classes_) != self.cfg.num_classes:
            raise UserError(f"gbt: training windows hold {len(estimator.classes_)} of the "
                            f"{self.cfg.num_classes} classes; every class needs training windows")
        return estimator

    def fit(self, run: TrainingRun) -> list:
        history, stacked, weights = fit_trees(self, run)
        self._held_out = out_of_fold_probs(lambda: WindowStatsGBT(self.cfg), run, stacked, weights)
        return history

    def held_out_predictions(self, run: TrainingRun):
        return self._held_out

    def predict_proba(self, pose, motion) -> np.ndarray:
        return self.member_mean(self.window_features(pose, motion))

    def member_mean(self, features: np.ndarray) -> np.ndarray:
        """The members' probabilities, averaged (one member: its own)."""
        return np.mean([estimator.predict_proba(features) for estimator in self.estimators], axis=0)

    def evaluate(self, dataset, run: TrainingRun) -> dict:
        return evaluate_trees(self, *stacked_inputs(dataset))

    def window_outputs(self, visual=None, pose=None, pose_present=None, motion=None) -> tuple:
        """(class probabilities, embeddings): the embedding is the window statistics the trees read."""
        to_numpy = (lambda v: v.cpu().numpy() if isinstance(v, torch.Tensor) else v)
        features = self.window_features(to_numpy(pose), to_numpy(motion))
        return torch.from_numpy(self.member_mean(features)).float(), torch.from_numpy(features)

    def state_dict(self) -> dict:
        import skops.io
        # one member is stored as the estimator itself, as models from before ensembles of trees are
        stored = self.estimators[0] if len(self.estimators) == 1 else self.estimators
        return {"skops": torch.frombuffer(bytearray(skops.io.dumps(stored)), dtype=torch.uint8)}

    def load_state_dict(self, state: dict) -> None:
        """Load with skops, refusing any type outside its safe list and GBT_TRUSTED_TYPES."""
        import skops.io
        data = bytes(state["skops"].numpy().tobytes())
        unknown = sorted(set(skops.io.get_untrusted_types(data=data)) - set(GBT_TRUSTED_TYPES))
        if unknown:
            raise UserError(f"the stored tree model holds types that are not trusted ({', '.join(unknown)}); it was "
                            f"not written by BehaviorScope, refusing to load it")
        stored = skops.io.loads(data, trusted=GBT_TRUSTED_TYPES)
        self.estimators = list(stored) if isinstance(stored, list) else [stored]

    def applicability(self, cfg) -> dict:
        return {"classifier": ({"gbt"}, "gbt"), "input": (pose_inputs(cfg), "the gbt classifier sees no frames")}


# ------------------------------------------------------------------------------------------------ dense models
class DenseClassifier(TorchClassifier):
    """A dense model (model.DENSE_MODELS: mstcn, dense_transformer, multimodal) that labels every frame of chunks of
    pose, box motion and sensor streams, trained on every labelled frame of whole recordings (training/dense.py) by
    the network loop's epochs (best models on validation, early stopping, resume). With use_frame_features it sees
    frames too, as the features of a frozen frame backbone (each frame encoded once)."""
    dense = True

    def __init__(self, cfg: ModelConfig):
        self.cfg, self.net = cfg, DenseSequenceLabeller(cfg)
        self.sees_frames = self.net.sees_frames
        self.loss_weights = None

    def fit(self, run: TrainingRun) -> list:
        self.net.set_input_stats(**input_statistics(run.datasets["train"]))
        t = run.cfg.training
        if t.init_from:  # a pretrained model's input scaling comes with its weights
            init_dense_weights(self.net, t.init_from, run.class_names, run.datasets["train"].spec.recorded())
        self.net = self.net.to(run.device)
        if t.class_weighting != "none":
            counts = frame_class_counts(dense_recordings(self.net, run.datasets["train"], run.device),
                                        self.cfg.num_classes)
            labels = np.repeat(np.arange(self.cfg.num_classes), counts)
            self.loss_weights = class_weights(labels, self.cfg.num_classes, t.class_weighting,
                                              t.class_weight_clamp).to(run.device)
        return fit_network(self.net, run, self.loss_weights, steps=DenseSteps)

    def evaluate(self, dataset, run: TrainingRun) -> dict:
        self.net = self.net.to(run.device)
        return evaluate_recordings(self.net, dense_recordings(self.net, dataset, run.device), dataset, run)

    def frame_outputs(self, visual=None, pose=None, pose_present=None, motion=None) -> tuple:
        """Per-frame probabilities; the window's are its centre frame's, its embedding the centre frame's features."""
        return self.outputs_with_embeddings(visual, pose, pose_present, motion)[:3]

    def outputs_with_embeddings(self, visual=None, pose=None, pose_present=None, motion=None) -> tuple:
        """Each frame's embedding is its own features from the last layer (those its probabilities are read from)."""
        probs, features = self.net.frame_outputs(pose, pose_present, motion, visual)
        centre = probs.shape[1] // 2
        return probs, probs[:, centre], features[:, centre], features

    def window_outputs(self, visual=None, pose=None, pose_present=None, motion=None) -> tuple:
        return self.frame_outputs(visual, pose, pose_present, motion)[1:]

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        if not self.sees_frames:
            return super().encode_frames(frames)
        return self.net.encode_frames(frames)

    def applicability(self, cfg) -> dict:
        kind = cfg.model.classifier
        seen = (f"classifier {kind} reads frame features encoded once, unaugmented" if self.sees_frames else
                f"classifier {kind} sees no frames (use_frame_features is off)")
        return {"classifier": ({kind}, kind), "input": (pose_inputs(cfg), seen),
                "backbone": ({"frame"} if self.sees_frames else set(), "a frozen frame backbone" if self.sees_frames
                             else "use_frame_features is off")}


for _name in DENSE_MODELS.names():
    CLASSIFIERS.register(_name)(DenseClassifier)


# ------------------------------------------------------------------------------------------------ creation
def build_classifier(cfg: ModelConfig) -> Classifier:
    """The registered kind named by cfg.classifier."""
    return CLASSIFIERS.get(cfg.classifier)(cfg)


def load_classifier(ckpt: dict, device: str = "cpu") -> Classifier:
    """The classifier of a checkpoint (utils.checkpoint.load_checkpoint), rebuilt from its model_args alone and
    ready to predict; the backbone's weights come from the checkpoint, never from a download."""
    classifier = build_classifier(ModelConfig(**{**ckpt["model_args"], "pretrained_backbone": False}))
    classifier.load_state_dict(ckpt["model"])
    return classifier.to_inference(device)
