"""Faster runtimes for the YOLO detector: export once, cache, check against PyTorch, fall back with a warning.

The detector is 88-96% of the time on a CPU (bench/README.md), and Ultralytics' own exporters make the same
weights run faster in OpenVINO or ONNX Runtime (CPU) and TensorRT (NVIDIA GPU). `--detector_backend`:
    torch      the weights as given (any format Ultralytics loads)
    openvino   OpenVINO IR, FP32 (CPU)
    openvino_bf16  the same IR in OpenVINO's default precision: bfloat16 on CPUs that have it (else FP32).
               Opt-in, never chosen by auto: 1.5x FP32 OpenVINO's speed end to end on this project's CPU, but not
               exact. Boxes and keypoints move by a median 0.2 px (up to 7 px where two candidate boxes score
               alike), and 1-3.5% of per-frame labels changed on the accuracy bench (bench/README.md)
    openvino_int8  the openvino export's backbone and neck quantised to 8-bit integers by NNCF (the head stays
               FP32; utils.detection.quantize), calibrated on frames of the first video it runs on and checked
               against FP32 on other frames of it: used when at least 99% of them agree (box and keypoints within
               5% of the animal's size); auto times it only when 99% are within 2%. Not exact: on the accuracy
               bench 1.7% of frame labels changed (bench/README.md). Needs the nncf package and a video file
               (not a live source)
    onnx       ONNX Runtime, FP32
    tensorrt   TensorRT engine, FP16 (CUDA only; the tensorrt package must be installed)
    auto       on CUDA: tensorrt when installed, else PyTorch in half precision. On CPU: PyTorch and every
               installed export (openvino, onnx, openvino_int8) are timed on the first batch of real frames and
               the fastest that agrees is kept (INT8 only where its stricter check passed). Which one wins depends on the CPU: on this project's 2-core test machine
               OpenVINO in FP32 ran 1.11x and 1.24x PyTorch end to end in two runs, 0.96x in a third: the machine
               drifts more than that (bench/README.md)
The choice auto makes is remembered per machine (CPU model, torch threads), weights, input shape and batch
(`choices/` in the cache), so later runs load only the winner. Only PyTorch weights (.pt) are exported; other
formats are used as they are.
Exports are made at the input shape PyTorch gives the frames (the long side imgsz, the short side padded to the
stride: 416x320 for 640x480 video at 416), not a square: they then see the same pixels as PyTorch and agree with
it to float precision, and do a quarter less work. A square export letterboxes differently and moved boxes by up
to 4.5 px. Exports are cached under BEHAVIORSCOPE_CACHE (default ~/.cache/behaviorscope)/detectors/, keyed by the
weights' SHA-256, the backend, input shape, batch and precision, and the Ultralytics version, so each is made once
per machine and frame size. Nothing is downloaded: a runtime that is not installed (or an export that fails)
falls back to PyTorch with a warning. The first time an export is used, its boxes and keypoints on the first
frames are compared with PyTorch's (`AGREEMENT_PX`); a larger difference also falls back to PyTorch, with a
warning naming the difference. An agreement is remembered (`checks/` in the cache, with the runtime's version), so
later runs skip the comparison and never set up PyTorch's predictor (about 0.5 s).
`openvino` runs in FP32, so it agrees exactly. On a CPU, OpenVINO and ONNX exports are run by
utils.detection.export_runtime, not Ultralytics' predictor (the same results, about 1 ms per frame sooner);
TensorRT, and anything on CUDA, by Ultralytics.
"""
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from utils.detection.safe_weights import check_detector_weights
from utils.errors import UserError, first_line
from utils.io import atomic_write_json
from utils.registry import Registry

log = logging.getLogger(__name__)
AGREEMENT_PX = 2.0  # largest box-corner or keypoint difference from PyTorch accepted, in frame pixels
DIRECT_RUNNER = "direct-1"  # the version of utils.detection.export_runtime's decoding, part of every remembered check
BACKENDS = Registry("detector backend")


