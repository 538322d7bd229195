"""Stage A: find the single animal in each frame and cut a square crop around it.

Detectors come from one registry (`DETECTORS.names()`, `build_detector(name, cfg)`):
    yolo        Ultralytics YOLO detect or pose weights, run on batches of frames
    background  median background + largest foreground blob, for a static camera; needs no weights
    pose_file   keypoints from another tracker's pose file (DeepLabCut, SLEAP, NWB: utils.pose_io), beside the
                video or alone; the box is the keypoints' extent plus a margin. Without a video there are no
                pixels: the records carry boxes and keypoints only, which pose-only models need.

Crop geometry: the box is expanded to a square of side max(w, h) * (1 + 2 * pad_ratio) centred on the box,
rounded to whole pixels, cut out (pixels beyond the frame are black) and resized to crop_size. The mapping
frame -> crop is x' = (x - crop_x1) * crop_size / side, exact in continuous pixel coordinates.
"""
import logging
import os
import time
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from utils.detector_backends import (AGREEMENT_PX, Backend, candidate_backends, checked_agreement, exported_weights,
                                     machine_key, openvino_compile_cache, remember_agreement, remember_choice,
                                     remembered_choice)
from utils.device import resolve_device, set_cpu_threads
from utils.errors import UserError, first_line
from utils.export_runtime import ExportRunner
from utils.kinematics import keypoint_box
from utils.motion import ScaleTracker, body_axis
from utils.pose_io import check_frame_count, find_pose_file, is_pose_file, read_pose_file
from utils.registry import Registry
from utils.timing import StageTimer
from utils.video_io import iter_frame_batches, prefetched, sample_frames, video_info

log = logging.getLogger(__name__)
STATUS_DETECTED, STATUS_REUSED, STATUS_MISSED = "detected", "reused", "missed"
STATUS_INTERPOLATED = "interpolated"  # detect_every > 1: between two detections, not run through the detector


@dataclass
class Detection:
    """One frame's result. box: xyxy frame pixels or None; keypoints: [K,3] (x, y, conf) frame pixels or None;
    partner: the nearest other animal's keypoints [K,3] (pose files with several animals; NaN when none is seen)."""
    box: np.ndarray = None
    confidence: float = 0.0
    keypoints: np.ndarray = None
    status: str = STATUS_MISSED
    partner: np.ndarray = None


DETECTORS = Registry("detector")


@dataclass
class Runtime:
    """What a YOLO detector runs for frames of one input shape: PyTorch's model, or an export made at that shape
    (imgsz (h, w)) and how far it was from PyTorch on the first frames (px). run: frames -> [Detection]; model:
    the Ultralytics model or the ExportRunner behind it."""
    name: str
    run: object
    model: object
    imgsz: tuple = None
    agreement_px: float = None
    path: Path = None  # the cached export
    backend: Backend = None  # how it was exported and runs


def build_detector(name: str, cfg):
    """A detector from the registry, configured by a PreprocessingConfig (or anything with its fields)."""
    return DETECTORS.get(name)(cfg)


