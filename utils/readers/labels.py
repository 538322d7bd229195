"""Per-frame behaviour labels for long videos: a `frame,behavior` CSV or a BORIS export (utils/readers/boris.py: tabular
or aggregated events, CSV, TSV or XLSX).

Several animals (a multi-animal pose file): a CSV `frame,<animal>,<animal>...` with one column per animal (named as
in the pose file), or a BORIS export whose Subject column names the animals; a `frame,behavior` CSV labels every
animal alike.

Both give a list with one label per frame: a behaviour name, or None where no label applies (unlabelled) or
where BORIS state events of two behaviours overlap (ambiguous for a single-label classifier; counted).
"""
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.readers.boris import header_index, read_intervals, read_rows
from utils.errors import UserError
from utils.readers.pose_io import recording_name

log = logging.getLogger(__name__)
LABELLED_EVERYWHERE = -1  # load_frame_labels' num_frames=None: as far as the file labels
LABEL_SUFFIXES = (".csv", ".boris.csv", ".tsv", ".boris.tsv", ".xlsx", ".boris.xlsx")


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
    """The label file beside a video: <stem> + one of LABEL_SUFFIXES, in that order; None if there is none.
    `stem`: the recording's name when it is not the file's stem (pose files: utils.readers.pose_io.pose_stem)."""
    video_path = Path(video_path)
    for suffix in LABEL_SUFFIXES:
        candidate = video_path.with_name((stem or video_path.stem) + suffix)
        if candidate == video_path:
            continue
        if candidate.is_file():
            return candidate
    return None


def label_file_of(path):
    """The label file of a video or of a pose file alone, by recording name (mouse1DLC_x.h5 pairs with mouse1.csv)."""
    return find_label_file(path, recording_name(path))


def load_frame_labels(path, num_frames, fps: float, subject: str = None, media=None) -> FrameLabels:
    """Read a per-frame CSV or a BORIS export (detected from its content) as one label per frame; `subject`: the
    animal whose labels are wanted (its CSV column, or its BORIS Subject); `media`: the video or pose file the
    labels must belong to (BORIS exports name it). num_frames: the recording's length (labels beyond it are
    warned about), or None to take every labelled frame (scoring a split, which covers part of a recording)."""
    path = Path(path)
    rows = read_rows(path)
    if num_frames is None:
        num_frames = LABELLED_EVERYWHERE
    start = header_index(rows)
    if start is not None:
        return _labels_from_intervals(read_intervals(rows, start, path, fps, subject, media), num_frames, str(path))
    header = rows[0] if rows else []
    if header[:1] == ["frame"]:
        rows = without_cut_last_row(rows, path)
    if [c.lower() for c in header[:2]] == ["frame", "behavior"]:
        return _parse_frame_csv(rows[1:], path, num_frames)
    if header[:1] == ["frame"] and subject is not None:
        if subject not in header:
            raise UserError(f"{path}: no column for animal '{subject}'; expected `frame,behavior` or one column per "
                            f"animal named as in the pose file ({', '.join(header[1:])} found)")
        column = header.index(subject)
        return _parse_frame_csv([[r[0], r[column] if len(r) > column else ""] for r in rows[1:]], path, num_frames)
    raise UserError(f"{path}: not a label file; expected a `frame,behavior` CSV header or a BORIS tabular or "
                    f"aggregated events export (a header row with Subject, Behavior, and Time or Start (s))")


def without_cut_last_row(rows: list, path: Path) -> list:
    """The rows without a last row cut short: a text file that does not end with a line break, whose last row
    lacks a label or names a label found nowhere else (`12,gro` of `12,groom`), was cut while being written or
    copied; that row is dropped and said, rather than becoming a behaviour of its own."""
    if path.suffix.lower() == ".xlsx" or len(rows) < 2:
        return rows
    with open(path, "rb") as f:
        f.seek(max(path.stat().st_size - 1, 0))
        if f.read(1) in (b"\n", b"\r", b""):
            return rows
    last = rows[-1]
    seen = {c for row in rows[1:-1] for c in row[1:]}
    if len(last) >= len(rows[0]) and all(c in seen for c in last[1:] if c):
        return rows
    log.warning("DAMAGED: label file %s ends mid-row (line %d: %r): the file was cut while being written or copied; "
                "that row is ignored; export or copy the labels again", path, len(rows), ",".join(last))
    return rows[:-1]


def _parse_frame_csv(rows, path, num_frames) -> FrameLabels:
    if num_frames == LABELLED_EVERYWHERE:
        num_frames = 1 + max((int(r[0]) for r in rows if r and r[0].strip().lstrip("-").isdigit()), default=-1)
    labels, first_line = [None] * num_frames, {}
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
        if labels[frame] is not None and behavior and behavior != labels[frame]:
            raise UserError(f"{path} line {line}: frame {frame} is labelled {behavior} but also {labels[frame]} (line "
                            f"{first_line[frame]}); BehaviorScope classifies one behaviour per frame, so overlapping "
                            f"behaviours are refused: keep one row per frame (the behaviour to learn there), or "
                            f"train one model per behaviour, each from its own label file")
        labels[frame] = behavior or labels[frame]
        first_line.setdefault(frame, line)
    if beyond:
        log.warning("%s: %d labelled frames lie beyond the video's %d frames and were ignored", path, beyond, num_frames)
    return FrameLabels(labels, str(path), "csv")


def _labels_from_intervals(intervals, num_frames, source) -> FrameLabels:
    """Frames [start, stop) take the behaviour; frames under two different behaviours become None (ambiguous)."""
    if num_frames == LABELLED_EVERYWHERE:
        intervals = list(intervals)
        num_frames = max((stop for _, stop, _ in intervals), default=0)
    labels = [None] * num_frames
    ambiguous = [False] * num_frames
    for start, stop, behavior in intervals:
        for f in range(max(start, 0), min(stop, num_frames)):
            if labels[f] is not None and labels[f] != behavior:
                ambiguous[f] = True
            labels[f] = behavior
    return FrameLabels(labels, source, "boris", frozenset(f for f in range(num_frames) if ambiguous[f]))


def keep_label_stretches(labels: list, share: float, block: int, rng) -> list:
    """Labels as a labeller who marks stretches leaves them (label-efficiency benches): random stretches of `block`
    frames, among those labelled throughout, covering about `share` of the labelled frames; None elsewhere.
    share >= 1 keeps every label. rng: a numpy Generator."""
    if share >= 1:
        return list(labels)
    starts = [s for s in range(0, len(labels) - block + 1, block)
              if all(label is not None for label in labels[s:s + block])]
    labelled = sum(label is not None for label in labels)
    keep = rng.permutation(np.array(starts, int))[:max(1, int(round(share * labelled / block)))]
    out = [None] * len(labels)
    for s in keep:
        out[s:s + block] = labels[s:s + block]
    return out
