"""Exported YOLO detectors (OpenVINO IR, ONNX) run directly on batches of frames, without Ultralytics' predictor.

The detector keeps one animal per frame: the highest-confidence box after NMS (max_det=1). NMS never suppresses
the highest-scoring candidate, so that box is simply the candidate with the highest class score above the
confidence threshold, and no NMS is needed. The frames are letterboxed by Ultralytics' own LetterBox and the
results mapped back by its own scale_boxes / scale_coords (in NumPy where the predictor uses torch), so the boxes
and keypoints are those of Ultralytics' predictor to float32 rounding, under 1e-4 px
(tests/test_detector_formats.py compares both on the exported fixture and on made-up raw outputs). What is saved
is the predictor's per-batch work around the network (tensor conversions, NMS over every candidate, a Results
object per frame: about 1 ms per frame) and Ultralytics' own OpenVINO compile, which runs in bfloat16 on CPUs
that have it and had to be redone in FP32 (bench/README.md).

Two output layouts are read: the usual one, (batch, 4 box xywh + classes + keypoints, candidates), and the
end-to-end one of NMS-free heads, (batch, candidates, 4 box xyxy + score + class + keypoints).
"""
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class ExportRunner:
    """Runs a static-shape export at input shape (h, w) and fixed batch on CPU; called with a list of frames
    (BGR uint8, any size), returns per frame (box xyxy, confidence, keypoints [K, 3] or None) in frame pixels,
    or None where nothing scored above `conf`."""

    def __init__(self, path: Path, export_format: str, precision: str, shape: tuple, batch: int, num_classes: int,
                 kpt_shape, conf: float, compile_cache: Path = None):
        from ultralytics.data.augment import LetterBox
        self.shape, self.batch, self.num_classes, self.conf = tuple(shape), batch, num_classes, conf
        self.kpt_shape = tuple(kpt_shape) if kpt_shape else None
        self.letterbox = LetterBox(new_shape=self.shape, auto=False)  # a static input: no stride padding
        self._pixels = np.zeros((batch, *self.shape, 3), np.uint8)
        self._inputs = np.zeros((batch, 3, *self.shape), np.float32)
        load = load_openvino if export_format == "openvino" else load_onnx
        self.infer, output_shape, self.compiled = load(path, precision, compile_cache)
        self.end2end = output_layout(output_shape, num_classes, self.kpt_shape, path)

    def __call__(self, frames) -> list:
        out = []
        for start in range(0, len(frames), self.batch):
            chunk = frames[start:start + self.batch]
            out += self._run_batch(chunk)
        return out

    def _run_batch(self, frames) -> list:
        """Rows past len(frames) keep an earlier batch's pixels: the export's batch is fixed, their results unused."""
        predictions = self.infer(network_input(frames, self.letterbox, self.batch, self._pixels, self._inputs))
        return [self._best(predictions[i], frame.shape) for i, frame in enumerate(frames)]

    def _best(self, prediction: np.ndarray, frame_shape: tuple):
        found = best_candidate(prediction, self.num_classes, self.kpt_shape, self.conf, self.end2end)
        if found is None:
            return None
        from ultralytics.utils import ops
        box, confidence, keypoints = found
        box = ops.scale_boxes(self.shape, box[None], frame_shape)[0]
        if keypoints is not None:
            keypoints = ops.scale_coords(self.shape, keypoints[None], frame_shape)[0]
            if keypoints.shape[1] == 2:  # keypoints without a visibility score count as seen
                keypoints = np.concatenate([keypoints, np.ones((len(keypoints), 1), np.float32)], 1)
        return box, confidence, keypoints


