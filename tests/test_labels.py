"""Per-frame label import: `frame,behavior` CSV and BORIS exports (old and v8/v9 tabular, aggregated; CSV, TSV, XLSX)."""
import pytest

from utils.errors import UserError
from utils.readers.labels import find_label_file, load_frame_labels


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
    path.write_text("frame,behavior\n0,walk\n1,walk\n1,walk\n1,groom\n")  # a repeated row is fine, two labels are not
    with pytest.raises(UserError, match=r"line 5: frame 1 is labelled groom but also walk \(line 3\); .* overlapping "
                                        r"behaviours are refused: keep one row per frame"):
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


TABULAR_V9 = ("Observation id,Observation date,Description,Observation duration,Observation type,Source,"
              "Time offset (s),Media duration (s),FPS,Subject,Behavior,Behavioral category,Behavior type,Time,"
              "Media file name,Image index,Image file path,Comment")
AGGREGATED_V9 = ("Observation id,Observation date,Description,Observation type,Source,Time offset (s),Total duration,"
                 "Media duration (s),FPS,Subject,Observation duration by subject by observation,Behavior,"
                 "Behavioral category,Behavior type,Start (s),Stop (s),Duration (s),Media file name,Image index start,"
                 "Image index stop,Image file path start,Image file path stop,Comment start,Comment stop")


def v9_event(subject, behavior, kind, time, index="", media="/data/day1/session.mp4"):
    return (f"obs1,2024-05-01 10:00:00,,20.0,Media file,player #1:{media},0.0,20.000,10.000,{subject},{behavior},,"
            f"{kind},{time},{media},{index},NA,")


def test_boris_v9_tabular_export_by_column_name(tmp_path, caplog):
    rows = [v9_event("m1", "groom", "START", "1.0", "10"), v9_event("m2", "rear", "START", "1.2", "12"),
            v9_event("m1", "sniff", "POINT", "1.5", "15"), v9_event("m1", "groom", "STOP", "2.0", "21"),
            v9_event("m2", "rear", "STOP", "3.0", "30")]
    (tmp_path / "session.csv").write_text(TABULAR_V9 + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(UserError, match="several subjects .m1, m2.; choose one with --boris_subject"):
        load_frame_labels(tmp_path / "session.csv", 40, 10)
    with caplog.at_level("INFO"):
        labels = load_frame_labels(tmp_path / "session.csv", 40, 10, "m1", media=tmp_path / "session.avi")
    # frames come from the Image index column (10..20, the STOP's 21 excluded), not from Time x FPS (10..19)
    assert labels.labels[9] is None and labels.labels[10:21] == ["groom"] * 11 and labels.labels[21] is None
    assert "sniff" not in labels.labels and "1 POINT events (sniff x1)" in caplog.text
    assert load_frame_labels(tmp_path / "session.csv", 40, 10, "m2").labels[12:30] == ["rear"] * 18
    with pytest.raises(UserError, match="labels session.mp4, not other.mp4; export the BORIS observation"):
        load_frame_labels(tmp_path / "session.csv", 40, 10, "m1", media=tmp_path / "other.mp4")


@pytest.mark.parametrize("suffix", [".tsv", ".xlsx"])
def test_boris_aggregated_export_as_tsv_and_xlsx(tmp_path, suffix):
    import pandas as pd
    header = AGGREGATED_V9.split(",")
    values = [["obs1", "", "", "Media file", "player #1:v.mp4", "0", "20", "20", "10.000", "m1", "3", behavior,
               "", kind, start, stop, "", "v.mp4", "", "", "", "", "", ""]
              for behavior, kind, start, stop in (("groom", "STATE", "1.000", "2.000"),
                                                  ("sniff", "POINT", "2.500", "2.500"),
                                                  ("rear", "STATE", "3.000", "3.500"))]
    table = pd.DataFrame(values, columns=header)
    path = tmp_path / f"v{suffix}"
    table.to_csv(path, sep="\t", index=False) if suffix == ".tsv" else table.to_excel(path, index=False)
    labels = load_frame_labels(path, 50, 30, media=tmp_path / "v.mp4")
    assert labels.labels[10:20] == ["groom"] * 10 and labels.labels[20:30] == [None] * 10  # FPS column: 10
    assert labels.labels[30:35] == ["rear"] * 5 and labels.labels[35] is None and "sniff" not in labels.labels
    assert find_label_file(tmp_path / "v.mp4") == path


def test_kept_label_stretches_are_whole_labelled_blocks():
    import numpy as np
    from utils.readers.labels import keep_label_stretches
    labels = [None] * 100 + ["rest", "walk"] * 400 + [None] * 100  # frames 100-899 labelled
    kept = keep_label_stretches(labels, 0.15, 60, np.random.default_rng(3))
    frames = [i for i, k in enumerate(kept) if k is not None]
    assert len(frames) == 120  # round(0.15 * 800 / 60) = 2 stretches of 60
    starts = [f for f in frames if f - 1 not in frames]
    assert all(s % 60 == 0 and 120 <= s <= 840 for s in starts)  # whole blocks inside the labelled part
    assert all(kept[i] == labels[i] for i in frames)
    assert keep_label_stretches(labels, 1.0, 60, np.random.default_rng(3)) == labels
