"""Stage A detectors: what finds the animal in each frame, behind one interface, created by name from one registry
(`DETECTORS.names()`, `build_detector(name, cfg)`):
    yolo        Ultralytics YOLO detect or pose weights, run on batches of frames
    background  median background + largest foreground blob, for a static camera; needs no weights
    pose_file   keypoints from another tracker's pose file (DeepLabCut, SLEAP, Anipose 3D, NWB:
                utils.readers.pose_io), beside the video or alone; the box is the keypoints' extent plus a margin.
                Without a video there are no pixels: the records carry boxes and keypoints only, which pose-only
                models need.
Wrappers the frame pipeline puts around one: RecordedDetector (replays an earlier run's tracking table) and
SparseDetector (detect_every N, interpolating between).

Callers ask a detector what it can do through the capabilities `Detector` declares (keypoints and their names,
whether it needs frames, whether it reads pose files, whether it runs on a live stream, its batch size, the frame
rate its source stores), never by its name or by probing attributes.
"""
import logging
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from utils.config import inapplicable_settings
from utils.detection.detector_backends import (AGREEMENT_PX, Backend, candidate_backends, checked_agreement,
                                               checked_quantization, export_exists, exported_weights, machine_key,
                                               openvino_compile_cache, remember_agreement, remember_choice,
                                               remembered_choice)
from utils.detection.quantize import (AUTO_MIN_FRAMES, CALIBRATION_FRAMES, CHECK_FRAMES, INT8_MIN_AGREEMENT,
                                     frame_agreement)
from utils.device import resolve_device, set_cpu_threads
from utils.errors import UserError, first_line
from utils.detection.export_runtime import ExportRunner
from utils.detection.safe_weights import check_detector_weights
from utils.features.motion import nan_mean
from utils.results.kinematics import keypoint_box
from utils.readers.pose_io import (check_frame_count, conform_keypoints, find_pose_file, is_pose_file,
                                   parse_keypoint_map, read_pose_file)
from utils.registry import Registry
from utils.data.video_io import sample_frames, video_info

log = logging.getLogger(__name__)
STATUS_DETECTED, STATUS_REUSED, STATUS_MISSED = "detected", "reused", "missed"
STATUS_INTERPOLATED = "interpolated"  # detect_every > 1: between two detections, not run through the detector


@dataclass
class Detection:
    """One frame's result. box: xyxy frame pixels or None; keypoints: [K,3] (x, y, conf) frame pixels or None,
    [K,4] (x, y, conf, z) from 3D pose files (z the height; the box is the floor-plane extent); partner: the
    nearest other animal's keypoints [K,3] (pose files with several animals; NaN when none is seen)."""
    box: np.ndarray = None
    confidence: float = 0.0
    keypoints: np.ndarray = None
    status: str = STATUS_MISSED
    partner: np.ndarray = None


DETECTORS = Registry("detector")