class Backend:
    """One runtime: the Ultralytics export format, the module it needs, where it runs, its precision (fp32,
    fp16: exported in half precision, bf16: OpenVINO's bfloat16 on CPUs that have it), and whose export it runs
    (openvino_bf16 compiles the openvino export differently; it is made and cached once for both)."""

    def __init__(self, name: str, export_format: str, module: str, cuda_only: bool = False, precision: str = "fp32",
                 exports_as: str = "", quantizer: str = ""):
        self.name, self.export_format, self.module = name, export_format, module
        self.cuda_only, self.precision, self.half = cuda_only, precision, precision == "fp16"
        self.exports_as, self.quantizer = exports_as or name, quantizer
        self.quantized = bool(quantizer)  # checked by the share of agreeing frames, not the largest difference

    def available(self, device: str) -> str:
        """'' when usable on `device`, else why not."""
        if self.cuda_only and not device.startswith("cuda"):
            return f"{self.name} needs a CUDA device (running on {device})"
        for module in filter(None, (self.module, self.quantizer)):
            if importlib.util.find_spec(module) is None:
                return f"the {module} package is not installed (pip install {module})"
        if self.quantized and device != "cpu":
            return f"{self.name} runs on the CPU (running on {device})"
        return ""


for _backend in (Backend("torch", "", ""), Backend("openvino", "openvino", "openvino"),
                 Backend("openvino_bf16", "openvino", "openvino", precision="bf16", exports_as="openvino"),
                 Backend("openvino_int8", "openvino", "openvino", precision="int8", quantizer="nncf"),
                 Backend("onnx", "onnx", "onnxruntime"), Backend("tensorrt", "engine", "tensorrt", True, "fp16")):
    BACKENDS.register(_backend.name)(_backend)
BACKEND_CHOICES = ("auto", *BACKENDS.names())


def candidate_backends(requested: str, device: str) -> list:
    """The exported runtimes to try besides PyTorch: `auto` gives every installed one for the device (the
    detector then keeps the fastest that agrees with PyTorch); a named one that is not usable gives none, with a
    warning."""
    if requested == "auto":
        names = ("tensorrt",) if device.startswith("cuda") else ("openvino", "onnx", "openvino_int8")
        return [BACKENDS.get(n) for n in names if not BACKENDS.get(n).available(device)]
    backend = BACKENDS.get(requested)
    why = backend.available(device)
    if why:
        log.warning("detector backend %s is not usable: %s; using PyTorch", requested, why)
    return [] if why or backend.name == "torch" else [backend]


def machine_key(weights, shape: tuple, batch: int, device: str) -> str:
    """What auto's timing depends on: the weights, input shape (h, w), batch, device, CPU model and torch's
    threads."""
    import torch
    import ultralytics
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), "")
    text = f"{file_hash(Path(weights))}|{shape[0]}x{shape[1]}|{batch}|{device}|{cpu}|{torch.get_num_threads()}|{ultralytics.__version__}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def remembered_choice(key: str):
    """The backend auto chose earlier on this machine for these weights and settings, or None."""
    path = cache_root() / "choices" / f"{key}.json"
    try:
        return json.loads(path.read_text())["backend"]
    except (OSError, ValueError, KeyError):
        return None


def remember_choice(key: str, backend: str, timings: dict) -> None:
    path = cache_root() / "choices" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"backend": backend, "seconds_per_batch": timings})


def checked_agreement(export: Path, backend: Backend):
    """The difference from PyTorch (px) measured when this export was first used, or None: never checked, or
    checked with another version of its runtime."""
    try:
        record = json.loads(check_record(export, backend).read_text())
    except (OSError, ValueError):
        return None
    return record.get("agreement_px") if record.get("runtime") == runtime_version(backend) else None


def remember_agreement(export: Path, backend: Backend, agreement_px: float, **details) -> None:
    atomic_write_json(check_record(export, backend), {"agreement_px": agreement_px,
                                                      "runtime": runtime_version(backend), **details})


def checked_quantization(export: Path, backend: Backend):
    """What the agreement check of an INT8 export measured (utils.detection.quantize.frame_agreement, with the
    video it was calibrated and checked on), or None: never checked, or checked with another runtime version."""
    try:
        record = json.loads(check_record(export, backend).read_text())
    except (OSError, ValueError):
        return None
    complete = {"agreement_share", "close_share", "check_frames"} <= set(record)
    return record if record.get("runtime") == runtime_version(backend) and complete else None


def check_record(export: Path, backend: Backend) -> Path:
    """Beside the export's cache folder, not in it (the folder holds only what Ultralytics loads); one per runtime
    that runs the export (openvino and openvino_bf16 share one)."""
    folder = Path(export).parent  # the cache folder named by export_key
    variant = "" if backend.name == backend.exports_as else f"_{backend.name}"
    return folder.parent / "checks" / f"{folder.name}{variant}.json"


