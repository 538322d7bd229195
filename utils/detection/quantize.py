"""INT8 detectors: the FP32 OpenVINO export quantised after training by NNCF, calibrated on frames of the user's
own video, and used only where it agrees with FP32.

Post-training quantisation (NNCF's MinMax + fast bias correction, preset MIXED) turns the convolutions' weights and
activations into 8-bit integers: on this project's 2-core CPU the yolov8n-pose network ran 2.2-2.5x faster than in
FP32 at 416x320 (bench/README.md). As in Ultralytics' own INT8 export, the head's decoding (the sigmoids and every
operation after the last convolutions: anchors, strides, the distribution focal loss) stays in FP32, so boxes and
keypoints are decoded exactly from slightly different convolution outputs.

Calibration needs frames that look like the ones the detector will see: CALIBRATION_FRAMES frames spread evenly over
the first video it runs on (the lighting, arena and animal of the user's rig), never a public dataset (nothing is
downloaded). The agreement check runs on CHECK_FRAMES other frames of that video, halfway between the calibration
ones: a frame agrees when FP32 and INT8 both find the animal or both miss it and every box corner and keypoint is
within INT8_TOLERANCE of the animal's size (the longer side of FP32's box; at least AGREEMENT_PX). The share of
agreeing frames and the largest difference are stored with the export; it is used only when the share is at least
INT8_MIN_AGREEMENT, else the detector falls back with a warning naming the share.
"""
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
CALIBRATION_FRAMES = 128  # NNCF's statistics converge well before its default of 300 samples for a one-animal scene
CHECK_FRAMES = 64
INT8_TOLERANCE = 0.05  # of the animal's size (longer side of FP32's box)
INT8_MIN_AGREEMENT = 0.99  # share of check frames that must agree


def quantize_openvino(fp32_export: Path, frames: list, shape: tuple, batch: int, target: Path) -> None:
    """Write to folder `target` the INT8 version of the FP32 OpenVINO export folder `fp32_export` (input shape
    (h, w), fixed batch), calibrated on `frames` (BGR uint8, any size; letterboxed as the detector does)."""
    import nncf
    import openvino as ov
    from ultralytics.data.augment import LetterBox
    from utils.detection.export_runtime import network_input
    xml = next(Path(fp32_export).glob("*.xml"))
    model = ov.Core().read_model(str(xml))
    letterbox = LetterBox(new_shape=tuple(shape), auto=False)
    batches = [network_input(frames[i:i + batch], letterbox, batch) for i in range(0, len(frames), batch)]
    nncf.set_log_level(logging.WARNING)  # NNCF logs every operation it leaves out at INFO
    quantized = nncf.quantize(model, nncf.Dataset(batches), preset=nncf.QuantizationPreset.MIXED,
                              subset_size=len(batches), ignored_scope=decoding_ops(model))
    target.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(target / xml.name))
    metadata = Path(fp32_export) / "metadata.yaml"  # Ultralytics' description of the model (names, kpt_shape)
    if metadata.is_file():
        (target / metadata.name).write_bytes(metadata.read_bytes())


def decoding_ops(model):
    """NNCF's ignored scope: the head's sigmoids and every operation of the head after its convolutions (named
    `<head>/...` or `<head>.dfl...` by the PyTorch trace), which turn the raw outputs into boxes and keypoints."""
    import nncf
    ops = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        return nncf.IgnoredScope()
    head = sigmoids[-1].split("/", 1)[0]
    return nncf.IgnoredScope(names=[op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"
                                    or op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl"))],
                             validate=False)


def frame_agreement(reference: list, trial: list, floor_px: float) -> dict:
    """How far INT8 detections (`trial`) are from FP32 ones (`reference`, Detections of the same frames):
    share of frames that agree (module docstring), the largest difference in px over the frames where both found
    the animal, and the frame count."""
    agree, worst = [], 0.0
    for a, b in zip(reference, trial):
        if (a.box is None) != (b.box is None):
            agree.append(False)
            continue
        if a.box is None:
            agree.append(True)
            continue
        difference = float(np.abs(a.box - b.box).max())
        if a.keypoints is not None and b.keypoints is not None:
            difference = max(difference, float(np.abs(a.keypoints[:, :2] - b.keypoints[:, :2]).max()))
        size = float(max(a.box[2] - a.box[0], a.box[3] - a.box[1]))
        agree.append(difference <= max(floor_px, INT8_TOLERANCE * size))
        worst = max(worst, difference)
    return {"agreement_share": float(np.mean(agree)) if agree else 0.0, "agreement_px": worst,
            "check_frames": len(agree)}
