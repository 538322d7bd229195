"""Shared fixtures: tiny generated datasets (made once per session), the committed tiny YOLO-pose, shared data."""
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")  # Ultralytics must never reach the network in tests
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