def runtime_version(backend: Backend) -> str:
    """The runtime's version and the direct runner's (utils.detection.export_runtime): a check remembered from
    before either changed is made again once."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"{backend.module} {version(backend.module)} {DIRECT_RUNNER}"
    except (PackageNotFoundError, ValueError):
        return f"{backend.module} {DIRECT_RUNNER}"


def cache_root() -> Path:
    return Path(os.environ.get("BEHAVIORSCOPE_CACHE") or Path.home() / ".cache" / "behaviorscope") / "detectors"


def openvino_compile_cache() -> Path:
    """OpenVINO's own cache of compiled models (its CACHE_DIR), keyed by it on the model, device and settings."""
    return cache_root() / "openvino_compiled"


def file_hash(path: Path) -> str:
    """SHA-256 of a file, read once per process while its size and time stay the same."""
    stat = Path(path).stat()
    return _hash_of(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=32)
def _hash_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_key(weights: Path, backend: Backend, shape: tuple, batch: int) -> str:
    import ultralytics
    precision = backend.precision if backend.precision in ("fp16", "int8") else "fp32"
    return (f"{file_hash(weights)[:16]}_{backend.exports_as}_{shape[1]}x{shape[0]}px_b{batch}_{precision}"
            f"_u{ultralytics.__version__}")


def export_exists(weights, backend: Backend, shape: tuple, batch: int) -> bool:
    return (cache_root() / export_key(Path(weights), backend, shape, batch)).exists()


def exported_weights(weights, backend: Backend, shape: tuple, batch: int, device: str,
                     calibration_frames=None) -> Path:
    """Path of the cached export of `weights` for `backend` at input shape (h, w), made now when missing
    (atomically: a folder renamed into place, so an interrupted export is never used). A quantised backend is made
    from the FP32 export and `calibration_frames()` (called only when it is made; UserError when it cannot give
    frames)."""
    weights = Path(weights)
    target = cache_root() / export_key(weights, backend, shape, batch)
    if target.exists():
        return exported_file(target)
    if backend.quantized:
        fp32 = exported_weights(weights, BACKENDS.get(backend.export_format), shape, batch, device)
        frames = calibration_frames() if calibration_frames else []
        if not frames:
            raise UserError(f"{backend.name} is calibrated on frames of a video, and none was given")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export_", dir=target.parent))
    try:
        if backend.quantized:
            from utils.detection.quantize import quantize_openvino
            log.info("quantising %s to %s on %d frames (input %dx%d, batch %d), once; cached in %s", weights,
                     backend.name, len(frames), shape[1], shape[0], batch, target)
            name = fp32.name.replace("_openvino_model", "_int8_openvino_model")
            quantize_openvino(fp32, frames, shape, batch, work / name)
        else:
            export_with_ultralytics(weights, backend, shape, batch, device, work, target)
    except Exception as exc:  # exporters raise many types; all mean the same: no accelerated model
        shutil.rmtree(work, ignore_errors=True)
        raise UserError(f"exporting {weights} to {backend.name} failed: {type(exc).__name__}: "
                        f"{first_line(exc)}") from None
    publish_export(work, target)
    return exported_file(target)


def publish_export(work: Path, target: Path) -> None:
    """Rename a finished export into place. Another process sharing the cache (a batch shard on the same machine)
    may have put the same export there meanwhile: theirs is kept and this one dropped."""
    try:
        os.replace(work, target)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
        if not target.is_dir():
            raise


def export_with_ultralytics(weights: Path, backend: Backend, shape: tuple, batch: int, device: str, work: Path,
                            target: Path) -> None:
    """Ultralytics' own export of `weights` into the folder `work` (to be renamed to `target`)."""
    copy = work / weights.name  # Ultralytics writes the export beside the weights it is given
    shutil.copyfile(weights, copy)
    check_detector_weights(copy)  # the copy is what Ultralytics unpickles
    from ultralytics import YOLO
    log.info("exporting %s to %s (input %dx%d, batch %d), once; cached in %s", weights, backend.name, shape[1],
             shape[0], batch, target)
    YOLO(str(copy)).export(format=backend.export_format, imgsz=list(shape), batch=batch, device=device,
                           dynamic=False, verbose=False, **export_precision(backend.half))
    copy.unlink()


def export_precision(half: bool) -> dict:
    """Ultralytics' export argument for the precision: `quantize` since 8.4 (which warns about `half`), `half`
    before it."""
    from ultralytics.cfg import DEFAULT_CFG_DICT
    return {"quantize": 16 if half else None} if "quantize" in DEFAULT_CFG_DICT else {"half": half}


def exported_file(folder: Path) -> Path:
    """The model Ultralytics loads from a cache folder: the OpenVINO folder, the .onnx or the .engine file."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) != 1:
        raise UserError(f"the detector cache {folder} is incomplete ({len(entries)} entries); delete it and run again")
    return entries[0]
