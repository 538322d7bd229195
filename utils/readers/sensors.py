"""Extra time-series streams recorded beside a video or pose file: head-mounted IMUs, EMG, photometry, a wheel.

A recording's stream is one file beside it, named by the recording's name (utils.readers.pose_io.recording_name;
docs/formats.md, "Sensor streams"):
    <stem>.sensors.csv   a header row; a `time` column in seconds and one numeric column per channel, or only channel
                         columns with --sensor_rate (samples per second, the first sample at time 0)
    <stem>.sensors.npy   a [samples, channels] array with --sensor_rate; channels are named ch0, ch1, ...
Any sample rate, higher or lower than the video's. Empty cells or NaN are missing samples.

Aligned to frames by timestamp (align_to_frames): frame i of a video at `fps` covers [(i - 0.5) / fps, (i + 0.5) /
fps) on the video's clock, and sensor time t is video time t - sensor_offset_s. Per frame and channel the mean of
the samples inside that interval and their spread (standard deviation), so a rhythm faster than the video's frame
rate (a head shake at 20 Hz filmed at 30 fps) is kept as energy instead of aliasing; a stream slower than the
video is interpolated linearly between samples. Frames in a gap (no sample within MAX_GAP_PERIODS sample periods)
are missing (NaN). Checked before anything is written: a time base, numeric monotonic times, the same channels in
every recording, and a stream that covers its video.
"""
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.errors import UserError

SENSOR_SUFFIXES = (".sensors.csv", ".sensors.npy")
TIME_COLUMN = "time"
MAX_GAP_PERIODS = 2.5  # a stretch without samples longer than this many sample periods is a gap (missing frames)


@dataclass
class SensorStream:
    """One recording's stream as read: sample times [N] s (its own clock), values [N, C] (NaN = missing)."""
    path: Path
    time: np.ndarray
    values: np.ndarray
    channels: list

    @property
    def period(self) -> float:
        """The typical time between samples (median), seconds."""
        return float(np.median(np.diff(self.time))) if len(self.time) > 1 else 0.0


def sensor_file_for(recording_path, name: str):
    """The stream beside a recording named `name` (its video's stem or its pose file's recording name); None when
    there is none. Both a CSV and an NPY: an error."""
    folder = Path(recording_path).parent
    found = [folder / f"{name}{suffix}" for suffix in SENSOR_SUFFIXES if (folder / f"{name}{suffix}").is_file()]
    if len(found) > 1:
        raise UserError(f"{found[0]} and {found[1]} are both sensor streams of {Path(recording_path).name}; keep one")
    return found[0] if found else None


def sensor_file_of(recording_path):
    """The stream beside a video or a pose file alone, by recording name (mouse1DLC_x.h5 pairs with
    mouse1.sensors.csv); None when there is none."""
    from utils.readers.pose_io import recording_name
    return sensor_file_for(recording_path, recording_name(recording_path))


def stream_channels(path) -> list:
    """A stream's channel names from its header alone (NPY: its shape), to check a dataset before reading it."""
    path = Path(path)
    if path.name.endswith(".sensors.npy"):
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read sensor stream {path}: {exc}; save it with numpy.save as a "
                            f"[samples, channels] float array") from None
        return [f"ch{c}" for c in range(shape[1] if len(shape) == 2 else 1)]
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = [h.strip() for h in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read sensor stream {path}: {exc}") from None
    return [h for h in header if h.lower() != TIME_COLUMN]


def dataset_channels(recordings: list) -> list:
    """The channels every recording's stream has ([] when none has a stream); a dataset where only some
    recordings have one, or whose streams differ in channels, is refused before anything is prepared."""
    files = {Path(r): sensor_file_of(r) for r in recordings}
    have = [r for r, f in files.items() if f is not None]
    if not have:
        return []
    lacking = [r for r, f in files.items() if f is None]
    if lacking:
        names = ", ".join(r.name for r in lacking[:3]) + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else "")
        raise UserError(f"{len(have)} recording(s) have a sensor stream (e.g. {files[have[0]]}) but {len(lacking)} "
                        f"do not: {names}; add <name>.sensors.csv beside each, or move the streams away to prepare "
                        f"without them")
    channels = stream_channels(files[have[0]])
    for r in have[1:]:
        check_same_channels(stream_channels(files[r]), channels, files[r], files[have[0]])
    return channels