class Detector:
    """What the frame pipeline, preprocessing and the predictor may ask of any detector.

    Capabilities:
        task              "detect" (boxes only) or "pose" (boxes and keypoints)
        num_keypoints     keypoints per detection (0 without), and keypoint_names (may be [] when unnamed)
        spatial_dims      2, or 3 after prepare() on a 3D pose file (keypoints carry their height z)
        needs_frames      False: detect_at(frame indices) gives detections without pixels (pose files, replays);
                          True: detect(frames) looks at decoded frames
        reads_pose_files  a pose file may be given in place of a video
        streams           works on frames as they arrive (live sources); False when it must see the whole
                          recording first (the background model)
        batch_size        frames per detect() call that suit it (YOLO: the yolo_batch setting; 1 for the others)
        fps               after prepare(): the frame rate the source itself stores (pose files), else None
        recording         after prepare(): the pose file's every animal (utils.readers.pose_io), else None
        weights_file      the weights it loaded (a change means new detections), else None
        miss_hint         what to check when the animal was found in no frame
        label             what messages call it: its weights file, or its registry name
    """
    task = "detect"
    num_keypoints: int
    keypoint_names: list
    needs_frames = True
    reads_pose_files = False
    streams = False
    batch_size = 1
    spatial_dims = 2
    fps = recording = weights_file = None
    miss_hint = "check the detector settings"

    @property
    def label(self) -> str:
        return DETECTORS.name_of(type(self)) or type(self).__name__

    def prepare(self, source, individual=None) -> None:
        """Ready for one recording before its first frame (`individual`: which animal of a multi-animal file)."""

    def detect(self, frames) -> list:
        """One Detection per decoded BGR frame."""
        raise NotImplementedError(f"{type(self).__name__} reads detections by frame index (detect_at)")

    def detect_at(self, indices) -> list:
        """One Detection per frame index, without pixels (needs_frames False)."""
        raise NotImplementedError(f"{type(self).__name__} needs decoded frames (detect)")

    def expect_keypoints(self, names: list, source: str, spatial_dims: int = None) -> None:
        """The keypoints a model was trained on (and whether 2D or 3D), told before the first recording: a detector
        whose layout comes with each recording checks every one against them; a detector whose layout comes from
        its weights is checked once by the predictor, so this does nothing."""

    def describe(self) -> dict:
        """Its settings, for the outputs' metadata."""
        raise NotImplementedError


def detector_class(name: str) -> type:
    """The registered detector class of a name: its capabilities, without building it."""
    return DETECTORS.get(name)


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
    agreement_share: float = None  # INT8: share of a video's check frames that agreed with FP32 (quantize.py)
    path: Path = None  # the cached export
    backend: Backend = None  # how it was exported and runs


def build_detector(name: str, cfg) -> Detector:
    """A detector from the registry, configured by a PreprocessingConfig (or anything with its fields)."""
    return DETECTORS.get(name)(cfg)


def warn_ignored_settings(settings) -> None:
    """Log each preprocessing setting given a non-default value that the chosen detector does not read (the schema
    declares which detector each setting is for)."""
    context = {"detector": ({settings.detector}, settings.detector)}
    for name, why in inapplicable_settings(SimpleNamespace(preprocessing=settings), ("preprocessing",), context):
        log.warning("%s is ignored: %s", name, why)