@DETECTORS.register("yolo")
class YoloDetector:
    """Ultralytics YOLO in any format it loads (.pt, TorchScript, ONNX, an OpenVINO folder), one predict call per
    batch of frames, highest-confidence box only (max_det=1 after NMS). The keypoint layout, task and native input
    size are read from the .pt model, or from what an exported model reports after one warm-up call, so exported
    models keep them."""

    def __init__(self, cfg):
        self.conf, self.iou = cfg.yolo_conf, cfg.yolo_iou
        self.device = resolve_device(cfg.device)
        self.num_threads = cfg.num_threads
        self.weights = str(cfg.yolo_weights)
        self.model = load_yolo(cfg.yolo_weights)
        self.half, self.backends, self.backend_name, self.agreement_px = False, [], "torch", None
        self.imgsz = cfg.yolo_imgsz  # None: Ultralytics' own choice for an export's warm-up (its exported size)
        self.use_keypoints = False  # known after an export's warm-up, whose detections (if any) are dropped
        self.layout = self._model_layout()
        self.native_imgsz = self.layout.imgsz
        self.imgsz = cfg.yolo_imgsz or self.native_imgsz or 640
        if cfg.yolo_imgsz and self.native_imgsz and cfg.yolo_imgsz != self.native_imgsz:
            log.warning("yolo_imgsz %d differs from the %d px that %s was trained or exported at: boxes and "
                        "keypoints are usually worse; leave yolo_imgsz unset to use %d", cfg.yolo_imgsz,
                        self.native_imgsz, self.weights, self.native_imgsz)
        model_task = self.model.task or "detect"
        if cfg.yolo_task == "pose" and model_task != "pose":
            raise UserError(f"--yolo_task pose, but {cfg.yolo_weights} is a '{model_task}' model without keypoints; "
                            f"use pose weights or --yolo_task detect")
        self.use_keypoints = model_task == "pose" and cfg.yolo_task != "detect"
        self.task = "pose" if self.use_keypoints else "detect"
        self.num_keypoints, self.keypoint_names = self._keypoint_layout() if self.use_keypoints else (0, [])
        self._load_accelerated(cfg.detector_backend, cfg.yolo_batch)

    def _load_accelerated(self, requested: str, batch: int) -> None:
        """Which faster runtimes to try (utils.detector_backends). They are exported and checked on the first
        batch of real frames (_choose_runtime), at the input shape PyTorch gives those frames."""
        self.timed, self.batch = requested == "auto", batch
        self.runtimes = {}  # letterboxed input shape (h, w) -> Runtime used for frames of that shape
        backends = candidate_backends(requested, self.device)
        if backends and Path(self.weights).suffix != ".pt":
            log.info("detector backend %s: %s is already exported, used as it is", requested, self.weights)
            backends = []
        self.half = not backends and self.timed and self.device.startswith("cuda")  # no TensorRT: PyTorch in fp16
        self.backends = backends

    def _model_layout(self) -> "ModelLayout":
        """What the weights say about themselves. A .pt model is read as it is: setting up PyTorch's predictor
        (a deep copy and fusion, about 0.5 s) would be wasted when an export runs the frames. An exported model
        reports its metadata only once a backend has loaded it, so it is run once on a blank frame."""
        if not isinstance(self.model.model, str):
            net = self.model.model
            train_args = (getattr(self.model, "ckpt", None) or {}).get("train_args") or {}
            return ModelLayout(getattr(net, "kpt_shape", None) or (getattr(net, "yaml", None) or {}).get("kpt_shape"),
                               getattr(net, "kpt_names", None) or {},
                               int(net.stride.max()) if hasattr(net, "stride") else 32,
                               largest(train_args.get("imgsz") or self.model.overrides.get("imgsz")))
        self._warm_up()
        backend = self.model.predictor.model
        metadata = getattr(backend, "metadata", None) or {}
        return ModelLayout(getattr(backend, "kpt_shape", None) or metadata.get("kpt_shape"),
                           metadata.get("kpt_names") or {}, int(getattr(backend, "stride", 32) or 32),
                           largest(metadata.get("imgsz")))

    def _warm_up(self) -> None:
        """One predict on a blank frame: sets up the backend, which reads an exported model's metadata."""
        try:
            self.detect([np.zeros((480, 640, 3), np.uint8)])
        except Exception as exc:  # a file Ultralytics loads but cannot run: same fix for every cause
            raise UserError(f"cannot run YOLO weights {self.weights}: {type(exc).__name__}: "
                            f"{first_line(exc)}; export or copy them again") from None

    def _keypoint_layout(self) -> tuple:
        """(count, names) as the loaded model reports them (exported formats carry them in their metadata)."""
        if not self.layout.kpt_shape:
            raise UserError(f"{self.weights} is a pose model but reports no keypoint shape (kpt_shape); re-export it "
                            f"with a current Ultralytics, or use --yolo_task detect")
        names = self.layout.kpt_names
        names = names.get(0, names.get("0", [])) if isinstance(names, dict) else []  # {class: [names]}
        count = int(self.layout.kpt_shape[0])
        return count, list(names) if len(names) == count else []

    def prepare(self, video_path, individual=None) -> None:
        """Nothing per video: the weights are loaded once."""

    def detect(self, frames) -> list:
        shape = self._input_shape(frames) if self.backends else None
        if shape is None:  # PyTorch only, or frames of mixed sizes in one batch
            return self._predict(self.model, frames)
        if shape not in self.runtimes:
            self.runtimes[shape], reference = self._choose_runtime(frames, shape)
            return reference
        return self.runtimes[shape].run(frames)

    def _input_shape(self, frames):
        """(h, w) of the letterboxed input PyTorch makes from these frames (the long side imgsz, the other padded
        to the stride), or None when the frames differ in size."""
        sizes = {np.shape(f)[:2] for f in frames}
        if len(sizes) != 1:
            return None
        return letterbox_shape(sizes.pop(), self.imgsz, max(self.layout.stride, 32))

    def _predict(self, model, frames, static_batch: int = 0, imgsz=None) -> list:
        """Detections of a list of frames; an export with a fixed batch gets whole batches (padded with copies of
        the last frame, whose results are dropped) at the input shape it was exported at (`imgsz`)."""
        frames, options = list(frames), self._predict_options(imgsz)
        out = []
        for start in range(0, len(frames), static_batch or max(len(frames), 1)):
            chunk = frames[start:start + static_batch] if static_batch else frames
            padded = chunk + [chunk[-1]] * (static_batch - len(chunk)) if static_batch else chunk
            results = model.predict(padded, **options)
            out += [self._to_detection(r) for r in results[:len(chunk)]]
        set_cpu_threads(self.num_threads)  # Ultralytics lowers torch's thread count on its first CPU predict
        return out

    def _predict_options(self, imgsz=None) -> dict:
        imgsz = imgsz or self.imgsz
        options = {"conf": self.conf, "iou": self.iou, "max_det": 1, "device": self.device, "verbose": False}
        if imgsz:  # unset: the weights' own size
            options["imgsz"] = list(imgsz) if isinstance(imgsz, tuple) else imgsz
        if self.half:  # only when set: Ultralytics warns that passing `half` at all is deprecated
            options["half"] = True
        return options

    def _exported_runtimes(self, shape: tuple, backends: list) -> list:
        """Each backend exported at `shape` (cached) and loaded; one that cannot be is skipped with a warning."""
        loaded = []
        for backend in backends:
            try:
                path = exported_weights(self.weights, backend, shape, self.batch, self.device)
                runtime = self._export_runtime(backend, path, shape)
            except UserError as exc:
                log.warning("%s; not using %s", exc, backend.name)
                continue
            except Exception as exc:  # Ultralytics' runtime internals may change between versions
                log.warning("cannot run %s's export of %s (%s: %s); not using it", backend.name, self.weights,
                            type(exc).__name__, first_line(exc))
                continue
            runtime.agreement_px = checked_agreement(path, backend)
            loaded.append(runtime)
        return loaded

    def _export_runtime(self, backend: Backend, path: Path, shape: tuple) -> Runtime:
        """OpenVINO and ONNX exports on the CPU run directly (utils.export_runtime: Ultralytics' results without its
        predictor, about 1 ms per frame sooner); TensorRT, and anything on CUDA, through Ultralytics."""
        if backend.export_format in ("openvino", "onnx") and self.device == "cpu":
            runner = ExportRunner(path, backend.export_format, backend.precision, shape, self.batch,
                                  len(self.model.names), self.layout.kpt_shape, self.conf, openvino_compile_cache())
            return Runtime(backend.name, lambda frames: [self._found_detection(f) for f in runner(frames)], runner,
                           shape, path=path, backend=backend)
        model = load_yolo(path)
        return Runtime(backend.name, lambda frames: self._predict(model, frames, self.batch, shape), model, shape,
                       path=path, backend=backend)

    def _torch_runtime(self) -> Runtime:
        return Runtime("torch", lambda frames: self._predict(self.model, frames), self.model)

    def _choose_runtime(self, frames, shape: tuple) -> tuple:
        """(Runtime for frames of this input shape, its detections of `frames`). The exports are made at the
        letterboxed shape PyTorch itself uses for these frames, so both see the same pixels; an export is used only
        if its boxes and keypoints agreed with PyTorch's within AGREEMENT_PX on the first frames it saw (remembered
        per export and runtime version, so later runs skip the check). `auto` keeps whichever of PyTorch and the
        agreeing exports ran this batch fastest (it depends on the CPU: bench/README.md) and remembers it."""
        key = machine_key(self.weights, shape, self.batch, self.device) if self.timed else None
        remembered = remembered_choice(key) if key else None
        timed = self.timed and remembered is None
        backends = [b for b in self.backends if remembered is None or b.name == remembered]
        runtimes = self._exported_runtimes(shape, backends)
        checked = [r for r in runtimes if r.agreement_px is not None]
        if checked and not timed:  # this export agreed on its first use: not checked on every run
            chosen = checked[0]
            log.info("detector backend %s (agreed with PyTorch within %.2f px when first used)", chosen.name,
                     chosen.agreement_px)
            reference = chosen.run(frames)
        else:
            chosen, reference, timings = self._compare_with_pytorch(frames, runtimes, timed)
            if timed:
                log.info("detector backend auto: %s per %d frames; using %s (remembered for this machine)",
                         ", ".join(f"{n} {t:.3f} s" for n, t in timings.items()), len(frames), chosen.name)
                remember_choice(key, chosen.name, timings)
            elif backends and chosen.name == "torch":
                log.warning("using PyTorch for the detector")
        self.backend_name, self.agreement_px = chosen.name, chosen.agreement_px
        return chosen, reference

    def _compare_with_pytorch(self, frames, runtimes: list, timed: bool) -> tuple:
        """(the runtime to use, PyTorch's detections, seconds per runtime when timed): exports that differ from
        PyTorch by more than AGREEMENT_PX (or fail) are dropped; of the others the first, or the fastest when
        timed, is chosen. Each agreement is remembered with its export."""
        chosen = self._torch_runtime()
        reference = chosen.run(frames)
        timings = {"torch": self._seconds(chosen, frames)} if timed else {}
        for runtime in runtimes:
            try:
                difference = detection_difference(reference, runtime.run(frames))
            except Exception as exc:  # a runtime that loads but cannot run falls back like a missing one
                log.warning("detector backend %s failed on the first frames (%s: %s)", runtime.name,
                            type(exc).__name__, first_line(exc))
                continue
            if difference > AGREEMENT_PX:
                reduced = runtime.backend.precision != "fp32"
                log.warning("detector backend %s differs from PyTorch by up to %.1f px on the first %d frames (limit "
                            "%.1f px): not used%s", runtime.name, difference, len(frames), AGREEMENT_PX,
                            f" (it computes in {runtime.backend.precision}; an FP32 runtime such as openvino or onnx "
                            f"agrees exactly)" if reduced else "")
                continue
            log.info("detector backend %s agrees with PyTorch within %.2f px on the first %d frames (input %dx%d)",
                     runtime.name, difference, len(frames), runtime.imgsz[1], runtime.imgsz[0])
            runtime.agreement_px = difference
            remember_agreement(runtime.path, runtime.backend, difference)
            if timed:
                timings[runtime.name] = self._seconds(runtime, frames)
            fastest = timed and timings[runtime.name] == min(timings.values())
            if fastest or not timed and chosen.name == "torch":
                chosen = runtime
        return chosen, reference, timings

    def _seconds(self, runtime: Runtime, frames) -> float:
        start = time.perf_counter()
        runtime.run(frames)
        return time.perf_counter() - start

    def _found_detection(self, found) -> Detection:
        """A Detection from an ExportRunner's (box, confidence, keypoints) or None."""
        if found is None:
            return Detection()
        box, confidence, keypoints = found
        keypoints = keypoints.astype(np.float32) if self.use_keypoints and keypoints is not None else None
        return Detection(box.astype(np.float32), confidence, keypoints, STATUS_DETECTED)

    def _to_detection(self, result) -> Detection:
        if result.boxes is None or len(result.boxes) == 0:
            return Detection()
        best = int(result.boxes.conf.argmax())
        box = result.boxes.xyxy[best].cpu().numpy().astype(np.float32)
        keypoints = None
        if self.use_keypoints and result.keypoints is not None:
            xy = result.keypoints.xy[best].cpu().numpy()
            conf = result.keypoints.conf
            kc = conf[best].cpu().numpy() if conf is not None else np.ones(len(xy), np.float32)
            keypoints = np.concatenate([xy, kc[:, None]], 1).astype(np.float32)
        return Detection(box, float(result.boxes.conf[best]), keypoints, STATUS_DETECTED)

    miss_hint = "check --yolo_weights (trained on this kind of video?) or lower --yolo_conf"

    def describe(self) -> dict:
        return {"detector": "yolo", "yolo_weights": self.weights, "yolo_task": self.task, "yolo_conf": self.conf,
                "yolo_iou": self.iou, "yolo_imgsz": self.imgsz, "detector_backend": self.backend_name,
                "detector_backend_agreement_px": self.agreement_px, "detector_half": self.half}


