"""Atomic writers: XLSX streamed with NaN as empty cells and long tables continued on extra sheets."""
import numpy as np
import pandas as pd

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
