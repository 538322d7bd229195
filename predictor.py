"""One predictor for every stage that classifies video: inference, evaluation, batch, the dashboard, live mode.

    predictor = Predictor.from_checkpoint("runs/x/best_model_macro_f1.pt", InferenceConfig(device="cpu"))
    prediction = predictor.predict_video("session.mp4")      # per-frame probabilities, detections, windows

It owns the model and every preprocessing setting recorded at training (crop, pad, window, detector settings,
keypoint layout, min_keypoint_conf), applies the user's overrides with a warning naming both values, and checks
the detector against the model before the first frame (keypoint count and names, pose available at all).
The video runs through the one frame pipeline (frame_pipeline.iter_frame_records) and the one windowing rule
(utils.data.windows): with a frame backbone every frame is encoded once and overlapping windows are classified from
buffered features; each frame's probabilities are the mean over the windows that cover it, weighted towards
each window's centre (utils.data.windows.frame_weights).
"""
import logging
import time
from pathlib import Path
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from classifiers import load_classifier
from data import normalise_frames
from detectors import STATUS_DETECTED, STATUS_INTERPOLATED, STATUS_MISSED, STATUS_REUSED, build_detector
from frame_pipeline import iter_frame_records, prepare_source, window_arrays
from utils.detection.detection_cache import DetectionRecorder, cached_detections
from utils.checkpoint import load_checkpoint
from utils.config import from_recorded, section_options
from utils.device import resolve_device, set_cpu_threads
from utils.results.drift import DriftReference, warning_text
from utils.errors import UserError
from utils.logging_utils import progress
from utils.features.motion import FeatureSpec
from utils.features.recording_norm import RecordingNorm
from utils.readers.pose_io import recording_animals
from utils.readers.sensors import frame_sensors
from utils.results.embeddings import FrameEmbeddings
from utils.schema import InferenceConfig, PreprocessingConfig
from utils.timing import StageTimer
from utils.data.video_io import decoded_short, video_info
from utils.data.windows import Windower, frame_rate_differs, frame_weights, inference_stride, usable

log = logging.getLogger("predictor")
STATUSES = (STATUS_DETECTED, STATUS_REUSED, STATUS_MISSED, STATUS_INTERPOLATED)
GPU_BATCH = 64  # frames per detector and backbone call on a GPU when yolo_batch is not given


def to_device(x: torch.Tensor, device: str) -> torch.Tensor:
    """To the device; through pinned memory on CUDA, so the copy overlaps the work already queued."""
    return x.pin_memory().to(device, non_blocking=True) if device.startswith("cuda") else x


class GrowingArray:
    """Rows appended into one numpy buffer that doubles when full: per-frame state costs a few bytes per frame
    and no Python object per frame, so memory stays flat however long the video is."""

    def __init__(self, row_shape: tuple, dtype, fill=0):
        self.fill = fill
        self.data = np.full((1024, *row_shape), fill, dtype)
        self.size = 0

    def append(self, row) -> None:
        if self.size == len(self.data):
            grown = np.full((2 * len(self.data), *self.data.shape[1:]), self.fill, self.data.dtype)
            grown[: self.size] = self.data
            self.data = grown
        self.data[self.size] = row
        self.size += 1

    def __len__(self) -> int:
        return self.size

    def values(self) -> np.ndarray:
        return self.data[: self.size]