@lru_cache(maxsize=16)
def letterbox_shape(frame_hw: tuple, imgsz: int, stride: int) -> tuple:
    """(h, w) of Ultralytics' rectangular letterbox of a frame: the long side imgsz, the other padded to the
    stride. Asked of Ultralytics itself, so exports made at this shape see exactly PyTorch's input."""
    from ultralytics.data.augment import LetterBox
    return LetterBox(new_shape=(imgsz, imgsz), auto=True, stride=stride)(
        image=np.zeros((*frame_hw, 3), np.uint8)).shape[:2]


def detection_difference(reference: list, trial: list) -> float:
    """Largest box-corner or keypoint difference (frame px) between two runs over the same frames; infinite
    when one found the animal and the other did not."""
    worst = 0.0
    for a, b in zip(reference, trial):
        if (a.box is None) != (b.box is None):
            return float("inf")
        if a.box is not None:
            worst = max(worst, float(np.abs(a.box - b.box).max()))
        if a.keypoints is not None and b.keypoints is not None:
            worst = max(worst, float(np.abs(a.keypoints[:, :2] - b.keypoints[:, :2]).max()))
    return worst


@dataclass
class ModelLayout:
    """What YOLO weights report about themselves: keypoint shape and names, stride, the size they were trained or
    exported at (None when unknown)."""
    kpt_shape: list
    kpt_names: dict
    stride: int
    imgsz: int = None


