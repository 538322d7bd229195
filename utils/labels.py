"""Per-frame behaviour labels for long videos: a `frame,behavior` CSV or a BORIS tabular events export.

Several animals (a multi-animal pose file): a CSV `frame,<animal>,<animal>...` with one column per animal (named as
in the pose file), or a BORIS export whose Subject column names the animals; a `frame,behavior` CSV labels every
animal alike.

Both give a list with one label per frame: a behaviour name, or None where no label applies (unlabelled) or
where BORIS state events of two behaviours overlap (ambiguous for a single-label classifier; counted).
"""
import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from utils.errors import UserError
from utils.pose_io import recording_name

log = logging.getLogger(__name__)
BORIS_HEADER = ("Time", "Media file path", "Total length", "FPS", "Subject", "Behavior")


@dataclass
class FrameLabels:
    labels: list  # one entry per frame: behaviour name or None (unlabelled)
    source: str
    kind: str  # "csv" | "boris"
    ambiguous: frozenset = frozenset()  # frames under two different behaviours at once

    def label_at(self, frame: int, background_label=None):
        """The frame's behaviour; background_label where nothing covers it; None if ambiguous or unlabelled."""
        if frame in self.ambiguous:
            return None
        label = self.labels[frame] if frame < len(self.labels) else None
        return label if label is not None else background_label


def find_label_file(video_path, stem: str = None):
    """The label file beside a video: <stem>.csv, <stem>.boris.csv or <stem>.tsv; None if there is none. `stem`:
    the recording's name when it is not the file's stem (pose files: utils.pose_io.pose_stem)."""
    video_path = Path(video_path)
    for suffix in (".csv", ".boris.csv", ".tsv"):
        candidate = video_path.with_name((stem or video_path.stem) + suffix)
        if candidate == video_path:
            continue
        if candidate.is_file():
            return candidate
    return None


def label_file_of(path):
    """The label file of a video or of a pose file alone, by recording name (mouse1DLC_x.h5 pairs with mouse1.csv)."""
    return find_label_file(path, recording_name(path))


def load_frame_labels(path, num_frames: int, fps: float, subject: str = None) -> FrameLabels:
    """Read a per-frame CSV or a BORIS export (detected from its content) as one label per frame; `subject`:
    the animal whose labels are wanted (its CSV column, or its BORIS Subject)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(text), delimiter="\t" if path.suffix == ".tsv" else ","))
    for i, row in enumerate(rows):
        if tuple(c.strip() for c in row[:len(BORIS_HEADER)]) == BORIS_HEADER:
            return _parse_boris(rows[i:], path, num_frames, fps, subject)
    header = [c.strip() for c in rows[0]] if rows else []
    if [c.lower() for c in header[:2]] == ["frame", "behavior"]:
        return _parse_frame_csv(rows[1:], path, num_frames)
    if header[:1] == ["frame"] and subject is not None:
        if subject not in header:
            raise UserError(f"{path}: no column for animal '{subject}'; expected `frame,behavior` or one column per "
                            f"animal named as in the pose file ({', '.join(header[1:])} found)")
        column = header.index(subject)
        return _parse_frame_csv([[r[0], r[column] if len(r) > column else ""] for r in rows[1:]], path, num_frames)
    raise UserError(f"{path}: not a label file; expected a `frame,behavior` CSV header or a BORIS tabular events "
                    f"export (header row starting {','.join(BORIS_HEADER[:4])})")


def _parse_frame_csv(rows, path, num_frames) -> FrameLabels:
    labels = [None] * num_frames
    beyond = 0
    for line, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            frame = int(row[0])
        except (ValueError, IndexError):
            raise UserError(f"{path} line {line}: frame {row[0] if row else ''!r} is not an integer") from None
        behavior = row[1].strip() if len(row) > 1 else ""
        if frame < 0:
            raise UserError(f"{path} line {line}: negative frame {frame}")
        if frame >= num_frames:
            beyond += 1
            continue
        labels[frame] = behavior or None
    if beyond:
        log.warning("%s: %d labelled frames lie beyond the video's %d frames and were ignored", path, beyond, num_frames)
    return FrameLabels(labels, str(path), "csv")


def _parse_boris(rows, path, num_frames, fps, subject=None) -> FrameLabels:
    header = [c.strip() for c in rows[0]]
    col = {name: header.index(name) for name in ("Time", "FPS", "Subject", "Behavior", "Status")}
    subjects = {row[col["Subject"]].strip() for row in rows[1:] if len(row) > col["Status"]}
    if subject is not None and subject not in subjects:
        raise UserError(f"{path}: no BORIS events for subject '{subject}' (subjects: {', '.join(sorted(subjects))}); "
                        f"name the BORIS subjects as the animals of the pose file")
    open_events, intervals = {}, []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) <= col["Status"] or not row[col["Time"]].strip():
            continue
        if subject is not None and row[col["Subject"]].strip() != subject:
            continue
        status, behavior = row[col["Status"]].strip().upper(), row[col["Behavior"]].strip()
        try:
            time = float(row[col["Time"]])
            event_fps = float(row[col["FPS"]]) if row[col["FPS"]].strip() else fps
        except ValueError:
            raise UserError(f"{path}: a BORIS row has a non-numeric Time or FPS ({row[col['Time']]!r})") from None
        frame = int(round(time * event_fps))
        if status == "START":
            open_events[behavior] = frame
        elif status == "STOP":
            if behavior not in open_events:
                raise UserError(f"{path}: STOP of '{behavior}' at {time}s without a START; fix the BORIS export")
            intervals.append((open_events.pop(behavior), frame, behavior))
    if open_events:
        raise UserError(f"{path}: state events without STOP: {sorted(open_events)}; close them in BORIS and re-export")
    return _labels_from_intervals(intervals, num_frames, str(path))


def _labels_from_intervals(intervals, num_frames, source) -> FrameLabels:
    """Frames [start, stop) take the behaviour; frames under two different behaviours become None (ambiguous)."""
    labels = [None] * num_frames
    ambiguous = [False] * num_frames
    for start, stop, behavior in intervals:
        for f in range(max(start, 0), min(stop, num_frames)):
            if labels[f] is not None and labels[f] != behavior:
                ambiguous[f] = True
            labels[f] = behavior
    return FrameLabels(labels, source, "boris", frozenset(f for f in range(num_frames) if ambiguous[f]))