class Accumulator:
    """Per-frame sums of window probabilities and per-frame detection results, in numpy buffers."""

    def __init__(self, num_classes: int, num_keypoints: int):
        self.prob_sum = GrowingArray((num_classes,), np.float64)
        self.weight = GrowingArray((), np.float64)  # sum of the covering windows' frame weights
        self.status_code = GrowingArray((), np.int8)  # index into STATUSES
        self.boxes = GrowingArray((4,), np.float32, np.nan)  # xyxy frame px, NaN when missed
        self.kp_centres = GrowingArray((2,), np.float64, np.nan)  # mean of the confident keypoints, frame px
        self.keypoints = GrowingArray((num_keypoints, 3), np.float32, np.nan)  # for the review video
        # (start, probs after decision weights, pose used, distance to training or NaN, the model's top
        # probability): one per window, not per frame
        self.windows = []

    def __len__(self) -> int:
        return len(self.weight)

    def add_frame(self, status: str, box, keypoints) -> None:
        self.prob_sum.append(0.0)
        self.weight.append(0.0)
        self.status_code.append(STATUSES.index(status))
        self.boxes.append(np.nan if box is None else box)
        visible = keypoints[keypoints[:, 2] > 0, :2] if keypoints is not None else np.zeros((0, 2))
        self.kp_centres.append(visible.mean(0) if len(visible) else np.nan)
        self.keypoints.append(np.nan if keypoints is None else keypoints[:, :3])  # x, y, conf (3D: the floor plane)

    def add_window(self, start: int, probs: np.ndarray, length: int) -> None:
        weights = frame_weights(length)
        self.prob_sum.data[start:start + length] += weights[:, None] * probs
        self.weight.data[start:start + length] += weights

    def statuses(self) -> np.ndarray:
        return np.array(STATUSES, dtype=object)[self.status_code.values()]

    def any_detected(self) -> bool:
        return bool((self.status_code.values() == STATUSES.index(STATUS_DETECTED)).any())

    def mean_probs(self) -> tuple:
        weight = self.weight.values()
        return self.prob_sum.values() / np.maximum(weight, 1e-12)[:, None], weight > 0


MIN_WINDOW_FRAMES = 4  # a window re-timed to fewer frames has no motion left to classify


def rate_hint(source) -> str:
    """The fix when a recording's frame rate may be what is wrong (a container written with a made-up rate)."""
    name = Path(str(source))
    return (f"if that is not the true frame rate, set it: ffmpeg -r TRUE_FPS -i {name} -c:v libx264 "
            f"{name.stem}_fixed.mp4 (pose files: --pose_fps)")


@dataclass
class VideoPrediction:
    video_path: str
    fps: float
    acc: Accumulator
    windows: int = 0
    with_pose: int = 0
    skipped: int = 0
    backbone_frames: int = 0  # frames through the backbone (each frame once with a frame backbone)
    seconds: dict = field(default_factory=dict)
    drift: dict = None  # utils.results.drift.DriftReference.score; None when the checkpoint has no reference
    dropped: int = 0  # live sources: frames dropped because the pipeline fell behind
    animal: str = None  # the animal of a multi-animal pose file
    window: tuple = None  # (size, stride) in frames for this recording (Predictor.window_for)
    damage: list = field(default_factory=list)  # what the input files are missing (warned as found)
    detections_reused: bool = False  # replayed from an earlier run (utils.detection.detection_cache): no detector ran
    embeddings: FrameEmbeddings = None  # with Predictor.keep_embeddings (embed_behavior.py)

    @property
    def frames(self) -> int:
        return len(self.acc)


def recorded_settings(ckpt: dict, options: InferenceConfig, source: str,
                      video_backbone: bool) -> PreprocessingConfig:
    """The checkpoint's preprocessing settings with the inference settings that override them (declared in the
    schema: `overrides`; each differing value warned about, `machine` ones such as the device always the user's);
    stride defaults to utils.data.windows.inference_stride, the detector batch to GPU_BATCH on a GPU."""
    trained = from_recorded(PreprocessingConfig, ckpt["preprocessing"], source)
    if trained.body_length_cm and not options.pixels_per_cm:
        raise UserError(f"{source} measures pose features in units of {trained.body_length_cm:g} cm (trained with "
                        f"--body_length_cm at {trained.pixels_per_cm:g} px/cm), so it needs this recording's scale: "
                        f"add --pixels_per_cm N (px per cm in this video or pose file)")
    chosen = {}
    for name, opt in section_options(InferenceConfig).items():
        value, recorded = getattr(options, name), getattr(trained, opt.overrides or name, None)
        if opt.machine:
            chosen[opt.overrides] = value
        elif opt.overrides and value is not None and value != recorded:
            log.warning("%s: using %s given here, the model was trained with %s", name, value, recorded)
            chosen[opt.overrides] = value
    window = chosen.get("window_size", trained.window_size)
    on_gpu = resolve_device(options.device).startswith("cuda")
    chosen["yolo_batch"] = options.yolo_batch or (GPU_BATCH if on_gpu else trained.yolo_batch)
    yolo_task = {"auto": "auto", "bbox": "detect", "pose": "pose"}[options.yolo_mode]
    return replace(trained, **chosen, window_stride=options.window_stride or inference_stride(window, video_backbone),
                   yolo_task=yolo_task, num_threads=0)