def largest(size):
    """An image size given as one number or a (h, w) pair, as one number (the long side); None stays None."""
    if isinstance(size, (list, tuple)):
        size = max(size)
    return int(size) if size else None


def load_yolo(weights):
    """Load local Ultralytics weights; never download (a bare name like yolov8n.pt would trigger one)."""
    if not weights:
        raise UserError("no YOLO weights given: pass --yolo_weights PATH (a local .pt), or use --detector background")
    path = Path(weights)
    if not path.exists():
        raise UserError(f"YOLO weights not found: {path}. They cannot be downloaded automatically (offline); "
                        f"put the weights file at that path, pass --yolo_weights PATH, or use --detector background")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO
    try:
        return YOLO(str(path))
    except Exception as exc:  # Ultralytics raises many types for a bad file; all mean the same to the user
        raise UserError(f"cannot load YOLO weights {path}: {type(exc).__name__}: {first_line(exc)}; "
                        f"the file is not Ultralytics weights or is damaged, export or copy it again") from None


@DETECTORS.register("background")
class BackgroundDetector:
    """Static camera: the median of frames sampled over the video is the background; the animal is the largest
    blob that differs from it. Confidence is that blob's share of all foreground pixels (1.0 = one clean blob)."""

    def __init__(self, cfg):
        self.num_samples, self.threshold, self.min_area = cfg.bg_num_samples, cfg.bg_threshold, cfg.bg_min_area
        self.background = None
        self.num_keypoints, self.keypoint_names, self.task = 0, [], "detect"
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def prepare(self, video_path, individual=None) -> None:
        frames = sample_frames(video_path, self.num_samples)
        grey = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames])
        self.background = np.median(grey, axis=0).astype(np.uint8)

    def detect(self, frames) -> list:
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame) -> Detection:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        mask = (cv2.absdiff(grey, self.background) > self.threshold).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if count <= 1:
            return Detection()
        areas = stats[1:, cv2.CC_STAT_AREA]
        best = int(areas.argmax())
        if areas[best] < self.min_area:
            return Detection()
        x, y, w, h = stats[1 + best, :4]
        box = np.array([x, y, x + w, y + h], np.float32)
        return Detection(box, float(areas[best] / areas.sum()), None, STATUS_DETECTED)

    miss_hint = ("the background detector needs an animal that moves during the video (a still animal is part "
                 "of the median background) and contrast above --bg_threshold; use --detector yolo otherwise")

    def describe(self) -> dict:
        return {"detector": "background", "bg_num_samples": self.num_samples, "bg_threshold": self.threshold,
                "bg_min_area": self.min_area}


