"""Any format Ultralytics loads keeps its keypoints: the tiny fixture exported to ONNX, OpenVINO and TorchScript
gives the same keypoint layout, native size and (within a few px) the same keypoints in the npz as the .pt."""
import logging
import shutil

import numpy as np
import pytest

from conftest import prepare_args
from detectors import build_detector
from prepare_sequences_from_yolo import main as prepare
from utils.schema import PreprocessingConfig
from utils.synthetic import KEYPOINT_NAMES

FORMATS = ("onnx", "openvino", "torchscript")


@pytest.fixture(scope="module")
def exported(tiny_yolo, tmp_path_factory) -> dict:
    from ultralytics import YOLO
    work = tmp_path_factory.mktemp("exports")
    weights = shutil.copy(tiny_yolo, work / "tiny.pt")
    paths = {"pt": work / "tiny.pt"}
    for fmt in FORMATS:  # static batch 16 at the training size, as a lab would export for CPU speed
        extra = {"simplify": False} if fmt == "onnx" else {}  # onnxslim is not a requirement
        paths[fmt] = YOLO(str(weights)).export(format=fmt, imgsz=320, batch=16, verbose=False, **extra)
    return paths


@pytest.mark.parametrize("fmt", ("pt",) + FORMATS)
def test_every_format_reports_keypoints_names_and_native_size(exported, fmt):
    detector = build_detector("yolo", PreprocessingConfig(yolo_weights=str(exported[fmt]), device="cpu"))
    assert detector.task == "pose" and detector.num_keypoints == 6
    assert detector.keypoint_names == list(KEYPOINT_NAMES)
    assert detector.native_imgsz == 320 and detector.imgsz == 320  # no imgsz given: the detector's own


def test_imgsz_other_than_the_training_size_warns(exported, caplog):
    with caplog.at_level(logging.WARNING):
        detector = build_detector("yolo", PreprocessingConfig(yolo_weights=str(exported["pt"]), device="cpu",
                                                              yolo_imgsz=640))
    assert detector.imgsz == 640
    assert "yolo_imgsz 640 differs from the 320 px" in caplog.text


@pytest.fixture(scope="module")
def npz_keypoints(exported, class_folder_dataset, tmp_path_factory) -> dict:
    """{format: {window id: keypoints [T,K,3] in crop px}} from preprocessing the same clips."""
    out = {}
    for fmt in ("pt", "onnx", "openvino"):
        root = tmp_path_factory.mktemp(f"prep_{fmt}")
        manifest = prepare(prepare_args("--dataset_root", class_folder_dataset, "--output_root", root,
                                        "--yolo_weights", exported[fmt], "--device", "cpu", "--crop_size", "96",
                                        "--window_size", "15", "--window_stride", "15"))
        assert manifest["meta"]["num_keypoints"] == 6 and manifest["meta"]["keypoint_names"] == list(KEYPOINT_NAMES)
        assert manifest["meta"]["yolo_imgsz"] == 320
        out[fmt] = {e["id"]: np.load(root / e["npz"])["keypoints"]
                    for entries in manifest["splits"].values() for e in entries}
    return out


@pytest.mark.parametrize("fmt", ("onnx", "openvino"))
def test_exported_keypoints_reach_the_npz_like_the_pytorch_ones(npz_keypoints, fmt):
    reference, got = npz_keypoints["pt"], npz_keypoints[fmt]
    assert set(got) == set(reference) and len(got) == 18  # 6 clips x 45 frames / 15
    errors = np.concatenate([np.linalg.norm(got[w][..., :2] - reference[w][..., :2], axis=-1).ravel()
                             for w in reference])
    assert np.median(errors) < 1.0 and np.percentile(errors, 95) < 3.0, (np.median(errors), errors.max())


def backend_detector(tiny_yolo, backend: str):
    return build_detector("yolo", PreprocessingConfig(yolo_weights=str(tiny_yolo), device="cpu", yolo_imgsz=320,
                                                      detector_backend=backend))


@pytest.fixture(scope="module")
def frames():
    from utils.synthetic import render_video, sample_label_sequence
    return render_video(sample_label_sequence(40, np.random.default_rng(0)), seed=3).frames


