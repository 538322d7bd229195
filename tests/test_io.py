"""Atomic writers: XLSX streamed with NaN as empty cells and long tables continued on extra sheets; file modes
that follow the umask; bad output paths."""
import numpy as np
import pandas as pd
import pytest

import utils.io as io


def test_xlsx_values_round_trip_with_nan_as_empty(tmp_path):
    frame = pd.DataFrame({"frame": np.arange(5), "speed": [0.5, np.nan, 2.25, 3.0, -1.0],
                          "label": ["walk", "rest", None, "walk", "groom"]})
    io.atomic_write_xlsx(tmp_path / "m.xlsx", {"per_frame": frame, "empty": frame.iloc[:0]})
    back = pd.read_excel(tmp_path / "m.xlsx", sheet_name=None)
    assert list(back) == ["per_frame", "empty"]
    assert list(back["empty"].columns) == ["frame", "speed", "label"] and len(back["empty"]) == 0
    pd.testing.assert_frame_equal(back["per_frame"], frame, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == ["m.xlsx"]  # no temp file left


def test_table_longer_than_a_worksheet_continues_on_numbered_sheets(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "EXCEL_MAX_ROWS", 4)  # header + 3 rows per sheet
    frame = pd.DataFrame({"frame": np.arange(8), "x": np.arange(8) * 1.5})
    io.atomic_write_xlsx(tmp_path / "m.xlsx", {"per_frame": frame, "bouts": frame.iloc[:2]}, chunk_rows=2)
    back = pd.read_excel(tmp_path / "m.xlsx", sheet_name=None)
    assert list(back) == ["per_frame", "per_frame_2", "per_frame_3", "bouts"]
    assert [len(s) for s in back.values()] == [3, 3, 2, 2]
    joined = pd.concat([back["per_frame"], back["per_frame_2"], back["per_frame_3"]], ignore_index=True)
    pd.testing.assert_frame_equal(joined, frame, check_dtype=False)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask_like_any_user_file(tmp_path, umask, mode):
    import os

    from utils.io import atomic_write_csv, atomic_write_text
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_write_csv(tmp_path / "b.csv", __import__("pandas").DataFrame({"a": [1]}))
    finally:
        os.umask(old)
    for name in ("a.txt", "b.csv"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode


def test_bad_output_paths_are_one_line_errors(tmp_path):
    from utils.errors import UserError
    from utils.io import atomic_write_text, ensure_dir
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="output folder .*file is an existing file, not a folder"):
        ensure_dir(tmp_path / "file")
    with pytest.raises(UserError, match="is an existing file"):
        atomic_write_text(tmp_path / "file" / "inside.txt", "x")
    (tmp_path / "folder").mkdir()
    with pytest.raises(UserError, match="folder.* is a folder; cannot write a file there"):
        atomic_write_text(tmp_path / "folder", "x")


def test_an_exception_becomes_one_bounded_line():
    from utils.errors import first_line
    assert first_line(ValueError("bad value\n  traceback-like detail\nmore")) == "bad value"
    assert first_line(RuntimeError()) == ""  # an empty message does not fail
    assert first_line(OSError("x" * 500)) == "x" * 200 and first_line(OSError("abcdef"), 3) == "abc"