@DETECTORS.register("pose_file")
class PoseFileDetector:
    """Keypoints of one animal from a pose file (utils.pose_io): the file itself, or the one beside the video.
    Its box is the extent of the keypoints present, grown by pose_box_margin of the extent's longer side on every
    side; its confidence the mean likelihood of those keypoints. A frame without any keypoint above
    pose_min_likelihood is a miss. The keypoint layout comes from the first file; every later file (and, at
    inference, every file given to a model) must have the same keypoints in the same order."""
    by_index = True  # detect_at(frame indices): needs no pixels
    miss_hint = "every point of the pose file is missing or below --pose_min_likelihood; lower it or re-run the tracker"

    def __init__(self, cfg):
        self.min_likelihood, self.margin = cfg.pose_min_likelihood, cfg.pose_box_margin
        self.num_keypoints, self.keypoint_names, self.task = 0, [], "pose"
        self.recording, self.animal, self.layout_from = None, 0, None  # layout_from: "<file> has", "<model> was..."

    def expect_keypoints(self, names: list, source: str) -> None:
        """The keypoints a model was trained on: every file given to it is checked against them at its start."""
        self.num_keypoints, self.keypoint_names = len(names), list(names)
        self.layout_from = f"{source} was trained on"

    def prepare(self, source, individual=None) -> None:
        source = Path(source)
        path = source if is_pose_file(source) else find_pose_file(source)
        if path is None:
            raise UserError(f"no pose file beside {source}: expected {source.stem}DLC_<scorer>.h5 or .csv, "
                            f"{source.stem}.slp, {source.stem}.analysis.h5 or {source.stem}.nwb (docs/formats.md)")
        recording = read_pose_file(path, self.min_likelihood)
        if self.keypoint_names and recording.keypoint_names != self.keypoint_names:
            raise UserError(f"{path} has keypoints {recording.keypoint_names}, but {self.layout_from} "
                            f"{self.keypoint_names}; every pose file must have the same body parts in the same order")
        if path != source:
            check_frame_count(recording, video_info(source).frame_count, source)
        self.animal = recording.individual_index(individual)
        self.recording, self.layout_from = recording, self.layout_from or f"{path} has"
        self.num_keypoints, self.keypoint_names = len(recording.keypoint_names), recording.keypoint_names

    @property
    def num_frames(self) -> int:
        return self.recording.num_frames

    def detect_at(self, indices) -> list:
        return [self._detection(int(i)) for i in indices]

    @property
    def social(self) -> bool:
        """Several animals in the file: each detection carries its nearest neighbour's keypoints."""
        return self.recording is not None and len(self.recording.individuals) > 1

    def _detection(self, index: int) -> Detection:
        if index >= self.recording.num_frames:
            return Detection()
        xy, conf = self.recording.xy[index, self.animal], self.recording.conf[index, self.animal]
        present = np.isfinite(xy).all(1)
        if not present.any():
            return Detection()
        keypoints = np.concatenate([xy, conf[:, None]], 1).astype(np.float32)
        return Detection(keypoint_box(xy[present], self.margin), float(conf[present].mean()), keypoints,
                         STATUS_DETECTED, self._partner(index, xy[present].mean(0)) if self.social else None)

    def _partner(self, index: int, centre: np.ndarray) -> np.ndarray:
        """[K,3] keypoints of the other animal whose centroid is nearest in this frame; NaN when none is seen."""
        xy, conf = self.recording.xy[index], self.recording.conf[index]
        with np.errstate(all="ignore"):
            distance = np.linalg.norm(np.nanmean(xy, axis=1) - centre, axis=1)
        distance[self.animal] = np.nan
        if not np.isfinite(distance).any():
            return np.full((self.num_keypoints, 3), np.nan, np.float32)
        other = int(np.nanargmin(distance))
        return np.concatenate([xy[other], conf[other][:, None]], 1).astype(np.float32)

    def describe(self) -> dict:
        return {"detector": "pose_file", "pose_min_likelihood": self.min_likelihood,
                "pose_box_margin": self.margin, "pose_software": self.recording.software if self.recording else None}


