"""INT8 detectors: the FP32 OpenVINO export quantised after training by NNCF, calibrated on frames of the user's
own video, and used only where it agrees with FP32.

Post-training quantisation (NNCF's MinMax + fast bias correction, preset MIXED) turns the backbone's and neck's
convolutions (weights and activations) into 8-bit integers; the whole head (its convolutions, the sigmoids, the
decoding of boxes and keypoints) stays in FP32. Measured on the accuracy bench (bench/README.md, probe in the
INT8 section): quantising the head's convolutions too, as Ultralytics' own INT8 export does, ran the network 2.2-2.5x
FP32's speed but moved keypoints by a median 1.7 px and changed 4.1% of the gbt model's frame labels (macro-F1
0.946 -> 0.931); with the head in FP32 the network ran 1.6x FP32's speed, keypoints moved 0.7 px and 1.7% of labels
changed (macro-F1 0.944).

Calibration needs frames that look like the ones the detector will see: CALIBRATION_FRAMES frames spread evenly over
the first video it runs on (the lighting, arena and animal of the user's rig), never a public dataset (nothing is
downloaded). The agreement check runs on CHECK_FRAMES other frames of that video, halfway between the calibration
ones: a frame agrees when FP32 and INT8 both find the animal or both miss it and every box corner and keypoint is
within a share of the animal's size (the longer side of FP32's box). The shares of frames within INT8_TOLERANCE
(5%: beyond it the export is broken) and within INT8_CLOSE (2%) and the largest difference are stored with the
export. Asked for by name, it is used when at least INT8_MIN_AGREEMENT of the frames are within 5% (else the
detector falls back with a warning naming the share): the user accepts INT8's small changes, as with
openvino_bf16. `auto` times it only when that many are within 2%, since even sub-pixel moves change the labels of
some frames near bout edges (bench/README.md).
"""
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
CALIBRATION_FRAMES = 128  # NNCF's statistics converge well before its default of 300 samples for a one-animal scene
CHECK_FRAMES = 64
INT8_TOLERANCE = 0.05  # of the animal's size (longer side of FP32's box): asked for by name
INT8_CLOSE = 0.02  # of the animal's size: what auto asks
INT8_MIN_AGREEMENT = 0.99  # share of check frames that must be within the tolerance
# auto makes an INT8 export only from a video this long (a minute at 30 fps): a shorter one does not repay the
# one-off calibration (about 15 s on a 2-core CPU) and spreads too few distinct frames over the rig's range
AUTO_MIN_FRAMES = 1800


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
                              subset_size=len(batches), ignored_scope=head_ops(model))
    target.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(target / xml.name))
    metadata = Path(fp32_export) / "metadata.yaml"  # Ultralytics' description of the model (names, kpt_shape)
    if metadata.is_file():
        (target / metadata.name).write_bytes(metadata.read_bytes())


def head_ops(model):
    """NNCF's ignored scope: every operation of the head (named `<head>...` by the PyTorch trace: its
    convolutions, and the decoding into boxes and keypoints) and every sigmoid."""
    import nncf
    ops = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        return nncf.IgnoredScope()
    head = sigmoids[-1].split("/", 1)[0]
    return nncf.IgnoredScope(names=[op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"
                                    or op.get_friendly_name().startswith(head)], validate=False)


def frame_agreement(reference: list, trial: list, floor_px: float) -> dict:
    """How far INT8 detections (`trial`) are from FP32 ones (`reference`, Detections of the same frames): the shares
    of frames within INT8_TOLERANCE (or `floor_px`) and INT8_CLOSE of the animal's size (module docstring),
    the largest difference in px over the frames where both found the animal, and the frame count."""
    moved, sizes = [], []  # per frame: the largest difference (inf: found by one only) and the animal's size
    for a, b in zip(reference, trial):
        if a.box is None or b.box is None:
            moved.append(0.0 if a.box is None and b.box is None else np.inf)
            sizes.append(1.0)
            continue
        difference = float(np.abs(a.box - b.box).max())
        if a.keypoints is not None and b.keypoints is not None:
            difference = max(difference, float(np.abs(a.keypoints[:, :2] - b.keypoints[:, :2]).max()))
        moved.append(difference)
        sizes.append(float(max(a.box[2] - a.box[0], a.box[3] - a.box[1], 1.0)))
    moved, sizes = np.asarray(moved, float), np.asarray(sizes, float)
    found = np.isfinite(moved)
    return {"agreement_share": float(np.mean(moved <= np.maximum(floor_px, INT8_TOLERANCE * sizes))),
            "close_share": float(np.mean(moved <= INT8_CLOSE * sizes)),
            "agreement_px": float(moved[found].max()) if found.any() else 0.0,
            "check_frames": len(moved)}