def frame_sensors(recording_path, num_frames: int, fps: float, rate: float = None, offset_s: float = 0.0,
                  channels: list = None, expected_from: str = None) -> np.ndarray:
    """The recording's stream aligned to its frames ([num_frames, C, 2], align_to_frames), checked against the
    `channels` a dataset or model expects (named by `expected_from`)."""
    from utils.readers.pose_io import recording_name
    path = sensor_file_of(recording_path)
    if path is None:
        wanted = Path(recording_path).with_name(recording_name(recording_path) + SENSOR_SUFFIXES[0])
        raise UserError(f"{expected_from} uses sensor streams ({', '.join(channels or [])}), but {recording_path} has "
                        f"none beside it; add {wanted} (docs/formats.md, Sensor streams)")
    stream = read_sensor_file(path, rate)
    if channels is not None:
        check_same_channels(stream.channels, channels, path, expected_from)
    if num_frames <= 0:
        raise UserError(f"{recording_path} does not declare its frame count, which aligning {path} to its frames "
                        f"needs; re-encode the video (e.g. ffmpeg -i in.avi -c:v libx264 out.mp4)")
    return align_to_frames(stream, num_frames, fps, offset_s, recording_path)


def read_sensor_file(path, rate: float = None) -> SensorStream:
    """Read a stream (module docstring); `rate`: samples per second for files without a time column."""
    path = Path(path)
    if path.name.endswith(".sensors.npy"):
        try:
            values = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read sensor stream {path}: {exc}; save it with numpy.save as a "
                            f"[samples, channels] float array") from None
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
            raise UserError(f"{path} holds a {values.dtype} array of shape {values.shape}; expected numbers, "
                            f"[samples, channels]")
        channels, time = [f"ch{c}" for c in range(values.shape[1])], None
    else:
        channels, time, values = _read_csv(path)
    values = values.astype(np.float32)
    if time is None:
        if not rate:
            raise UserError(f"{path} has no '{TIME_COLUMN}' column (seconds) and no sample rate was given; add the "
                            f"column or pass --sensor_rate (samples per second)")
        time = np.arange(len(values)) / float(rate)
    _check_time(path, time)
    return SensorStream(path, time.astype(np.float64), values, channels)


def _read_csv(path: Path) -> tuple:
    import pandas as pd
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"cannot read sensor stream {path}: {str(exc).strip()}; expected a header row and a row of "
                        f"numbers per sample") from None
    header = [str(h).strip() for h in table.columns]
    if len(table) < 2:
        raise UserError(f"{path} has {len(table)} sample rows; expected a header row and a row per sample")
    if any(h.startswith("Unnamed:") or not h for h in header) or len(set(header)) != len(header):
        raise UserError(f"{path}: header {header} has empty or repeated column names; name every column once")
    numbers = np.empty(table.shape)
    for c, name in enumerate(header):
        cells = table.iloc[:, c].str.strip()
        column = pd.to_numeric(cells.replace("", "nan"), errors="coerce")
        bad = column.isna() & ~cells.str.lower().isin(("", "nan"))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserError(f"{path} row {row + 2}, column '{name}': {cells.iloc[row]!r} is not a number; sensor "
                            f"streams hold numbers only (empty = missing sample)")
        numbers[:, c] = column.to_numpy(np.float64)
    lower = [h.lower() for h in header]
    if TIME_COLUMN not in lower:
        return header, None, numbers
    t = lower.index(TIME_COLUMN)
    if len(header) == 1:
        raise UserError(f"{path} has a time column but no channel column")
    return [h for c, h in enumerate(header) if c != t], numbers[:, t], np.delete(numbers, t, 1)