@dataclass
class SourceInfo:
    """What a recording holds: frames (a video) or only a pose file's keypoints."""
    frame_count: int
    fps: float
    has_frames: bool


def prepare_source(path, detector, settings, individual=None) -> SourceInfo:
    """Ready the detector for one recording (a video, or a pose file alone) before its first frame; errors about
    the file (missing pose file, other keypoints, other frame count, no frame rate) come here."""
    path = Path(path)
    if is_pose_file(path):
        if not getattr(detector, "by_index", False):
            raise UserError(f"{path} is a pose file, but the detector is {settings.detector}; use --detector pose_file")
        detector.prepare(path, individual)
        fps = detector.recording.fps or settings.pose_fps
        if not fps:
            raise UserError(f"{path} does not store its frame rate ({detector.recording.software}); pass --pose_fps "
                            f"(frames per second of the recording)")
        return SourceInfo(detector.num_frames, float(fps), False)
    info = video_info(path)
    detector.prepare(path, individual)
    return SourceInfo(info.frame_count, info.fps, True)


def blank_frame_batches(num_frames: int, batch: int):
    """(first index, [None] * n) batches: the frame pipeline over a pose file, which has no pixels."""
    for first in range(0, num_frames, batch):
        yield first, [None] * min(batch, num_frames - first)


class BoxTracker:
    """keep_last_box: a missed frame reuses the last box and keypoints (status 'reused', the last confidence),
    for at most max_reuse frames in a row (0 = no limit). Without keep_last_box a miss stays 'missed'."""

    def __init__(self, keep_last_box: bool, max_reuse: int = 0):
        self.keep_last_box, self.max_reuse = keep_last_box, max_reuse
        self.last, self.misses = None, 0

    def update(self, detection: Detection) -> Detection:
        if detection.status in (STATUS_DETECTED, STATUS_INTERPOLATED):
            self.last, self.misses = detection, 0
            return detection
        self.misses += 1
        if self.keep_last_box and self.last is not None and (self.max_reuse == 0 or self.misses <= self.max_reuse):
            return Detection(self.last.box, self.last.confidence, self.last.keypoints, STATUS_REUSED)
        return Detection()


