"""Shared fixtures: tiny generated datasets (made once per session), the committed tiny YOLO-pose, shared data."""
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")  # Ultralytics must never reach the network in tests
# detector exports (utils.detection.detector_backends) go to a fresh folder per test run, not the user's cache; the
# xdist workers of a run share it, as a batch's shards on one machine share the user's (each export is made once;
# tests that need a cache of their own set one)
if os.environ.get("PYTEST_XDIST_TESTRUNUID"):
    os.environ.setdefault("BEHAVIORSCOPE_CACHE", os.path.join(tempfile.gettempdir(), "behaviorscope_test_cache_"
                                                              + os.environ["PYTEST_XDIST_TESTRUNUID"]))
os.environ.setdefault("BEHAVIORSCOPE_CACHE", tempfile.mkdtemp(prefix="behaviorscope_test_cache_"))


def pin_xdist_worker() -> None:
    """Under pytest-xdist (README: `-n 2`) each worker runs on a core of its own: two processes each spreading torch
    and OpenVINO threads over both cores spend their time waiting on each other, not computing."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) > 1:
            os.sched_setaffinity(0, {cores[int(worker.lstrip("gw")) % len(cores)]})


pin_xdist_worker()

# Modules whose shared fixtures take tens of seconds (they train models or detect whole videos), slowest first, from
# per-file sums of `python3 -m pytest -q -n 2 --durations=0`. With `--dist loadfile` a free worker takes the next
# module, so the long ones go first and the two workers finish together; pytest.ini turns off xdist's own order (by
# number of tests, which put a 43 s module of 4 tests last). test_detector_formats is second so that the two
# workers do not both start on modules waiting for the shared pose_manifest.
SLOW_MODULES_FIRST = ("test_infer.py", "test_detector_formats.py", "test_gui.py", "test_pose_files.py",
                      "test_train.py", "test_prepare.py", "test_sensors.py", "test_distributed.py", "test_docs.py",
                      "test_embeddings.py", "test_dense.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOW_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each module's own order is kept


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TINY_YOLO = ROOT / "tests" / "fixtures" / "tiny_yolo_pose.pt"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_yolo() -> Path:
    assert TINY_YOLO.is_file(), f"missing test fixture {TINY_YOLO}; make it with tools/train_tiny_yolo.py"
    return TINY_YOLO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def class_folder_dataset(tmp_path_factory) -> Path:
    """3 behaviours x 2 clips x 45 frames, class-per-folder layout, with ground truth."""
    from utils.synthetic import make_class_folder_dataset
    root = tmp_path_factory.mktemp("clips")
    make_class_folder_dataset(root, videos_per_class=2, num_frames=45, seed=3, behaviors=("walk", "groom", "rear"))
    return root


@pytest.fixture(scope="session")
def long_video_dataset(tmp_path_factory) -> Path:
    """2 labelled videos of 150 frames with frame,behavior CSVs and ground truth."""
    from utils.synthetic import make_long_video_dataset
    root = tmp_path_factory.mktemp("long")
    make_long_video_dataset(root, num_videos=2, num_frames=150, seed=5)
    return root


def prepare_args(*argv):
    """Parsed arguments for prepare_sequences_from_yolo.main, as the CLI would give them."""
    from prepare_sequences_from_yolo import get_args_parser
    return get_args_parser().parse_args([str(a) for a in argv])


def prepared_pose_files(root: Path, recordings: int, frames: int, seed: int, train_ratio: float,
                        extra: tuple = ()) -> Path:
    """Generated pose files without video (root/data, `recordings` of `frames` at 30 fps, and 2 held-out ones of
    other animals in root/held_out) prepared with --detector pose_file (window 30, stride 10, the rest of the
    recordings validate; `extra` preprocessing flags): the manifest's path."""
    from prepare_sequences_from_yolo import main as prepare
    from utils.synthetic import make_pose_file_dataset
    make_pose_file_dataset(root / "data", recordings, frames, seed=seed)
    make_pose_file_dataset(root / "held_out", 2, frames, seed=seed + 1)
    prepare(prepare_args("--dataset_root", root / "data", "--output_root", root / "prepared", "--detector", "pose_file",
                         "--pose_fps", 30, "--window_size", 30, "--window_stride", 10, "--train_ratio", train_ratio,
                         "--val_ratio", round(1 - train_ratio, 2), "--test_ratio", 0, *extra))
    return root / "prepared" / "sequence_manifest.json"


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder made by build(folder) once per test run: under xdist the first worker to ask builds it while the
    others wait on a lock, then all read it (tests must not write into it)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.mktemp(name)
        build(root)
        return root
    from filelock import FileLock
    root = tmp_path_factory.getbasetemp().parent / name  # the run's folder, above each worker's own
    with FileLock(f"{root}.lock"):
        if not (root / ".complete").is_file():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            build(root)
            (root / ".complete").touch()
    return root


@pytest.fixture(scope="session")
def pose_manifest(tmp_path_factory, tiny_yolo) -> Path:
    """4 behaviours x 3 clips x 64 frames prepared with the tiny YOLO-pose: window 16, stride 8, crop 48,
    split by video (2 clips per class train, 1 val)."""
    from prepare_sequences_from_yolo import main as prepare
    from utils.synthetic import make_class_folder_dataset

    def build(root):
        make_class_folder_dataset(root / "clips", videos_per_class=3, num_frames=64, seed=11,
                                  behaviors=("walk", "rest", "groom", "turn"))
        prepare(prepare_args("--dataset_root", root / "clips", "--output_root", root / "prepared", "--yolo_weights",
                             tiny_yolo, "--yolo_imgsz", "320", "--device", "cpu", "--crop_size", "48",
                             "--window_size", "16", "--window_stride", "8", "--train_ratio", "0.67", "--val_ratio",
                             "0.33", "--test_ratio", "0"))
    return built_once(tmp_path_factory, "pose_data", build) / "prepared" / "sequence_manifest.json"


def train_args(manifest, out, *argv):
    """Parsed arguments for train_behavior_lstm.main: a small, fast pose-only model by default."""
    from train_behavior_lstm import get_args_parser
    base = ["--manifest_path", manifest, "--output_dir", out, "--backbone", "none", "--use_pose",
            "--hidden_dim", "32", "--pose_fusion_dim", "32", "--lr", "3e-3", "--batch_size", "8",
            "--num_workers", "0", "--device", "cpu", "--dropout", "0.2"]
    return get_args_parser().parse_args([str(a) for a in base + list(argv)])