class Predictor:
    keep_embeddings = False  # each prediction also sums its windows' embeddings (embed_behavior.py)
    embed_inputs = False  # ... of their per-frame input features instead of the model's representation

    def __init__(self, model, ckpt: dict, settings: PreprocessingConfig, options: InferenceConfig, device: str,
                 detector, source: str):
        self.model, self.ckpt, self.settings, self.options = model, ckpt, settings, options
        self.device, self.detector, self.source = device, detector, source
        self.class_names = list(ckpt["class_names"])
        self.features = FeatureSpec.from_checkpoint(ckpt)  # pose and box-motion inputs as at training
        self.drift = DriftReference.from_checkpoint(ckpt)
        # per-class decision weights tuned on validation (TrainingConfig.tune_decision_weights); ones otherwise
        self.decision_weights = np.asarray(ckpt.get("decision_weights") or np.ones(len(self.class_names)))
        if self.drift is None:
            log.warning("%s has no drift reference (trained without a validation split, or by an older version): "
                        "videos unlike the training ones cannot be flagged", source)

    @classmethod
    def from_checkpoint(cls, path, options: InferenceConfig = None, timer: StageTimer = None) -> "Predictor":
        options = options or InferenceConfig()
        with (timer or StageTimer()).stage("load"):
            device = resolve_device(options.device)
            ckpt = load_checkpoint(path)
            model = load_classifier(ckpt, device)
            settings = recorded_settings(ckpt, options, str(path), model.is_video)
            detector = build_detector(settings.detector, settings)
            set_cpu_threads(0)
            predictor = cls(model, ckpt, settings, options, device, detector, str(path))
            predictor.check_detector()
        return predictor

    @property
    def min_keypoint_conf(self) -> float:
        return self.features.min_keypoint_conf

    # ------------------------------------------------------------------------------------ start-up checks
    @property
    def needs_pose(self) -> bool:
        return self.model.uses_pose

    @property
    def pose_only(self) -> bool:
        """No frames are seen and pose is an input: a window without keypoints cannot be classified."""
        return not self.model.sees_frames and self.model.uses_pose

    def check_detector(self) -> None:
        """Stop before the first frame when the detector cannot feed this model."""
        trained = self.ckpt["preprocessing"]
        want_k, want_names = trained.get("num_keypoints", 0), trained.get("keypoint_names") or []
        # pose files: each is checked when it is opened
        self.detector.expect_keypoints(want_names, self.source, self.features.spatial_dims)
        have_k, have_names = self.detector.num_keypoints, self.detector.keypoint_names
        weights = self.detector.label
        if self.pose_only and self.options.yolo_mode == "bbox":
            raise UserError(f"{self.source} is a pose-only model (backbone none): --yolo_mode bbox gives it no "
                            f"input; use --yolo_mode auto or pose")
        if not self.needs_pose:
            return
        if self.features.spatial_dims == 3 and not self.detector.reads_pose_files:
            raise UserError(f"{self.source} was trained on 3D keypoints (x, y, z) from pose files; detector {weights} "
                            f"gives 2D ones: classify 3D pose files (--detector pose_file, docs/formats.md)")
        if have_k == 0:
            if self.pose_only or self.options.require_pose:
                raise UserError(f"{self.source} needs {want_k} keypoints per frame, but detector {weights} gives "
                                f"none (task {self.detector.task}); use YOLO-pose weights like the ones it was "
                                f"trained with ({trained.get('yolo_weights')})")
            log.warning("detector %s gives no keypoints: the model's pose input is unused", weights)
            return
        if have_k != want_k:
            raise UserError(f"detector {weights} gives {have_k} keypoints {have_names or ''}, but {self.source} was "
                            f"trained on {want_k} {want_names or ''}; use a detector with the same keypoints (trained "
                            f"with: {trained.get('yolo_weights')})")
        if have_names and want_names and list(have_names) != list(want_names):
            raise UserError(f"detector {weights} names its keypoints {have_names}, but {self.source} was trained on "
                            f"{want_names}; use a detector with the same keypoints in the same order")

    # ------------------------------------------------------------------------------------------- running
    def animals(self, path) -> list:
        return recording_animals(path, self.detector.reads_pose_files)

    def predict_video(self, video_path, timer: StageTimer = None, animal: str = None) -> VideoPrediction:
        """Stream the video (or pose file) once through detection, cropping, the backbone and the windows; `animal`:
        which one of a multi-animal pose file."""
        timer = timer or StageTimer()
        info = prepare_source(video_path, self.detector, self.settings, animal)
        sensors = self.recording_sensors(video_path, info, animal)
        if not info.has_frames and self.model.sees_frames:
            raise UserError(f"{self.source} classifies video frames (backbone {self.model.cfg.backbone}), but "
                            f"{video_path} is a pose file without video; put the video beside it, or train a pose-only "
                            f"model (--backbone none --use_pose, or --classifier gbt)")
        if not (info.has_frames or self.detector.fps or self.options.pose_fps):
            log.warning("%s: frame rate %.3g fps, the one the model was trained with (no --pose_fps given)", video_path,
                        info.fps)
        window = self.window_for(info.fps, video_path)
        if 0 < info.frame_count < window[0]:
            raise UserError(f"{video_path} has {info.frame_count} frames ({info.frame_count / info.fps:.2f} s at "
                            f"{info.fps:.4g} fps), fewer than one window of {window[0]} frames; {rate_hint(video_path)}"
                            f"; a clip this short cannot be classified with this model")
        prediction = VideoPrediction(str(video_path), info.fps, Accumulator(len(self.class_names),
                                     self.detector.num_keypoints), animal=animal, window=window)
        prediction.damage = list(info.damage)
        prediction.embeddings = FrameEmbeddings() if self.keep_embeddings else None
        classifier = WindowClassifier(self, prediction)
        replay = recorder = None
        if self.options.reuse_detections:
            replay = cached_detections(video_path, self.detector, self.settings)
            recorder = None if replay else DetectionRecorder(video_path, self.detector, self.settings)
        prediction.detections_reused = replay is not None
        with progress(total=max(info.frame_count, 0), desc="frames") as bar:
            for records in iter_frame_records(video_path, replay or self.detector, self.settings, timer,
                                              sensors=sensors):
                self._add_records(records, prediction, classifier, timer)
                if recorder:
                    recorder.add(records)
                bar.update(len(records))
        if recorder:
            recorder.save()
        if info.has_frames and decoded_short(video_info(video_path), prediction.frames):
            prediction.damage.append(decoded_short(video_info(video_path), prediction.frames))
        return self._finish(prediction, classifier, timer)

    def predict_live(self, source, on_window, timer: StageTimer = None) -> VideoPrediction:
        """Classify a live source (utils.data.live.LiveSource) as its frames arrive: each window is classified as soon
        as it is complete and handed to on_window(start, probs, latency_s, length), the latency counted from the
        capture of the window's last frame. Ctrl-C (the dashboard's Stop sends it too) or the end of the stream
        ends the run; what was seen is classified and returned like a video's prediction."""
        timer = timer or StageTimer()
        if self.features.normalisation != "none":
            raise UserError(f"{self.source} normalises its features per recording (--feature_normalisation "
                            f"{self.features.normalisation}), which needs the whole recording before the first label; "
                            f"record the session and classify the video, or use a model trained with "
                            f"--feature_normalisation none")
        if self.features.sensor_channels:
            raise UserError(f"{self.source} reads sensor streams ({', '.join(self.features.sensor_channels)}), which "
                            f"live mode does not receive; record the session and classify the video with its stream")
        prediction = VideoPrediction(source.name, source.fps, Accumulator(len(self.class_names),
                                     self.detector.num_keypoints), window=self.window_for(source.fps, source.name))
        captured = {}  # frame index -> capture time, until its windows are done

        def labelled(start: int, probs, length: int) -> None:
            last = start + length - 1
            on_window(start, probs, time.monotonic() - captured[last], length)
            for index in [i for i in captured if i < last - length]:
                del captured[index]

        def frame_batches():
            for arrivals in source.batches(self.settings.yolo_batch):
                captured.update((a.index, a.captured) for a in arrivals)
                yield arrivals[0].index, [a.frame for a in arrivals]

        classifier = WindowClassifier(self, prediction, on_window=labelled)
        try:
            with progress(total=0, desc="live frames") as bar:
                for records in iter_frame_records(source.name, self.detector, self.settings, timer, frame_batches()):
                    self._add_records(records, prediction, classifier, timer)
                    with timer.stage("head"):
                        classifier.flush()  # no waiting for a full batch of windows: latency first
                    bar.update(len(records))
        except KeyboardInterrupt:
            log.warning("stopped after %d frames: writing the outputs of what was seen", prediction.frames)
        finally:
            source.close()
        prediction.dropped = source.dropped
        if source.dropped:
            log.warning("%d frames dropped: the pipeline fell behind the source (times after a drop run behind the "
                        "clock by the frames dropped)", source.dropped)
        return self._finish(prediction, classifier, timer)

    def recording_sensors(self, path, info, animal):
        """The recording's sensor streams aligned to its frames when the model reads them, else None; refused
        before the first frame when the stream is missing, has other channels or does not cover the recording."""
        channels = list(self.features.sensor_channels)
        if not channels:
            return None
        if animal is not None:
            raise UserError(f"{path} tracks several animals, and {self.source} reads one sensor stream per recording; "
                            f"classify single-animal recordings with this model")
        return frame_sensors(path, info.frame_count, info.fps, self.settings.sensor_rate, self.settings.sensor_offset_s,
                             channels, self.source)

    def window_for(self, fps: float, source) -> tuple:
        """(size, stride) in frames for a recording at `fps`: the trained window's duration in seconds when the
        recording's frame rate differs from the training data's by more than 5% (and no --window_size was given),
        since the features are in seconds but a window counts frames; video backbones and learned positional
        encodings keep their frame count."""
        if self.model.dense:  # chunks of frames the temporal convolutions count: kept whatever the frame rate
            size = self.options.window_size or self.model.cfg.dense_chunk
            return size, self.options.window_stride or max(size // 2, 1)
        size, stride = self.settings.window_size, self.settings.window_stride
        trained = self.ckpt["preprocessing"].get("fps")
        fixed = self.model.is_video or self.model.cfg.positional_encoding == "learned"
        if fixed or self.options.window_size or not frame_rate_differs(fps, trained):
            return size, stride
        scaled = int(round(size * fps / trained))
        if scaled < MIN_WINDOW_FRAMES:
            raise UserError(f"{source} runs at {fps:.4g} fps, the model was trained at {trained:.4g} fps: its window of "
                            f"{size / trained:.2f} s would be {scaled} frame(s) here; {rate_hint(source)}, or pass "
                            f"--window_size (at least {MIN_WINDOW_FRAMES})")
        log.warning("%.3g fps, the model was trained at %.3g fps: windows of %d frames (%.2f s, as trained) instead "
                    "of %d; pass --window_size to choose", fps, trained, scaled, scaled / fps, size)
        return scaled, self.options.window_stride or inference_stride(scaled, False)

    def _add_records(self, records, prediction: VideoPrediction, classifier, timer: StageTimer) -> None:
        for r in records:
            prediction.acc.add_frame(r.status, None if r.missed else r.box, r.keypoints)
        with timer.stage("backbone"):
            features = self.encode_crops(records, prediction)
        with timer.stage("head"):  # includes a video backbone, which encodes whole windows
            for record, feature in zip(records, features):
                classifier.add(record, feature)

    def _finish(self, prediction: VideoPrediction, classifier, timer: StageTimer) -> VideoPrediction:
        with timer.stage("head"):
            classifier.finish()
        prediction.seconds = dict(timer.seconds)
        self._check_result(prediction)
        self._score_drift(prediction)
        return prediction

    def _score_drift(self, prediction: VideoPrediction) -> None:
        if self.drift is None:
            return
        windows = prediction.acc.windows
        prediction.drift = self.drift.score(np.array([w[3] for w in windows]), np.array([w[4] for w in windows]),
                                            prediction.fps, self.ckpt["preprocessing"].get("fps"))
        if prediction.drift["drift_warning"]:
            log.warning(warning_text(prediction.video_path, prediction.drift))

    @torch.no_grad()
    def encode_crops(self, records, prediction: VideoPrediction) -> list:
        """Per-frame backbone features (frame backbone: each frame encoded exactly once, here) or the normalised
        crops themselves (video backbone: encoded per window). None for missed frames and pose-only models."""
        present = [i for i, r in enumerate(records) if r.crop is not None]
        out = [None] * len(records)
        if not self.model.sees_frames or not present:
            return out
        x = normalise_frames(torch.from_numpy(np.stack([records[i].crop for i in present])).permute(0, 3, 1, 2))
        if self.model.is_video:
            for i, frame in zip(present, x):
                out[i] = frame
            return out
        with self.autocast():
            feats = self.model.encode_frames(to_device(x[None], self.device))[0].float().cpu()  # (n, Dv)
        prediction.backbone_frames += len(present)
        for i, f in zip(present, feats):
            out[i] = f
        return out

    def autocast(self):
        """Half precision for the neural network on CUDA (options.amp); a no-op elsewhere."""
        return torch.autocast("cuda", enabled=self.device.startswith("cuda") and self.options.amp)

    def _check_result(self, prediction: VideoPrediction) -> None:
        if not prediction.acc.any_detected():
            raise UserError(f"no animal detected in any of the {prediction.frames} frames of "
                            f"{prediction.video_path}: {self.detector.miss_hint}")
        if prediction.windows == 0:
            raise UserError(f"no window of {prediction.video_path} could be classified ({prediction.skipped} "
                            f"skipped: the animal was not found on every frame of any window of "
                            f"{prediction.window[0]} frames); check the detector or use --keep_last_box")

    def describe(self) -> dict:
        """The settings this predictor runs with, for the outputs' metadata."""
        return {"class_names": self.class_names, "model_selection": self.ckpt.get("selection"),
                "min_keypoint_conf": self.min_keypoint_conf,
                **{f"setting_{k}": v for k, v in vars(self.settings).items()}, **self.detector.describe()}


class WindowClassifier:
    """Buffers per-frame inputs and classifies each complete window, in batches. A model whose features are normalised
    per recording (utils.features.recording_norm) needs the whole recording's statistics first: its windows are held
    until the last frame."""

    def __init__(self, predictor: Predictor, prediction: VideoPrediction, on_window=None):
        self.p, self.out, self.on_window = predictor, prediction, on_window
        self.windower = Windower(*prediction.window)
        self.pending = []
        self.hold = predictor.features.normalisation != "none"

    def add(self, record, feature) -> None:
        for start, items in self.windower.push((record, feature)):
            self._queue(start, items)
        if len(self.pending) >= self.p.options.batch_size and not self.hold:
            self.flush()

    def finish(self) -> None:
        for start, items in self.windower.finish():
            self._queue(start, items)
        if self.hold:
            self._normalise_pending()
        held, size = self.pending, self.p.options.batch_size
        for first in range(0, len(held), size):
            self.pending = held[first:first + size]
            self.flush()
        self.pending = []

    def _normalise_pending(self) -> None:
        """Every held window's inputs against the statistics of all of them (the recording's)."""
        def numpy(x):
            return None if x is None else x.numpy()
        norm = RecordingNorm.from_windows([numpy(p) for _, _, p, _ in self.pending],
                                          [numpy(m) for _, _, _, m in self.pending])
        normalised = []
        for start, visual, pose, motion in self.pending:
            pose, motion = norm.apply(numpy(pose), numpy(motion))
            normalised.append((start, visual, None if pose is None else torch.from_numpy(pose),
                               None if motion is None else torch.from_numpy(motion)))
        self.pending = normalised

    def _queue(self, start: int, items: list) -> None:
        records = [r for r, _ in items]
        if not usable(records):
            self.out.skipped += 1  # the animal was missed on a frame: no contiguous crop sequence
            return
        has_pose = all(r.keypoints_crop is not None for r in records) and self.p.options.yolo_mode != "bbox"
        if self.p.pose_only and not has_pose:
            self.out.skipped += 1  # a pose-only model cannot classify a window without pose
            return
        arrays = window_arrays(records, self.p.detector.num_keypoints)
        if has_pose:
            arrays["keypoints"] = np.stack([r.keypoints_crop for r in records]).astype(np.float32)
        pose, motion = self.p.features.window_inputs(arrays, self.out.fps, has_pose and self.p.needs_pose)
        visual = torch.stack([f for _, f in items]) if self.p.model.sees_frames else None
        self.pending.append((start, visual, None if pose is None else torch.from_numpy(pose),
                             None if motion is None else torch.from_numpy(motion)))

    @torch.no_grad()
    def flush(self) -> None:
        if not self.pending:
            return
        model, device, t = self.p.model, self.p.device, self.out.window[0]
        visual = None
        if model.sees_frames:
            visual = torch.stack([v for _, v, _, _ in self.pending]).to(device)  # (B, T, ...) features or crops
            if model.is_video:
                self.out.backbone_frames += visual.shape[0] * t
                with self.p.autocast():
                    visual = model.encode_frames(visual)
        present = torch.tensor([p is not None for _, _, p, _ in self.pending], device=device)
        pose = motion = None
        if model.uses_pose:
            dim = model.cfg.pose_dim
            pose = torch.stack([p if p is not None else torch.zeros(t, dim) for _, _, p, _ in self.pending]).to(device)
        if model.uses_motion:
            motion = torch.stack([m for _, _, _, m in self.pending]).to(device)
        keep = self.out.embeddings is not None
        with self.p.autocast():
            if keep:
                frame_probs, probs, embeddings, frame_embeddings = model.outputs_with_embeddings(visual, pose, present,
                                                                                                  motion)
            else:
                frame_probs, probs, embeddings = model.frame_outputs(visual, pose, present, motion)
        probs = probs.float().cpu().numpy()
        # a window kind's frames share its probabilities; a dense kind gives each frame its own
        frame_probs = probs[:, None] if frame_probs is None else frame_probs.float().cpu().numpy()
        drift = self.p.drift
        distances = drift.distances(embeddings.float().cpu().numpy()) if drift else np.full(len(probs), np.nan)
        if keep:
            self._keep_embeddings(embeddings, frame_embeddings)
        for (start, _, p, _), raw, frames, distance in zip(self.pending, probs, frame_probs, distances):
            weighted = frames * self.p.decision_weights
            self.out.acc.add_window(start, weighted / weighted.sum(-1, keepdims=True), t)
            row = raw * self.p.decision_weights
            row = row / row.sum()
            # the drift limits were calibrated on the model's own probabilities: its top one is kept for them
            self.out.acc.windows.append((start, row, p is not None, float(distance), float(raw.max())))
            if self.on_window is not None:
                self.on_window(start, row, t)
            self.out.windows += 1
            self.out.with_pose += p is not None
        self.pending.clear()

    def _keep_embeddings(self, windows: torch.Tensor, frames) -> None:
        """Each pending window's embedding (or its frames' own, from a dense model) into the prediction's sums."""
        weights, windows = frame_weights(self.out.window[0]), windows.float().cpu().numpy()
        frames = None if frames is None else frames.float().cpu().numpy()
        for i, (start, _, pose, motion) in enumerate(self.pending):
            if self.p.embed_inputs:
                self.out.embeddings.add(start, self._inputs_of(pose, motion), weights)
            else:
                self.out.embeddings.add(start, windows[i] if frames is None else frames[i], weights)

    def _inputs_of(self, pose, motion) -> np.ndarray:
        """A window's per-frame input features [T, D]: its pose (zeros where its keypoints were missing) beside its
        box motion and sensors, as the model reads them."""
        model, parts = self.p.model, []
        if model.uses_pose:
            parts.append(pose if pose is not None else torch.zeros(self.out.window[0], model.cfg.pose_dim))
        if model.uses_motion:
            parts.append(motion)
        return torch.cat(parts, -1).numpy()