@pytest.mark.parametrize("backend", ("onnx", "openvino"))
def test_accelerated_backend_is_exported_once_checked_and_agrees(tiny_yolo, frames, backend, monkeypatch, caplog):
    import utils.detection.detector_backends as backends
    reference = backend_detector(tiny_yolo, "torch").detect(frames)
    with caplog.at_level(logging.INFO):
        detector = backend_detector(tiny_yolo, backend)
        fast = detector.detect(frames[:16]) + detector.detect(frames[16:21]) + detector.detect(frames[21:])
    assert detector.describe()["detector_backend"] == backend, caplog.text
    # exported at the shape PyTorch letterboxes these frames to: the same pixels, so float-precision agreement
    assert detector.describe()["detector_backend_agreement_px"] < 0.05 < backends.AGREEMENT_PX
    for a, b in zip(reference, fast):  # every frame, the padded partial batch included
        np.testing.assert_allclose(a.box, b.box, atol=backends.AGREEMENT_PX)
        np.testing.assert_allclose(a.keypoints[:, :2], b.keypoints[:, :2], atol=backends.AGREEMENT_PX)
    assert len(fast) == len(frames)

    def no_second_export(*args, **kwargs):
        raise AssertionError("exported again instead of using the cache")
    monkeypatch.setattr("ultralytics.YOLO.export", no_second_export)
    monkeypatch.setattr("detectors.detection_difference", lambda a, b: pytest.fail("checked again"))
    again = backend_detector(tiny_yolo, backend)
    for a, b in zip(fast, again.detect(frames[:3])):  # the agreement measured on first use is remembered
        np.testing.assert_allclose(a.keypoints[:, :2], b.keypoints[:, :2], atol=1e-3)
    assert again.describe()["detector_backend"] == backend
    assert again.describe()["detector_backend_agreement_px"] == detector.describe()["detector_backend_agreement_px"]