def square_crop_box(box, pad_ratio: float) -> np.ndarray:
    """Integer square [x1, y1, x2, y2] centred on the box, side max(w, h) * (1 + 2 * pad_ratio), at least 2 px."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(2, int(round(max(x2 - x1, y2 - y1) * (1 + 2 * pad_ratio))))
    cx1 = int(round((x1 + x2) / 2 - side / 2))
    cy1 = int(round((y1 + y2) / 2 - side / 2))
    return np.array([cx1, cy1, cx1 + side, cy1 + side], np.int32)


def crop_frame(frame: np.ndarray, crop_box, crop_size: int) -> np.ndarray:
    """Cut crop_box out of frame (black beyond the border) and resize to crop_size x crop_size; same channels."""
    x1, y1, x2, y2 = (int(v) for v in crop_box)
    h, w = frame.shape[:2]
    ix1, iy1, ix2, iy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    side = x2 - x1
    patch = np.zeros((side, side) + frame.shape[2:], frame.dtype)
    if ix2 > ix1 and iy2 > iy1:
        patch[iy1 - y1:iy2 - y1, ix1 - x1:ix2 - x1] = frame[iy1:iy2, ix1:ix2]
    interp = cv2.INTER_AREA if side > crop_size else cv2.INTER_LINEAR
    return cv2.resize(patch, (crop_size, crop_size), interpolation=interp)


def map_keypoints_to_crop(keypoints_xy: np.ndarray, crop_box, crop_size: int) -> np.ndarray:
    """Frame-pixel keypoints [..., 2] -> crop-pixel keypoints, exact for the crop made by crop_frame."""
    x1, y1, x2, _ = (float(v) for v in crop_box)
    scale = crop_size / (x2 - x1)
    return ((np.asarray(keypoints_xy, np.float32) - np.array([x1, y1], np.float32)) * scale).astype(np.float32)


def draw_keypoints(crop_rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """A copy of the crop with keypoints drawn: for QA images only, never for training data."""
    out = crop_rgb.copy()
    colours = [(255, 60, 60), (60, 200, 60), (60, 120, 255), (255, 200, 0), (200, 0, 200), (0, 200, 200)]
    for k, (x, y, c) in enumerate(keypoints):
        if np.isfinite(x) and np.isfinite(y) and c > 0:
            cv2.circle(out, (int(round(x)), int(round(y))), 3, colours[k % len(colours)], -1, cv2.LINE_AA)
    return out


def crop_detection(frame_bgr: np.ndarray, detection: Detection, crop_size: int, pad_ratio: float) -> tuple:
    """(RGB crop or None, crop_box [4] or NaNs) for one frame's detection; None when the frame was missed, or
    has no pixels (a pose file without video: the crop box is still given)."""
    if detection.box is None:
        return None, np.full(4, np.nan, np.float32)
    crop_box = square_crop_box(detection.box, pad_ratio)
    if frame_bgr is None:
        return None, crop_box
    return cv2.cvtColor(crop_frame(frame_bgr, crop_box, crop_size), cv2.COLOR_BGR2RGB), crop_box


# ------------------------------------------------------------------------------------------- frame pipeline
@dataclass
class FrameRecord:
    """One frame after Stage A. Pixels: box, crop_box and keypoints in frame px; keypoints_crop in crop px.
    box/crop_box are NaN and crop/keypoints None when the animal was missed."""
    index: int
    frame: np.ndarray  # BGR, as decoded; None for a pose file without video
    status: str
    confidence: float
    box: np.ndarray
    crop_box: np.ndarray
    crop: np.ndarray = None  # RGB [crop_size, crop_size, 3]; None when missed or without video
    keypoints: np.ndarray = None  # [K, 3] (x, y, conf)
    keypoints_crop: np.ndarray = None  # [K, 3]
    scale_ref: np.ndarray = None  # [3] the video's running scale references (utils.motion.ScaleTracker)
    partner: np.ndarray = None  # [K, 3] frame px: the nearest other animal (several animals), else None

    @property
    def missed(self) -> bool:
        return self.status == STATUS_MISSED


def tracking_row(record: FrameRecord, num_kp: int) -> dict:
    """One row of a tracking table (prepare's tracking/<video>.csv, track_video.py): detection, box, crop, keypoints."""
    row = {"frame": record.index, "status": record.status, "confidence": round(record.confidence, 4)}
    row.update({f"box_{k}": v for k, v in zip(("x1", "y1", "x2", "y2"), record.box)})
    row.update({f"crop_{k}": v for k, v in zip(("x1", "y1", "x2", "y2"), record.crop_box)})
    kps = record.keypoints
    for k in range(num_kp):
        for j, axis in enumerate(("x", "y", "conf")):
            row[f"kp{k}_{axis}"] = float(kps[k, j]) if kps is not None else np.nan
    return row


def make_record(index: int, frame: np.ndarray, detection: Detection, crop_size: int, pad_ratio: float) -> FrameRecord:
    crop, crop_box = crop_detection(frame, detection, crop_size, pad_ratio)
    box = detection.box if detection.box is not None else np.full(4, np.nan, np.float32)
    kp_crop = None
    if detection.keypoints is not None and detection.box is not None:
        kp_crop = np.concatenate([map_keypoints_to_crop(detection.keypoints[:, :2], crop_box, crop_size),
                                  detection.keypoints[:, 2:]], 1).astype(np.float32)
    return FrameRecord(index, frame, detection.status, detection.confidence, box, crop_box, crop,
                       detection.keypoints, kp_crop, partner=detection.partner)


def window_arrays(records, num_keypoints: int) -> dict:
    """The per-frame arrays that pose and motion features read, for a window of FrameRecords, as the npz of
    preprocessing stores them: frame-pixel keypoints (NaN where none), boxes, scale references, and the nearest
    other animal's keypoints when there are several."""
    def stacked(rows):
        raw = np.stack([r if r is not None else np.full((num_keypoints, 3), np.nan, np.float32) for r in rows])
        return raw.astype(np.float32)
    raw = stacked([r.keypoints for r in records])
    arrays = {"keypoints_xy_raw": raw[..., :2], "keypoints_conf_raw": raw[..., 2],
              "bbox_xyxy": np.stack([r.box for r in records]).astype(np.float32),
              "scale_ref": np.stack([r.scale_ref for r in records]).astype(np.float32)}
    if any(r.partner is not None for r in records):
        partner = stacked([r.partner for r in records])
        arrays.update(partner_xy_raw=partner[..., :2], partner_conf_raw=np.nan_to_num(partner[..., 2]))
    return arrays


def interpolate_detection(a: Detection, b: Detection, t: float) -> Detection:
    """The detection a fraction t of the way from `a` to `b` (both detected): boxes and keypoint positions
    linear, confidences the lower of the two; missed when either is missed."""
    if a.box is None or b.box is None:
        return Detection()
    keypoints = None
    if a.keypoints is not None and b.keypoints is not None:
        xy = (1 - t) * a.keypoints[:, :2] + t * b.keypoints[:, :2]
        keypoints = np.concatenate([xy, np.minimum(a.keypoints[:, 2:], b.keypoints[:, 2:])], 1).astype(np.float32)
    box = ((1 - t) * a.box + t * b.box).astype(np.float32)
    return Detection(box, min(a.confidence, b.confidence), keypoints, STATUS_INTERPOLATED)


class RecordedDetector:
    """Replays the detections of an earlier run's tracking table (docs/formats.md), frame by frame, in place of
    `detector` (whose keypoint layout and description it keeps): frames that were detected give their box,
    confidence and keypoints; the others (missed, or reused by keep_last_box) give a miss, so keep_last_box and
    interpolation are applied afresh."""

    def __init__(self, table, detector):
        self.detector = detector
        self.num_keypoints, self.keypoint_names = detector.num_keypoints, detector.keypoint_names
        self.task, self.miss_hint = detector.task, detector.miss_hint
        self.by_index = True
        detected = table[table["status"] == STATUS_DETECTED]  # read into arrays once, not a table lookup per frame
        self.row_of = {int(f): i for i, f in enumerate(detected["frame"])}
        self.boxes = detected[["box_x1", "box_y1", "box_x2", "box_y2"]].to_numpy(np.float32)
        self.confidence = detected["confidence"].to_numpy(np.float32)
        columns = [f"kp{k}_{a}" for k in range(self.num_keypoints) for a in ("x", "y", "conf")]
        self.keypoints = detected[columns].to_numpy(np.float32).reshape(len(detected), self.num_keypoints, 3)

    def prepare(self, video_path, individual=None) -> None:
        """Nothing to set up: no detector runs."""

    def detect_at(self, indices) -> list:
        rows = [self.row_of.get(int(i)) for i in indices]
        return [Detection() if r is None else Detection(self.boxes[r], float(self.confidence[r]),
                                                        self.keypoints[r] if self.num_keypoints else None,
                                                        STATUS_DETECTED) for r in rows]

    def describe(self) -> dict:
        return self.detector.describe()


class SparseDetector:
    """detect_every N: the detector sees frames 0, N, 2N, ... and the video's last frame; the frames between
    two of them get interpolate_detection. Frames after the latest detected one wait (at most N - 1 of them)
    until the next detection, so results come out in frame order a little later."""

    def __init__(self, detector, every: int):
        self.detector, self.every = detector, every
        self.waiting = []  # (index, frame) after the last anchor
        self.anchor = None  # (index, Detection) of the last frame the detector saw

    def push(self, first: int, frames: list) -> list:
        """(index, frame, Detection) of every frame whose detection is known after these frames."""
        items = self.waiting + [(first + i, f) for i, f in enumerate(frames)]
        anchors = [k for k, (index, _) in enumerate(items) if index % self.every == 0]
        return self._resolve(items, anchors)

    def finish(self) -> list:
        """The frames still waiting, with the last one detected as the final anchor."""
        items = self.waiting
        return self._resolve(items, [len(items) - 1]) if items else []

    def _resolve(self, items: list, anchors: list) -> list:
        if not anchors:
            detections = []
        elif getattr(self.detector, "by_index", False):  # replays or reads by frame index, needs no pixels
            detections = self.detector.detect_at([items[k][0] for k in anchors])
        else:
            detections = self.detector.detect([items[k][1] for k in anchors])
        out, done = [], 0
        for k, detection in zip(anchors, detections):
            index = items[k][0]
            if self.anchor is not None:
                start, previous = self.anchor
                out += [(i, f, interpolate_detection(previous, detection, (i - start) / (index - start)))
                        for i, f in items[done:k]]
            out.append((index, items[k][1], detection))
            self.anchor, done = (index, detection), k + 1
        self.waiting = items[done:]
        return out


def iter_frame_records(video_path, detector, settings, timer=None, frame_batches=None):
    """The one frame pipeline of every stage: decode (in a background thread) -> detect in batches (every
    frame, or every detect_every-th with interpolation between) -> keep_last_box -> square crop -> keypoints
    into the crop -> running scale references. Yields lists of FrameRecords in frame order (settings:
    yolo_batch, detect_every, keep_last_box, max_reuse_frames, crop_size, pad_ratio). `timer` (a StageTimer) is
    charged decode, detect and crop. `frame_batches`: (first index, frames) from a live source instead of
    decoding video_path. The detector must have been prepared for this recording (prepare_source); a pose file
    alone gives records without pixels."""
    timer = timer or StageTimer()
    tracker = BoxTracker(settings.keep_last_box, settings.max_reuse_frames)
    scales = ScaleTracker(body_axis(detector.keypoint_names, detector.num_keypoints))
    every = settings.detect_every
    sparse = SparseDetector(detector, every)
    if frame_batches is None and is_pose_file(video_path):
        frame_batches = blank_frame_batches(detector.num_frames, settings.yolo_batch * every)
    elif frame_batches is None:
        # each decoded batch holds about yolo_batch frames for the detector, however sparse the detection
        frame_batches = prefetched(iter_frame_batches(video_path, settings.yolo_batch * every))
    with closing(frame_batches) as batches:
        for first, batch in timer.timed_iter("decode", batches):
            with timer.stage("detect"):
                known = sparse.push(first, batch)
            if known:
                yield _records(known, tracker, scales, settings, timer)
        with timer.stage("detect"):
            known = sparse.finish()
        if known:
            yield _records(known, tracker, scales, settings, timer)


def _records(known: list, tracker: BoxTracker, scales: ScaleTracker, settings, timer) -> list:
    with timer.stage("crop"):
        records = [make_record(index, frame, tracker.update(det), settings.crop_size, settings.pad_ratio)
                   for index, frame, det in known]
        for r in records:
            r.scale_ref = scales.update(r.box, r.keypoints, r.status == STATUS_DETECTED)
    return records
