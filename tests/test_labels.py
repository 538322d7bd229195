"""Per-frame label import: `frame,behavior` CSV and BORIS tabular events (a real export from ../shared)."""
import pytest

from utils.errors import UserError
from utils.labels import find_label_file, load_frame_labels


def test_frame_csv(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("frame,behavior\n0,walk\n1,walk\n3,rest\n9,rest\n")
    labels = load_frame_labels(path, num_frames=5, fps=30)
    assert labels.labels == ["walk", "walk", None, "rest", None]  # frame 9 lies beyond the video
    assert labels.label_at(2) is None and labels.label_at(2, "other") == "other"
    assert labels.label_at(100) is None


def test_bad_label_files(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("frame,behavior\nx,walk\n")
    with pytest.raises(UserError, match=r"line 2: frame 'x' is not an integer"):
        load_frame_labels(path, 5, 30)
    path.write_text("time;label\n")
    with pytest.raises(UserError, match="not a label file"):
        load_frame_labels(path, 5, 30)


BORIS_HEADER = "Observation id,x\n,\nTime,Media file path,Total length,FPS,Subject,Behavior,Behavioral category,Comment,Status\n"


def test_boris_states_overlaps_and_errors(tmp_path):
    path = tmp_path / "v.csv"
    rows = ["1.0,v.avi,10,10,m,groom,,,START", "2.0,v.avi,10,10,m,groom,,,STOP",
            "1.5,v.avi,10,10,m,rear,,,START", "3.0,v.avi,10,10,m,rear,,,STOP"]
    path.write_text(BORIS_HEADER + "\n".join(rows) + "\n")
    labels = load_frame_labels(path, num_frames=40, fps=10)
    assert labels.kind == "boris"
    assert labels.label_at(9) is None and labels.label_at(10) == "groom" and labels.label_at(14) == "groom"
    assert all(labels.label_at(f) is None for f in range(15, 20))  # groom and rear overlap: ambiguous
    assert labels.label_at(15, "other") is None  # background_label never fills ambiguous frames
    assert labels.label_at(20) == "rear" and labels.label_at(29) == "rear" and labels.label_at(30) is None
    path.write_text(BORIS_HEADER + "1.0,v.avi,10,10,m,groom,,,START\n")
    with pytest.raises(UserError, match="without STOP"):
        load_frame_labels(path, 40, 10)


def test_real_boris_export(shared_data):
    path = shared_data / "boris" / "e3v813a-20210610T120637-121213_reencode_multiple_behaviors.csv"
    fps, frames = 30.0, int(336 * 30)
    labels = load_frame_labels(path, frames, fps)
    # first events of this export: interact 17.075-22.100 s, mount 18.075-23.100 s (they overlap)
    assert labels.label_at(int(round(17.5 * fps))) == "interact"
    assert labels.label_at(int(round(20.0 * fps))) is None  # both at once: ambiguous
    assert labels.label_at(int(round(22.5 * fps))) == "mount"
    assert labels.label_at(int(round(5.0 * fps))) is None
    assert len(labels.ambiguous) > 0
    assert {lab for lab in labels.labels if lab} == {"interact", "mount"}


def test_find_label_file_prefers_csv_beside_the_video(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    assert find_label_file(tmp_path / "a.mp4") is None
    (tmp_path / "a.csv").write_text("frame,behavior\n")
    assert find_label_file(tmp_path / "a.mp4") == tmp_path / "a.csv"