def test_each_frame_size_gets_an_export_at_its_own_input_shape(tiny_yolo, frames):
    import cv2
    tall = [cv2.resize(f, (f.shape[1] // 2, f.shape[0])) for f in frames[:4]]  # another aspect ratio
    torch_detector, detector = backend_detector(tiny_yolo, "torch"), backend_detector(tiny_yolo, "onnx")
    for batch in (frames[:4], tall, frames[4:8]):
        for a, b in zip(torch_detector.detect(batch), detector.detect(batch)):
            np.testing.assert_allclose(a.box, b.box, atol=0.05)
    shapes = sorted(detector.runtimes)
    assert len(shapes) == 2 and all(max(s) == 320 and min(s) % 32 == 0 and min(s) < 320 for s in shapes), shapes
    assert {r.name for r in detector.runtimes.values()} == {"onnx"}


def test_letterbox_shape_is_pytorchs_rectangular_input():
    from detectors import letterbox_shape
    assert letterbox_shape((480, 640), 416, 32) == (320, 416)  # 312 rows padded up to the stride
    assert letterbox_shape((480, 640), 640, 32) == (480, 640)
    assert letterbox_shape((1080, 1920), 640, 32) == (384, 640)  # 360 rows padded up to the stride
    assert letterbox_shape((640, 480), 320, 32) == (320, 256)


def test_a_disagreeing_or_missing_backend_falls_back_to_pytorch_with_a_warning(tiny_yolo, frames, monkeypatch,
                                                                               caplog):
    import detectors
    monkeypatch.setattr(detectors, "checked_agreement", lambda path, backend: None)  # a first use: checked
    monkeypatch.setattr(detectors, "detection_difference", lambda a, b: 9.0)
    with caplog.at_level(logging.WARNING):
        detector = backend_detector(tiny_yolo, "onnx")
        detector.detect(frames[:4])
    assert detector.describe()["detector_backend"] == "torch" and "differs from PyTorch by up to 9.0 px" in caplog.text
    assert "computes in" not in caplog.text  # an FP32 runtime gets no precision hint
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        detector = backend_detector(tiny_yolo, "openvino_bf16")
        detector.detect(frames[:4])
    assert detector.describe()["detector_backend"] == "torch"
    assert "computes in bf16; an FP32 runtime such as openvino or onnx agrees exactly" in caplog.text
    caplog.clear()
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with caplog.at_level(logging.WARNING):
        detector = backend_detector(tiny_yolo, "openvino")
    assert detector.describe()["detector_backend"] == "torch" and "not installed" in caplog.text


def test_auto_tries_the_installed_cpu_runtimes_and_tensorrt_needs_cuda():
    from utils.detection.detector_backends import BACKENDS, candidate_backends
    assert {b.name for b in candidate_backends("auto", "cpu")} == {"openvino", "onnx", "openvino_int8"}  # requirements
    assert "CUDA" in BACKENDS.get("tensorrt").available("cpu")
    assert candidate_backends("tensorrt", "cpu") == [] and candidate_backends("torch", "cpu") == []


@pytest.mark.parametrize("torch_seconds,expected", [(1.0, "export"), (0.1, "torch")])
def test_auto_keeps_the_fastest_runtime_that_agrees(tiny_yolo, frames, monkeypatch, torch_seconds, expected):
    import detectors
    from detectors import YoloDetector
    remembered = {}
    monkeypatch.setattr(detectors, "remembered_choice", lambda key: None)
    monkeypatch.setattr(detectors, "remember_choice", lambda key, name, timings: remembered.update({key: name}))
    monkeypatch.setattr(YoloDetector, "_seconds",
                        lambda self, runtime, f: torch_seconds if runtime.name == "torch" else 0.5)
    detector = backend_detector(tiny_yolo, "auto")
    detector.detect(frames[:8])
    used = detector.describe()["detector_backend"]
    assert (used == "torch") == (expected == "torch") and used in ("torch", "openvino", "onnx", "openvino_int8")
    assert list(remembered.values()) == [used]


def test_auto_loads_only_the_runtime_it_chose_before_on_this_machine(tiny_yolo, frames, monkeypatch):
    import detectors
    import utils.detection.detector_backends as backends
    from detectors import YoloDetector
    exported = []
    monkeypatch.setattr(detectors, "remembered_choice", lambda key: "onnx")
    monkeypatch.setattr(YoloDetector, "_seconds", lambda *a: pytest.fail("timed again"))
    monkeypatch.setattr(detectors, "exported_weights", lambda w, backend, *a: exported.append(backend.name) or
                        backends.exported_weights(w, backend, *a))
    detector = backend_detector(tiny_yolo, "auto")
    detector.detect(frames[:8])
    assert exported == ["onnx"] and detector.describe()["detector_backend"] == "onnx"


def test_openvino_bf16_keeps_the_cpus_reduced_precision_and_is_still_checked(tiny_yolo, frames, caplog):
    import openvino as ov
    from pathlib import Path
    from utils.detection.detector_backends import AGREEMENT_PX, BACKENDS, check_record

    def compiled_precision(detector):
        runtime = next(iter(detector.runtimes.values()))
        return runtime, runtime.model.compiled.get_property("INFERENCE_PRECISION_HINT")

    exact = backend_detector(tiny_yolo, "openvino")
    exact.detect(frames[:16])
    assert compiled_precision(exact)[1] == ov.Type.f32
    with caplog.at_level(logging.WARNING):
        detector = backend_detector(tiny_yolo, "openvino_bf16")
        detector.detect(frames[:16])
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    if detector.describe()["detector_backend"] == "torch":  # its first frames moved more than the limit
        assert "openvino_bf16 differs from PyTorch" in caplog.text and "computes in bf16" in caplog.text
        return
    runtime, precision = compiled_precision(detector)
    assert runtime.path == compiled_precision(exact)[0].path  # one export, compiled two ways, checked apart
    records = {check_record(runtime.path, BACKENDS.get(name)) for name in ("openvino", "openvino_bf16")}
    assert len(records) == 2 and all(r.is_file() for r in records)
    assert (precision == ov.Type.bf16) == ("avx512_bf16" in cpu or "amx_bf16" in cpu)
    assert detector.describe()["detector_backend"] == "openvino_bf16"
    assert detector.describe()["detector_backend_agreement_px"] <= AGREEMENT_PX


@pytest.mark.parametrize("backend", ("onnx", "openvino"))
def test_an_export_run_directly_gives_ultralytics_own_results(tiny_yolo, frames, backend):
    import openvino as ov
    from detectors import load_yolo
    detector = backend_detector(tiny_yolo, backend)
    direct = detector.detect(frames[:16]) + detector.detect(frames[16:21])  # a full and a padded partial batch
    runtime = next(iter(detector.runtimes.values()))
    assert runtime.name == backend and type(runtime.model).__name__ == "ExportRunner"
    model = load_yolo(runtime.path)
    if backend == "openvino":  # Ultralytics compiles in the CPU's default precision: give it the runner's FP32 one
        detector._predict(model, frames[:1], 16, runtime.imgsz)
        assert runtime.model.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
        model.predictor.model.backend.ov_compiled_model = runtime.model.compiled
    predicted = [d for chunk in (frames[:16], frames[16:21])
                 for d in detector._predict(model, chunk, 16, runtime.imgsz)]
    assert sum(d.box is not None for d in direct) >= 18
    for a, b in zip(predicted, direct):
        assert (a.box is None) == (b.box is None)
        if a.box is not None:
            # float32 rounding apart (the mapping to frame pixels runs in NumPy, not torch)
            np.testing.assert_allclose(a.box, b.box, rtol=0, atol=1e-4)
            np.testing.assert_allclose(a.keypoints, b.keypoints, rtol=0, atol=1e-4)
            assert a.confidence == pytest.approx(b.confidence, abs=1e-5)


@pytest.mark.parametrize("end2end", (False, True))
def test_the_best_candidate_is_what_ultralytics_nms_keeps(end2end):
    """Made-up raw outputs with two classes, 3 keypoints and several overlapping candidates: the direct decoding
    keeps the box Ultralytics' NMS keeps with max_det=1, mapped back to the frame the same way."""
    import torch
    from ultralytics.utils import nms, ops
    from utils.detection.export_runtime import ExportRunner, best_candidate
    rng = np.random.default_rng(0)
    shape, frame_shape, kpt_shape, conf = (320, 416), (480, 640, 3), (3, 3), 0.25
    for trial in range(20):
        n = 50
        xywh = np.c_[rng.uniform(50, 350, (n, 2)), rng.uniform(10, 80, (n, 2))].astype(np.float32)
        scores = rng.uniform(0, 0.2 if trial % 5 == 0 else 0.9, (n, 2)).astype(np.float32)  # some with no box
        kpts = rng.uniform(0, 400, (n, 9)).astype(np.float32)
        if end2end:
            raw = np.c_[ops.xywh2xyxy(xywh), scores.max(1), scores.argmax(1), kpts].astype(np.float32)
            raw = raw[np.argsort(-raw[:, 4])]  # NMS-free heads give their candidates best first
            kept = nms.non_max_suppression(torch.from_numpy(raw[None]), conf, 0.7, max_det=1, nc=2, end2end=True)[0]
        else:
            raw = np.c_[xywh, scores, kpts].T.copy()
            kept = nms.non_max_suppression(torch.from_numpy(raw[None]), conf, 0.7, max_det=1, nc=2)[0]
        found = best_candidate(raw, 2, kpt_shape, conf, end2end)
        assert (found is None) == (len(kept) == 0) == (trial % 5 == 0)
        if found is None:
            continue
        np.testing.assert_array_equal(found[0], kept[0, :4].numpy())
        np.testing.assert_array_equal(found[2].ravel(), kept[0, 6:].numpy())
        runner = ExportRunner.__new__(ExportRunner)  # only its mapping to frame pixels, no model
        runner.shape, runner.num_classes, runner.kpt_shape = shape, 2, kpt_shape
        runner.conf, runner.end2end = conf, end2end
        box, _, keypoints = runner._best(raw, frame_shape)
        expected = ops.scale_boxes(shape, kept[:, :4].clone(), frame_shape)[0].numpy()
        np.testing.assert_allclose(box, expected, rtol=0, atol=1e-4)
        expected = ops.scale_coords(shape, kept[:, 6:].view(1, 3, 3).clone(), frame_shape)[0].numpy()
        np.testing.assert_allclose(keypoints, expected, rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory):
    """A detector cache of the INT8 tests' own: the first makes the INT8 export in it, the others check it anew."""
    return tmp_path_factory.mktemp("int8_cache")


@pytest.fixture(scope="module")
def int8_video(frames, tmp_path_factory):
    from utils.synthetic import write_video
    path = tmp_path_factory.mktemp("int8") / "rig.mp4"
    write_video(path, frames)
    return path


def test_openvino_int8_is_calibrated_on_the_video_checked_on_other_frames_and_remembered(tiny_yolo, frames,
                                                                                       int8_video, int8_cache,
                                                                                       monkeypatch):
    import json
    import detectors
    monkeypatch.setenv("BEHAVIORSCOPE_CACHE", str(int8_cache))  # not the export an earlier test's prepare made
    from utils.detection.detector_backends import BACKENDS, check_record
    from utils.detection.quantize import INT8_MIN_AGREEMENT, INT8_TOLERANCE
    calibrated = []
    real_sample = detectors.sample_frames
    monkeypatch.setattr(detectors, "sample_frames", lambda path, count, offset: calibrated.append(offset) or
                        real_sample(path, count, offset))
    reference = backend_detector(tiny_yolo, "torch").detect(frames)
    detector = backend_detector(tiny_yolo, "openvino_int8")
    detector.prepare(int8_video)
    quantized = detector.detect(frames[:16]) + detector.detect(frames[16:])
    described = detector.describe()
    assert described["detector_backend"] == "openvino_int8"
    assert INT8_MIN_AGREEMENT <= described["detector_backend_agreement_share"] <= 1
    assert calibrated == [0.0, 0.5]  # calibration frames, then check frames halfway between them
    runtime = next(iter(detector.runtimes.values()))
    assert runtime.path.name.endswith("_int8_openvino_model") and "int8" in runtime.path.parent.name
    record = json.loads(check_record(runtime.path, BACKENDS.get("openvino_int8")).read_text())
    assert record["video"] == str(int8_video) and record["check_frames"] == len(frames) // 2  # interleaved
    moved = []
    for a, b in zip(reference, quantized):
        assert (a.box is None) == (b.box is None)
        if a.box is not None:
            size = max(a.box[2] - a.box[0], a.box[3] - a.box[1])
            moved.append(max(np.abs(a.box - b.box).max(), np.abs(a.keypoints[:, :2] - b.keypoints[:, :2]).max()))
            assert moved[-1] <= max(2.0, INT8_TOLERANCE * size) * 1.5
    assert max(moved) > 1e-3  # really another network, not the FP32 one under another name

    monkeypatch.setattr("utils.detection.quantize.quantize_openvino", lambda *a: pytest.fail("quantised again"))
    monkeypatch.setattr(detectors, "frame_agreement", lambda *a: pytest.fail("checked again"))
    again = backend_detector(tiny_yolo, "openvino_int8")
    again.prepare(int8_video)
    for a, b in zip(quantized, again.detect(frames[:4])):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)
    assert again.describe()["detector_backend_agreement_share"] == described["detector_backend_agreement_share"]


def test_openvino_int8_that_disagrees_or_has_no_video_is_not_used(tiny_yolo, frames, int8_video, monkeypatch,
                                                                  tmp_path, int8_cache, caplog):
    import detectors
    monkeypatch.setenv("BEHAVIORSCOPE_CACHE", str(tmp_path))  # a fresh cache: a live source cannot calibrate
    monkeypatch.setattr("utils.detection.quantize.quantize_openvino", lambda *a: pytest.fail("needs no export"))
    with caplog.at_level(logging.WARNING):
        live = backend_detector(tiny_yolo, "openvino_int8")
        live.detect(frames[:4])  # frames from a camera: nothing to calibrate on
    assert live.describe()["detector_backend"] == "torch" and "not a video file" in caplog.text
    monkeypatch.undo()
    monkeypatch.setenv("BEHAVIORSCOPE_CACHE", str(int8_cache))
    monkeypatch.setattr(detectors, "checked_quantization", lambda *a: None)  # checked anew
    monkeypatch.setattr(detectors, "frame_agreement", lambda reference, trial, floor: {
        "agreement_share": 0.9, "close_share": 0.5, "agreement_px": 12.0, "check_frames": len(reference)})
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        detector = backend_detector(tiny_yolo, "openvino_int8")
        detector.prepare(int8_video)
        detector.detect(frames[:4])
    assert detector.describe()["detector_backend"] == "torch"
    assert "openvino_int8 agreed with FP32 on 90.0% of 20 check frames" in caplog.text and "needed 99%" in caplog.text


def test_int8_agreement_counts_frames_within_a_share_of_the_animals_size():
    from detectors import Detection
    from utils.detection.quantize import frame_agreement
    box = np.array([100, 100, 200, 150], np.float32)  # 100 px long: 5 px allowed
    kp = np.zeros((3, 3), np.float32)
    near = Detection(box + 4, 0.9, kp + 4, "detected")
    far = Detection(box, 0.9, kp + [6, 0, 0], "detected")
    same = Detection(box, 0.9, kp, "detected")
    result = frame_agreement([same, same, same, Detection()], [near, far, Detection(), Detection()], 2.0)
    assert result == {"agreement_share": 0.5, "close_share": 0.25, "agreement_px": 6.0, "check_frames": 4}
    small = Detection(np.array([0, 0, 50, 30], np.float32), 0.9, kp, "detected")  # 50 px long: 2% is 1 px
    moved = Detection(small.box + 1.5, 0.9, kp + 1.5, "detected")  # under the 2 px floor, over 2%
    assert frame_agreement([small], [moved], 2.0)["agreement_share"] == 1.0
    assert frame_agreement([small], [moved], 2.0)["close_share"] == 0.0


def test_reduced_precision_runtimes_keep_their_own_detection_cache(tiny_yolo, int8_video):
    from types import SimpleNamespace
    from utils.detection.detection_cache import cache_file
    detector = backend_detector(tiny_yolo, "torch")
    files = {b: cache_file(int8_video, detector, SimpleNamespace(detect_every=1, detector_backend=b))
             for b in ("torch", "openvino", "onnx", "openvino_int8", "openvino_bf16", "auto")}
    assert files["torch"] == files["openvino"] == files["onnx"]  # FP32 runtimes agree within AGREEMENT_PX
    assert len({files[b] for b in ("torch", "openvino_int8", "openvino_bf16", "auto")}) == 4


def test_auto_asks_more_of_int8_than_a_request_by_name(tiny_yolo, frames, int8_video, monkeypatch, int8_cache,
                                                      caplog):
    import detectors
    monkeypatch.setenv("BEHAVIORSCOPE_CACHE", str(int8_cache))
    monkeypatch.setattr(detectors, "remembered_choice", lambda key: None)
    monkeypatch.setattr(detectors, "checked_quantization", lambda *a: None)  # checked anew
    monkeypatch.setattr(detectors, "frame_agreement", lambda reference, trial, floor: {
        "agreement_share": 1.0, "close_share": 0.95, "agreement_px": 3.0, "check_frames": len(reference)})
    named = backend_detector(tiny_yolo, "openvino_int8")
    named.prepare(int8_video)
    named.detect(frames[:4])
    assert named.describe()["detector_backend"] == "openvino_int8"
    with caplog.at_level(logging.INFO):
        auto = backend_detector(tiny_yolo, "auto")
        auto.prepare(int8_video)
        auto.detect(frames[:16])
    assert auto.describe()["detector_backend"] != "openvino_int8"
    assert "auto leaves openvino_int8 out: 95.0% of 20 check frames" in caplog.text
    caplog.clear()
    monkeypatch.setattr(detectors, "export_exists", lambda *a: False)  # as before any INT8 export
    monkeypatch.setattr("utils.detection.quantize.quantize_openvino", lambda *a: pytest.fail("quantised"))
    with caplog.at_level(logging.INFO):
        short = backend_detector(tiny_yolo, "auto")
        short.prepare(int8_video)
        short.detect(frames[:16])
    assert "openvino_int8 not tried (made once from a video of at least 1800 frames; this one has 40)" in caplog.text


def test_an_export_another_process_put_in_place_first_is_kept(tmp_path):
    """Two processes sharing the cache (batch shards on one machine) may export the same model at once: the second
    to finish keeps the first one's export instead of failing."""
    from utils.detection.detector_backends import publish_export
    target, work = tmp_path / "export", tmp_path / ".export_tmp"
    for folder, name in ((target, "theirs.onnx"), (work, "mine.onnx")):
        folder.mkdir()
        (folder / name).write_bytes(b"x")
    publish_export(work, target)
    assert [p.name for p in target.iterdir()] == ["theirs.onnx"] and not work.exists()
    fresh = tmp_path / "fresh"
    publish_export(target, fresh)
    assert [p.name for p in fresh.iterdir()] == ["theirs.onnx"]