def _check_time(path: Path, time: np.ndarray) -> None:
    if not np.isfinite(time).all():
        row = int(np.flatnonzero(~np.isfinite(time))[0])
        raise UserError(f"{path}: sample {row} has no time; every row needs its time in seconds")
    if len(time) > 1 and not (np.diff(time) > 0).all():
        row = int(np.flatnonzero(np.diff(time) <= 0)[0]) + 1
        raise UserError(f"{path}: time goes from {time[row - 1]:.6g} to {time[row]:.6g} s at sample {row}; times must "
                        f"increase (sort the rows, or drop repeated ones)")


def align_to_frames(stream: SensorStream, num_frames: int, fps: float, offset_s: float = 0.0,
                    video=None) -> np.ndarray:
    """[num_frames, C, 2] float32: per frame and channel the mean of the samples in the frame's interval and
    their spread (module docstring); NaN where the frame has no sample nearby. A stream that starts after the
    first frame or ends before the last one (beyond a gap) is refused: it does not cover its video."""
    t = stream.time - offset_s
    period, frame = stream.period or 1.0 / fps, 1.0 / fps
    max_gap = MAX_GAP_PERIODS * max(period, frame)
    end = (num_frames - 1) / fps
    if t[0] > max_gap or t[-1] < end - max_gap:
        raise UserError(f"sensor stream {stream.path} covers {t[0]:.3f}-{t[-1]:.3f} s of the video's clock, but "
                        f"{video or 'its recording'} lasts {num_frames} frames (0-{end:.3f} s at {fps:.4g} fps); give "
                        f"the whole recording, or shift it with --sensor_offset_s (sensor time of the first frame)")
    out = np.full((num_frames, len(stream.channels), 2), np.nan, np.float32)
    centres = np.arange(num_frames) / fps
    bins = np.floor(t * fps + 0.5).astype(np.int64)  # the frame whose interval holds each sample
    for c in range(len(stream.channels)):
        ok = np.isfinite(stream.values[:, c])
        out[:, c] = _per_frame(bins[ok], stream.values[ok, c].astype(np.float64), t[ok], centres, max_gap)
    return out


def _per_frame(bins: np.ndarray, values: np.ndarray, t: np.ndarray, centres: np.ndarray, max_gap: float) -> np.ndarray:
    """[frames, 2] (mean, spread) of one channel's valid samples."""
    n = len(centres)
    out = np.full((n, 2), np.nan)
    if len(values) < 2:  # too few samples to tell a frame's value
        return out
    inside = (bins >= 0) & (bins < n)
    count = np.bincount(bins[inside], minlength=n)
    total = np.bincount(bins[inside], values[inside], minlength=n)
    squares = np.bincount(bins[inside], values[inside] ** 2, minlength=n)
    seen = count > 0
    out[seen, 0] = total[seen] / count[seen]
    out[seen, 1] = np.sqrt(np.maximum(squares[seen] / count[seen] - out[seen, 0] ** 2, 0))
    # frames between samples (a stream slower than the video): interpolated where the samples around are close
    after = np.clip(np.searchsorted(t, centres), 1, max(len(t) - 1, 1))
    before = after - 1
    bridged = ~seen & (centres >= t[0]) & (centres <= t[-1]) & (t[after] - t[before] <= max_gap)
    out[bridged, 0] = np.interp(centres[bridged], t, values)
    out[bridged, 1] = 0.0
    return out


def check_same_channels(channels: list, expected: list, path, expected_from: str) -> None:
    if list(channels) != list(expected):
        raise UserError(f"sensor stream {path} has channels {list(channels)}, but {expected_from} has "
                        f"{list(expected)}; every recording needs the same channels in the same order")


def write_sensor_csv(path, time: np.ndarray, values: np.ndarray, channels: list) -> Path:
    """A stream in the CSV layout (the generator's and tests' files), atomically."""
    from utils.io import atomic_path
    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([TIME_COLUMN, *channels])
        for t, row in zip(time, values):
            writer.writerow([f"{t:.6f}", *("" if np.isnan(v) else f"{v:.6g}" for v in row)])
    return Path(path)