@DETECTORS.register("yolo")
class YoloDetector(Detector):
    """Ultralytics YOLO in any format it loads (.pt, TorchScript, ONNX, an OpenVINO folder), one predict call per
    batch of frames, highest-confidence box only (max_det=1 after NMS). The keypoint layout, task and native input
    size are read from the .pt model, or from what an exported model reports after one warm-up call, so exported
    models keep them."""
    streams = True

    def __init__(self, cfg):
        self.conf, self.iou = cfg.yolo_conf, cfg.yolo_iou
        self.device = resolve_device(cfg.device)
        self.num_threads = cfg.num_threads
        self.weights = str(cfg.yolo_weights)
        self.model = load_yolo(cfg.yolo_weights)
        self.half, self.backends, self.backend_name, self.agreement_px = False, [], "torch", None
        self.agreement_share, self.video = None, None
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
        """Which faster runtimes to try (utils.detection.detector_backends). They are exported and checked on the first
        batch of real frames (_choose_runtime), at the input shape PyTorch gives those frames."""
        self.timed, self.batch_size = requested == "auto", batch
        self.runtimes = {}  # letterboxed input shape (h, w) -> Runtime used for frames of that shape
        backends = candidate_backends(requested, self.device)
        if backends and Path(self.weights).suffix != ".pt":
            log.info("detector backend %s: %s is already exported, used as it is", requested, self.weights)
            backends = []
        self.half = not backends and self.timed and self.device.startswith("cuda")  # no TensorRT: PyTorch in fp16
        self.backends = backends

    def prepare(self, source, individual=None) -> None:
        """Remembers the video: an INT8 export is calibrated and checked on frames spread over it."""
        self.video = Path(source) if Path(str(source)).is_file() else None

    def _video_frames(self, count: int, offset: float) -> list:
        if self.video is None:
            raise UserError("openvino_int8 is calibrated on frames of the video it runs on; this source is not a "
                            "video file (a live camera or stream): use --detector_backend openvino")
        # a short video: calibration and check frames interleave, never the same frames
        return sample_frames(self.video, max(1, min(count, video_info(self.video).frame_count // 2)), offset)

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
            if backend.quantized and self.timed and not self._worth_quantizing(backend, shape):
                continue
            try:
                path = exported_weights(self.weights, backend, shape, self.batch_size, self.device,
                                        lambda: self._video_frames(CALIBRATION_FRAMES, 0.0))
                runtime = self._export_runtime(backend, path, shape)
                if backend.quantized and not self._quantization_agrees(runtime):
                    continue
            except UserError as exc:
                log.warning("%s; not using %s", exc, backend.name)
                continue
            except Exception as exc:  # Ultralytics' runtime internals may change between versions
                log.warning("cannot run %s's export of %s (%s: %s); not using it", backend.name, self.weights,
                            type(exc).__name__, first_line(exc))
                continue
            if not backend.quantized:
                runtime.agreement_px = checked_agreement(path, backend)
            loaded.append(runtime)
        return loaded

    def _worth_quantizing(self, backend: Backend, shape: tuple) -> bool:
        """auto: an INT8 export already made, or a video long enough to make one from (AUTO_MIN_FRAMES)."""
        if export_exists(self.weights, backend, shape, self.batch_size):
            return True
        frames = video_info(self.video).frame_count if self.video is not None else 0
        if frames < AUTO_MIN_FRAMES:
            log.info("detector backend auto: %s not tried (made once from a video of at least %d frames; this one has "
                     "%d); --detector_backend %s makes it from this one", backend.name, AUTO_MIN_FRAMES, frames,
                     backend.name)
        return frames >= AUTO_MIN_FRAMES

    def _quantization_agrees(self, runtime: Runtime) -> bool:
        """Whether an INT8 export agrees with FP32 (PyTorch) on enough check frames of the video it was
        calibrated on (utils.detection.quantize); measured once per export and remembered with it."""
        record = checked_quantization(runtime.path, runtime.backend)
        if record is None:
            frames = self._video_frames(CHECK_FRAMES, 0.5)  # halfway between the calibration frames
            record = {**frame_agreement(self._predict(self.model, frames), runtime.run(frames), AGREEMENT_PX),
                      "video": str(self.video)}
            remember_agreement(runtime.path, runtime.backend, **record)
        share, close = record["agreement_share"], record["close_share"]
        if share < INT8_MIN_AGREEMENT:
            log.warning("detector backend %s agreed with FP32 on %.1f%% of %d check frames of %s (needed %.0f%%: "
                        "box and keypoints within 5%% of the animal's size): not used", runtime.name, 100 * share,
                        record["check_frames"], record.get("video"), 100 * INT8_MIN_AGREEMENT)
            return False
        if self.timed and close < INT8_MIN_AGREEMENT:  # auto asks more: frame labels change with sub-pixel moves
            log.info("detector backend auto leaves %s out: %.1f%% of %d check frames of %s within 2%% of the animal's "
                     "size (needs %.0f%%); --detector_backend %s uses it", runtime.name, 100 * close,
                     record["check_frames"], record.get("video"), 100 * INT8_MIN_AGREEMENT, runtime.name)
            return False
        log.info("detector backend %s agreed with FP32 on %.1f%% of %d check frames of %s (%.1f%% within 2%% of the "
                 "animal's size; largest difference %.1f px)", runtime.name, 100 * share, record["check_frames"],
                 record.get("video"), 100 * close, record["agreement_px"])
        runtime.agreement_px, runtime.agreement_share = record["agreement_px"], share
        return True

    def _export_runtime(self, backend: Backend, path: Path, shape: tuple) -> Runtime:
        """OpenVINO and ONNX exports on the CPU run directly (utils.detection.export_runtime: Ultralytics' results
        without its predictor, about 1 ms per frame sooner); TensorRT, and anything on CUDA, through Ultralytics."""
        if backend.export_format in ("openvino", "onnx") and self.device == "cpu":
            runner = ExportRunner(path, backend.export_format, backend.precision, shape, self.batch_size,
                                  len(self.model.names), self.layout.kpt_shape, self.conf, openvino_compile_cache())
            return Runtime(backend.name, lambda frames: [self._found_detection(f) for f in runner(frames)], runner,
                           shape, path=path, backend=backend)
        model = load_yolo(path)
        return Runtime(backend.name, lambda frames: self._predict(model, frames, self.batch_size, shape), model, shape,
                       path=path, backend=backend)

    def _torch_runtime(self) -> Runtime:
        return Runtime("torch", lambda frames: self._predict(self.model, frames), self.model)

    def _choose_runtime(self, frames, shape: tuple) -> tuple:
        """(Runtime for frames of this input shape, its detections of `frames`). The exports are made at the
        letterboxed shape PyTorch itself uses for these frames, so both see the same pixels; an export is used only
        if its boxes and keypoints agreed with PyTorch's within AGREEMENT_PX on the first frames it saw (remembered
        per export and runtime version, so later runs skip the check). `auto` keeps whichever of PyTorch and the
        agreeing exports ran this batch fastest (it depends on the CPU: bench/README.md) and remembers it."""
        key = machine_key(self.weights, shape, self.batch_size, self.device) if self.timed else None
        remembered = remembered_choice(key) if key else None
        timed = self.timed and remembered is None
        backends = [b for b in self.backends if remembered is None or b.name == remembered]
        runtimes = self._exported_runtimes(shape, backends)
        checked = [r for r in runtimes if r.agreement_px is not None]
        if checked and not timed:  # this export agreed on its first use: not checked on every run
            chosen = checked[0]
            if chosen.agreement_share is None:  # INT8's check has just been logged
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
        self.agreement_share = chosen.agreement_share
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
            if difference > AGREEMENT_PX and runtime.agreement_share is None:  # INT8 was checked on its share
                reduced = runtime.backend.precision != "fp32"
                log.warning("detector backend %s differs from PyTorch by up to %.1f px on the first %d frames (limit "
                            "%.1f px): not used%s", runtime.name, difference, len(frames), AGREEMENT_PX,
                            f" (it computes in {runtime.backend.precision}; an FP32 runtime such as openvino or onnx "
                            f"agrees exactly)" if reduced else "")
                continue
            if runtime.agreement_share is None:
                log.info("detector backend %s agrees with PyTorch within %.2f px on the first %d frames (input "
                         "%dx%d)", runtime.name, difference, len(frames), runtime.imgsz[1], runtime.imgsz[0])
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

    @property
    def label(self) -> str:
        return self.weights

    @property
    def weights_file(self) -> Path:
        return Path(self.weights)

    def describe(self) -> dict:
        return {"detector": "yolo", "yolo_weights": self.weights, "yolo_task": self.task, "yolo_conf": self.conf,
                "yolo_iou": self.iou, "yolo_imgsz": self.imgsz, "detector_backend": self.backend_name,
                "detector_backend_agreement_px": self.agreement_px,
                "detector_backend_agreement_share": self.agreement_share, "detector_half": self.half}


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
    check_detector_weights(path)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO
    try:
        return YOLO(str(path))
    except Exception as exc:  # Ultralytics raises many types for a bad file; all mean the same to the user
        raise UserError(f"cannot load YOLO weights {path}: {type(exc).__name__}: {first_line(exc)}; "
                        f"the file is not Ultralytics weights or is damaged, export or copy it again") from None


@DETECTORS.register("background")
class BackgroundDetector(Detector):
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
class PoseFileDetector(Detector):
    """Keypoints of one animal from a pose file (utils.readers.pose_io): the file itself, or the one beside the video.
    Its box is the extent of the keypoints present, grown by pose_box_margin of the extent's longer side on every
    side; its confidence the mean likelihood of those keypoints. A frame without any keypoint above
    pose_min_likelihood is a miss. The keypoint layout comes from the first file (its names after keypoint_map);
    every later file, and at inference every file given to a model, is read in that layout: keypoints found by
    name (after keypoint_map, then ignoring case and punctuation), others of the file left out, a missing one an
    error unless the map declares it absent (utils.readers.pose_io.conform_keypoints)."""
    needs_frames, reads_pose_files = False, True
    miss_hint = "every point of the pose file is missing or below --pose_min_likelihood; lower it or re-run the tracker"

    def __init__(self, cfg):
        self.min_likelihood, self.margin = cfg.pose_min_likelihood, cfg.pose_box_margin
        self.keypoint_map = parse_keypoint_map(getattr(cfg, "keypoint_map", None))
        self.num_keypoints, self.keypoint_names, self.task = 0, [], "pose"
        self.recording, self.animal, self.layout_from = None, 0, None  # layout_from: "<file> has", "<model> was..."
        self.expected_dims = None  # a model's 2 or 3 (expect_keypoints), else the first file's

    def expect_keypoints(self, names: list, source: str, spatial_dims: int = None) -> None:
        """The keypoints a model was trained on (and 2D or 3D): every file given to it is checked against them at
        its start."""
        self.num_keypoints, self.keypoint_names = len(names), list(names)
        self.layout_from, self.expected_dims = f"{source} was trained on", spatial_dims

    def prepare(self, source, individual=None) -> None:
        source = Path(source)
        path = source if is_pose_file(source) else find_pose_file(source)
        if path is None:
            raise UserError(f"no pose file beside {source}: expected {source.stem}DLC_<scorer>.h5 or .csv, "
                            f"{source.stem}.slp, {source.stem}.analysis.h5 or {source.stem}.nwb (docs/formats.md)")
        recording = read_pose_file(path, self.min_likelihood)
        expected = self.keypoint_names or [self.keypoint_map.get(n, n) for n in recording.keypoint_names]
        recording, notes = conform_keypoints(recording, expected, self.keypoint_map,
                                             self.layout_from or "the keypoint map gives")
        if notes:
            log.info("%s: keypoints %s", path, "; ".join(notes))
        if path != source:
            check_frame_count(recording, video_info(source).frame_count, source)
        self.check_dims(recording)
        self.animal = recording.individual_index(individual)
        self.recording, self.layout_from = recording, self.layout_from or f"{path} has"
        self.num_keypoints, self.keypoint_names = len(recording.keypoint_names), recording.keypoint_names
        self.spatial_dims = self.expected_dims = recording.spatial_dims

    def check_dims(self, recording) -> None:
        """Every file 2D or every file 3D, as the model (or the first file) is: a 2D model cannot use heights and
        a 3D one cannot do without them."""
        if self.expected_dims and recording.spatial_dims != self.expected_dims:
            want = "3D (x, y, z)" if self.expected_dims == 3 else "2D (x, y)"
            have = "3D (x, y, z)" if recording.spatial_dims == 3 else "2D (x, y)"
            raise UserError(f"{recording.path} has {have} keypoints, but {self.layout_from or 'the first file has'} "
                            f"{want} ones; give every recording (and the model) the same kind of pose file")

    @property
    def num_frames(self) -> int:
        return self.recording.num_frames

    @property
    def fps(self):
        return self.recording.fps if self.recording is not None else None

    @property
    def software(self) -> str:
        """The tracker that wrote the current recording."""
        return self.recording.software

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
        height = [] if self.recording.z is None else [self.recording.z[index, self.animal, :, None]]
        keypoints = np.concatenate([xy, conf[:, None]] + height, 1).astype(np.float32)
        return Detection(keypoint_box(xy[present], self.margin), float(conf[present].mean()), keypoints,
                         STATUS_DETECTED, self._partner(index, xy[present].mean(0)) if self.social else None)

    def _partner(self, index: int, centre: np.ndarray) -> np.ndarray:
        """[K,3] keypoints of the other animal whose centroid is nearest in this frame; NaN when none is seen."""
        xy, conf = self.recording.xy[index], self.recording.conf[index]
        distance = np.linalg.norm(nan_mean(xy, axis=1) - centre, axis=1)
        distance[self.animal] = np.nan
        if not np.isfinite(distance).any():
            return np.full((self.num_keypoints, 3), np.nan, np.float32)
        other = int(np.nanargmin(distance))
        return np.concatenate([xy[other], conf[other][:, None]], 1).astype(np.float32)

    def describe(self) -> dict:
        return {"detector": "pose_file", "pose_min_likelihood": self.min_likelihood,
                "pose_box_margin": self.margin, "pose_software": self.recording.software if self.recording else None}


def interpolate_detection(a: Detection, b: Detection, t: float) -> Detection:
    """The detection a fraction t of the way from `a` to `b` (both detected): boxes and keypoint positions
    linear, confidences the lower of the two; missed when either is missed."""
    if a.box is None or b.box is None:
        return Detection()
    keypoints = None
    if a.keypoints is not None and b.keypoints is not None:
        xy = (1 - t) * a.keypoints[:, :2] + t * b.keypoints[:, :2]
        conf = np.minimum(a.keypoints[:, 2:3], b.keypoints[:, 2:3])
        z = (1 - t) * a.keypoints[:, 3:] + t * b.keypoints[:, 3:]  # 3D pose files: the height moves like x and y
        keypoints = np.concatenate([xy, conf, z], 1).astype(np.float32)
    box = ((1 - t) * a.box + t * b.box).astype(np.float32)
    return Detection(box, min(a.confidence, b.confidence), keypoints, STATUS_INTERPOLATED)


class RecordedDetector(Detector):
    """Replays the detections of an earlier run's tracking table (docs/formats.md), frame by frame, in place of
    `detector` (whose keypoint layout and description it keeps): frames that were detected give their box,
    confidence and keypoints; the others (missed, or reused by keep_last_box) give a miss, so keep_last_box and
    interpolation are applied afresh."""
    needs_frames = False

    def __init__(self, detector, frames, boxes, confidence, keypoints):
        """The detected frames' indices [N], boxes [N, 4], confidences [N] and keypoints [N, K, 3]."""
        self.detector = detector
        self.num_keypoints, self.keypoint_names = detector.num_keypoints, detector.keypoint_names
        self.task, self.miss_hint, self.batch_size = detector.task, detector.miss_hint, detector.batch_size
        self.row_of = {int(f): i for i, f in enumerate(frames)}
        self.boxes = np.asarray(boxes, np.float32)
        self.confidence = np.asarray(confidence, np.float32)
        self.keypoints = np.asarray(keypoints, np.float32).reshape(len(self.boxes), self.num_keypoints, 3)

    @classmethod
    def from_table(cls, table, detector) -> "RecordedDetector":
        """From a tracking table (read into arrays once, not a table lookup per frame)."""
        detected = table[table["status"] == STATUS_DETECTED]
        columns = [f"kp{k}_{a}" for k in range(detector.num_keypoints) for a in ("x", "y", "conf")]
        return cls(detector, detected["frame"].to_numpy(), detected[["box_x1", "box_y1", "box_x2", "box_y2"]].to_numpy(),
                   detected["confidence"].to_numpy(), detected[columns].to_numpy())

    def prepare(self, video_path, individual=None) -> None:
        """Nothing to set up: no detector runs."""

    def detect_at(self, indices) -> list:
        rows = [self.row_of.get(int(i)) for i in indices]
        return [Detection() if r is None else Detection(self.boxes[r], float(self.confidence[r]),
                                                        self.keypoints[r] if self.num_keypoints else None,
                                                        STATUS_DETECTED) for r in rows]

    @property
    def label(self) -> str:
        return self.detector.label

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
        elif not self.detector.needs_frames:  # replays or reads by frame index
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