def network_input(frames, letterbox, batch: int, pixels: np.ndarray = None, inputs: np.ndarray = None) -> np.ndarray:
    """The network's input [batch, 3, h, w] float32 of up to `batch` frames, as Ultralytics' predictor makes it:
    letterboxed, BGR -> RGB, HWC -> CHW, uint8 -> float32 / 255 (exact in float32). Rows past len(frames) keep
    what `pixels` held (zeros when new). Given `pixels` and `inputs`, they are filled in place and reused."""
    if pixels is None:
        pixels = np.zeros((batch, *letterbox.new_shape, 3), np.uint8)
        inputs = np.zeros((batch, 3, *letterbox.new_shape), np.float32)
    for i, frame in enumerate(frames):
        pixels[i] = letterbox(image=frame)
    np.divide(pixels[..., ::-1].transpose(0, 3, 1, 2), np.float32(255), out=inputs)
    return inputs


def best_candidate(prediction: np.ndarray, num_classes: int, kpt_shape, conf: float, end2end: bool):
    """(box xyxy [4], confidence, keypoints [K, dims] or None) of one image's raw output, in input pixels, or None:
    the candidate with the highest class score, if above `conf` (Ultralytics' NMS with max_det=1 keeps it)."""
    from ultralytics.utils import ops
    if end2end:  # (candidates, 6 + keypoints): xyxy, score, class, keypoints
        scores = prediction[:, 4]
        best = int(scores.argmax())
        box, extra = prediction[best, :4].copy(), prediction[best, 6:]
    else:  # (4 + classes + keypoints, candidates): xywh, class scores, keypoints
        scores = prediction[4:4 + num_classes].max(0)
        best = int(scores.argmax())
        box = ops.xywh2xyxy(prediction[:4, best][None].copy())[0]
        extra = prediction[4 + num_classes:, best]
    if not scores[best] > conf:
        return None
    keypoints = extra.reshape(kpt_shape).copy() if kpt_shape else None
    return box, float(scores[best]), keypoints


def output_layout(output_shape, num_classes: int, kpt_shape, path) -> bool:
    """True for the end-to-end layout, False for the usual one; ValueError for a layout neither reads."""
    keypoint_values = int(np.prod(kpt_shape)) if kpt_shape else 0
    shape = [int(d) for d in output_shape]
    if len(shape) == 3 and shape[1] == 4 + num_classes + keypoint_values:
        return False
    if len(shape) == 3 and shape[2] == 6 + keypoint_values:
        return True
    raise ValueError(f"{path} outputs shape {shape}, expected (batch, {4 + num_classes + keypoint_values}, "
                     f"candidates) or (batch, candidates, {6 + keypoint_values}) for {num_classes} classes and "
                     f"keypoints {kpt_shape}")


def load_openvino(path: Path, precision: str, compile_cache: Path = None) -> tuple:
    """(infer, output shape, compiled model) of an OpenVINO export folder or .xml, compiled for the CPU in FP32
    (exact; an INT8 export's FP32 parts too) or, for bf16, in OpenVINO's default precision (bfloat16 on CPUs that
    have it). Compiled models are cached by OpenVINO in `compile_cache`, which halves later compiles."""
    import openvino as ov
    xml = Path(path) if Path(path).is_file() else next(Path(path).glob("*.xml"))
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if precision != "bf16":
        config["INFERENCE_PRECISION_HINT"] = ov.Type.f32
    if compile_cache:
        config["CACHE_DIR"] = str(compile_cache)
    compiled = ov.Core().compile_model(str(xml), "CPU", config)
    if precision == "bf16" and compiled.get_property("INFERENCE_PRECISION_HINT") != ov.Type.bf16:
        log.info("this CPU has no bfloat16 support: OpenVINO runs the detector in %s",
                 compiled.get_property("INFERENCE_PRECISION_HINT"))
    return (lambda x: compiled(x)[0]), compiled.output(0).get_shape(), compiled


def load_onnx(path: Path, precision: str = "fp32", compile_cache: Path = None) -> tuple:
    """(infer, output shape, session) of an ONNX export on ONNX Runtime's CPU provider."""
    import onnxruntime
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return (lambda x: session.run(None, {name: x})[0]), session.get_outputs()[0].shape, session
