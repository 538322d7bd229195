"""BORIS exports as behaviour intervals, read by column name (docs/formats.md, "BORIS exports").

    tabular events (BORIS v8/v9)   one row per event: Subject, Behavior, Behavior type (START/STOP/POINT), Time,
                                   FPS, Media file name, Image index (the frame, for media observations), ...
    tabular events (older BORIS)   a header block, then Time, Media file path, Total length, FPS, Subject,
                                   Behavior, ..., Status (START/STOP/POINT)
    aggregated events              one row per bout: Subject, Behavior, Behavior type (STATE/POINT), Start (s),
                                   Stop (s), Duration (s), FPS, Media file name, ...
Each as CSV, TSV or XLSX (the first sheet). The header row is found by its column names wherever it starts, and
columns are read by name, so added or reordered columns (modifiers, independent variables) do not matter.

A state event labels frames round(start x fps) .. round(stop x fps) - 1, with the row's FPS (the first of several
media) or the video's; a v8/v9 tabular event with an Image index takes it as its frame. POINT events have no
duration: they are counted and reported, never turned into states. Rows of other subjects than the one asked for
are left out; a file with events of several subjects needs one to be named. The media file names in the export
must include the video's (or the pose file's recording) name: labels of another video are refused.
"""
import csv
import io
import logging
import re
from collections import Counter
from pathlib import Path

from utils.errors import UserError
from utils.readers.pose_io import recording_name

log = logging.getLogger(__name__)
ALIASES = {"status": ("Behavior type", "Status"), "media": ("Media file name", "Media file path"),
           "frame": ("Image index",), "start": ("Start (s)",), "stop": ("Stop (s)",)}
MISSING = ("", "NA", "Not found", "nan", "None")


def read_rows(path: Path) -> list:
    """Every row of a CSV, TSV or XLSX file as a list of stripped strings."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook
        try:
            sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
        except Exception as exc:  # openpyxl raises many types for a damaged file
            raise UserError(f"cannot read {path} as an Excel workbook: {type(exc).__name__}: {exc}") from None
        return [["" if v is None else str(v).strip() for v in row] for row in sheet.iter_rows(values_only=True)]
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    delimiter = "\t" if path.suffix.lower() == ".tsv" or text.split("\n", 1)[0].count("\t") > 1 else ","
    return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text), delimiter=delimiter)]


def header_index(rows: list):
    """The row that starts a BORIS events table (tabular or aggregated), or None."""
    for i, row in enumerate(rows):
        names = set(row)
        if {"Subject", "Behavior"} <= names and ("Time" in names or {"Start (s)", "Stop (s)"} <= names):
            return i
    return None


def _column(header: list, key: str):
    return next((header.index(name) for name in ALIASES.get(key, (key,)) if name in header), None)


def _fps(text: str, default: float) -> float:
    """The FPS cell: '30.000', or '30.000;25.000' for several media (the first is taken); the video's if empty."""
    match = re.search(r"\d+(\.\d+)?", text or "")
    return float(match.group()) if match and float(match.group()) > 0 else default


def media_names(text: str) -> set:
    """File names in a media cell ('player #1:/a/b.mp4;/a/c.mp4|player #2:...'), lower case."""
    names = set()
    for part in re.split(r"[;|]", text or ""):
        part = re.sub(r"^player #\d+:", "", part.strip())
        if part and part not in MISSING:
            names.add(re.split(r"[\\/]", part)[-1].lower())
    return names


def read_intervals(rows: list, start: int, path: Path, fps: float, subject: str = None, media=None) -> list:
    """[(first frame, stop frame, behaviour)] of the state events of one subject (module docstring)."""
    header, body = rows[start], [r for r in rows[start + 1:] if any(r)]
    col = {key: _column(header, key) for key in ("Subject", "Behavior", "FPS", "Time", "status", "media", "frame",
                                                 "start", "stop")}
    if col["status"] is None:
        raise UserError(f"{path}: a BORIS export without a 'Behavior type' (or 'Status') column; export the "
                        f"tabular or aggregated events again")

    def cell(row, key):
        return row[col[key]] if col[key] is not None and col[key] < len(row) else ""
    body = _of_subject(body, lambda row: cell(row, "Subject"), path, subject)
    _check_media({n for row in body for n in media_names(cell(row, "media"))}, path, media)
    points = Counter(cell(row, "Behavior") for row in body if cell(row, "status").upper() == "POINT")
    if points:
        log.info("%s: %d POINT events (%s) have no duration: reported here, not used as labels", path,
                 sum(points.values()), ", ".join(f"{b} x{n}" for b, n in sorted(points.items())))
    states = [row for row in body if cell(row, "status").upper() != "POINT"]
    if col["start"] is not None and col["Time"] is None:
        return [(_frame(cell(r, "start"), r, cell, fps, path), _frame(cell(r, "stop"), r, cell, fps, path),
                 cell(r, "Behavior")) for r in states]
    return _pair_start_stop(states, cell, fps, path)


def _frame(seconds: str, row, cell, fps: float, path: Path) -> int:
    try:
        return int(round(float(seconds) * _fps(cell(row, "FPS"), fps)))
    except ValueError:
        raise UserError(f"{path}: a BORIS row has a time that is not a number ({seconds!r}); export it again") from None


def _pair_start_stop(rows: list, cell, fps: float, path: Path) -> list:
    """Tabular events: each START with the next STOP of the same behaviour."""
    open_events, intervals = {}, []
    for row in rows:
        status, behavior, index = cell(row, "status").upper(), cell(row, "Behavior"), cell(row, "frame")
        frame = int(float(index)) if index not in MISSING and re.fullmatch(r"\d+(\.0+)?", index) else \
            _frame(cell(row, "Time"), row, cell, fps, path)
        if status == "START":
            open_events[behavior] = frame
        elif status == "STOP":
            if behavior not in open_events:
                raise UserError(f"{path}: STOP of '{behavior}' at {cell(row, 'Time')}s without a START; fix the BORIS "
                                f"export")
            intervals.append((open_events.pop(behavior), frame, behavior))
    if open_events:
        raise UserError(f"{path}: state events without STOP: {sorted(open_events)}; close them in BORIS and re-export")
    return intervals


def _of_subject(rows: list, subject_of, path: Path, subject) -> list:
    subjects = sorted({subject_of(row) for row in rows} - {""})
    if subject is None:
        if len(subjects) > 1:
            raise UserError(f"{path} has events of several subjects ({', '.join(subjects)}); choose one with "
                            f"--boris_subject")
        return rows
    if subject not in subjects:
        raise UserError(f"{path}: no BORIS events for subject '{subject}' (subjects: {', '.join(subjects)}); give "
                        f"--boris_subject as named in BORIS (for a pose file, its animals' names)")
    return [row for row in rows if subject_of(row) == subject]


def _check_media(names: set, path: Path, media) -> None:
    """The export must be of this recording: one of its media file names has the video's name (or, for a pose
    file alone, starts with the recording's name)."""
    if media is None or not names:
        return
    media = Path(media)
    stem = recording_name(media).lower()
    if media.name.lower() in names or any(Path(n).stem == stem or n.startswith(stem + ".") for n in names):
        return
    raise UserError(f"{path} labels {', '.join(sorted(names))}, not {media.name}; export the BORIS observation of "
                    f"this video (or name the label file after the video it belongs to)")
