"""Video reading shared by every stage: streamed in batches, so memory does not grow with video length."""
import logging
import math
import queue
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from utils.errors import UserError

log = logging.getLogger(__name__)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")


def is_video_file(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS and not Path(path).name.startswith(".")


def find_videos(root) -> list:
    """Every video file under root (recursive), sorted by path."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file() and is_video_file(p))


@dataclass
class VideoInfo:
    path: str
    fps: float  # frames per second: the container's, or from the timestamps when the container has none
    frame_count: int  # frames the file holds (its packets); the container's index may declare more
    width: int
    height: int
    declared_frames: int = 0  # what the container's index declares
    damage: str = None  # what is missing, when the file holds fewer frames than it declares


# A recording's frame times may wander this far from a constant rate (the larger of the two) before the video is
# refused as variable-frame-rate: a dropped frame or two is timing noise, a change of rate is not.
DRIFT_FRAMES, DRIFT_S = 2, 0.1
USUAL_FPS = (1.0, 500.0)  # outside: a warning naming the rate (high-speed cameras exist; made-up rates more often)
# A frame count the container may get wrong by this much (last-frame rounding) without the file being damaged.
COUNT_SLACK = 2


def open_video(path):
    """An opened cv2.VideoCapture and its VideoInfo (checked: video_info); a UserError when the file cannot be
    read as video."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"video not found: {path}")
    info = video_info(path)
    cap = cv2.VideoCapture(str(path))
    return cap, info


def video_info(path) -> VideoInfo:
    """The VideoInfo of a readable video, its time base checked before any frame is decoded: frame times from the
    container's timestamps (read without decoding), a variable frame rate refused, a missing frame rate derived
    from the timestamps, a file cut short reported in `damage` (and logged). Kept per file version."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"video not found: {path}")
    stat = path.stat()
    return _checked_info(str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(path))


@lru_cache(maxsize=32)
def _checked_info(resolved: str, size: int, mtime_ns: int, shown: str) -> VideoInfo:
    cap = cv2.VideoCapture(resolved)
    try:
        if not cap.isOpened():
            raise UserError(not_a_video_message(shown))
        fps = cap.get(cv2.CAP_PROP_FPS)
        info = VideoInfo(shown, float(fps) if fps and math.isfinite(fps) else 0.0,
                         int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                         int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()
    times, declared = container_index(resolved)
    info.declared_frames = declared or info.frame_count
    if times is not None:
        check_time_base(info, times, bool(declared))
    elif info.fps <= 0:
        raise UserError(f"video {shown} declares a frame rate of {info.fps:g} fps and has no timestamps to derive "
                        f"one from; set the true rate, e.g. ffmpeg -r 30 -i {shown} -c copy {Path(shown).stem}_30fps"
                        f"{Path(shown).suffix}")
    if not USUAL_FPS[0] <= info.fps <= USUAL_FPS[1]:
        log.warning("%s declares %.4g fps (%d frames = %.3g s): an unusual rate; if it is not the true one, times, "
                    "speeds and windows are wrong: set it, e.g. ffmpeg -r TRUE_FPS -i %s -c:v libx264 %s_fixed.mp4",
                    shown, info.fps, info.frame_count, info.frame_count / info.fps, shown, Path(shown).stem)
    return info


def not_a_video_message(shown: str) -> str:
    """Why a file that OpenCV cannot open is no video: a pose or label file given as one, or a damaged video."""
    from utils.readers.pose_io import pose_file_problem
    path = Path(shown)
    if pose_file_problem(path):
        return pose_file_problem(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        return (f"{shown} is not a video (a {path.suffix or 'suffix-less'} file); pass a video "
                f"({', '.join(VIDEO_EXTENSIONS)}), or a pose file with --detector pose_file")
    return (f"cannot open video {shown}: not a video OpenCV can decode (corrupt or unsupported codec); "
            f"re-encode it, e.g. ffmpeg -i in -c:v libx264 out.mp4")


def frame_times(path):
    """Presentation time (s) of each frame, sorted, read from the container's packets without decoding (PyAV);
    None when PyAV cannot read them (OpenCV may still read the file)."""
    return container_index(path)[0]


def container_index(path) -> tuple:
    """(frame times as frame_times gives them, or None; the frame count the container's index declares, or 0 where
    it keeps none, as Matroska)."""
    try:
        import av
    except ImportError:
        return None, 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            base, declared = float(stream.time_base), int(stream.frames or 0)
            stamps = [packet.pts if packet.pts is not None else packet.dts for packet in container.demux(stream)
                      if packet.size]
    except (av.FFmpegError, IndexError, OSError):  # no video stream, or damaged beyond the packets read
        return None, 0
    stamps = [t for t in stamps if t is not None]
    if not stamps:
        return None, declared
    return np.sort(np.asarray(stamps, np.float64)) * base, declared


def check_time_base(info: VideoInfo, times: np.ndarray, indexed: bool = True) -> None:
    """Settle info.fps and info.frame_count from the frame times (UserError for a variable frame rate, or a rate
    that cannot be known); note a file cut short in info.damage (`indexed`: the container declares its frame
    count, so frames missing from the file can be counted)."""
    present = len(times)
    if indexed and present < info.declared_frames - COUNT_SLACK:
        lost = info.declared_frames - present
        info.damage = (f"{info.path} is cut short: its index declares {info.declared_frames} frames, the file holds "
                       f"{present} (the last {lost} missing: copied while still being written, or a partial "
                       f"transfer); results cover frames 0-{present - 1} only; copy the file again")
        log.warning("DAMAGED: %s", info.damage)
    if present:
        info.frame_count = present
    steps = np.diff(times)
    steps = steps[steps > 0]
    if not len(steps):
        if info.fps <= 0:
            raise UserError(f"video {info.path} declares a frame rate of {info.fps:g} fps and holds {present} "
                            f"frame(s), too few to measure one; re-encode it with its true rate, e.g. ffmpeg -r 30 "
                            f"-i {info.path} {Path(info.path).stem}_30fps.mp4")
        return
    measured = 1.0 / float(np.median(steps))
    if info.fps <= 0:
        log.warning("%s declares a frame rate of %g fps; its timestamps give %.4g fps: using that", info.path,
                    info.fps, measured)
        info.fps = measured
    drift = times - times[0] - np.arange(present) / info.fps
    tolerance = max(DRIFT_FRAMES / info.fps, DRIFT_S)
    off = np.flatnonzero(np.abs(drift) > tolerance)
    if len(off):
        k = int(off[0])
        raise UserError(
            f"video {info.path} has a variable frame rate: frame {k} is at {times[k] - times[0]:.3f} s, but its "
            f"declared {info.fps:.4g} fps puts it at {k / info.fps:.3f} s (frame intervals from {steps.min() * 1e3:.1f} "
            f"to {steps.max() * 1e3:.1f} ms); times, durations and speeds need evenly spaced frames: re-encode it at "
            f"a constant rate, e.g. ffmpeg -i {info.path} -vf fps={round(1 / float(steps.min()))} -c:v libx264 "
            f"-crf 18 {Path(info.path).stem}_cfr.mp4")


def iter_frame_batches(path, batch_size: int):
    """Yield (first_frame_index, [BGR frames]) batches; a UserError if the video yields no frame at all, a warning
    when decoding stops before the frames the file holds (decoded_short says what the caller reports)."""
    cap, info = open_video(path)
    index = 0
    try:
        while True:
            batch = []
            while len(batch) < batch_size:
                ok, frame = cap.read()
                if not ok:
                    break
                batch.append(frame)
            if not batch:
                break
            yield index, batch
            index += len(batch)
    finally:
        cap.release()
    if index == 0:
        raise UserError(f"video {path} has no readable frames (empty or corrupt); re-encode or remove it")


def decoded_short(info: VideoInfo, decoded: int):
    """What was lost when decoding stopped early (frames decoded vs held), or None."""
    if decoded >= info.frame_count - COUNT_SLACK:
        return None
    return (f"{info.path}: decoded {decoded} of its {info.frame_count} frames (frames {decoded}-{info.frame_count - 1} "
            f"unreadable: damaged data); results cover frames 0-{decoded - 1} only; copy the file again or re-encode "
            f"it, e.g. ffmpeg -i {info.path} -c:v libx264 {Path(info.path).stem}_fixed.mp4")


def prefetched(iterable, depth: int = 2):
    """Iterate in a background thread, `depth` items ahead: OpenCV decodes (without the GIL) while the caller
    runs the detector and backbone. An exception in the thread is raised here; closing the generator early
    (an error or Ctrl-C in the caller) stops the thread and closes the iterable (releasing the video)."""
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def hand_over(item, error=None) -> bool:
        while not stop.is_set():
            try:
                items.put((item, error), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        source = iter(iterable)
        try:
            for item in source:
                if not hand_over(item):
                    return
            hand_over(done)
        except BaseException as exc:  # handed to the caller, which re-raises it
            hand_over(done, exc)
        finally:
            getattr(source, "close", lambda: None)()

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join()


def sample_frames(path, count: int, offset: float = 0.0) -> list:
    """`count` frames spread evenly over the video (by seeking), for a median background or a detector's
    calibration. offset (0-1): shifted by this share of the step between them (0.5: halfway between the frames
    offset 0 gives, so two samples share no frame)."""
    cap, info = open_video(path)
    try:
        total = info.frame_count
        frames = []
        if total <= 0:
            raise UserError(f"video {path} reports no frames; re-encode it")
        step = (total - 1) / max(count - 1, 1)
        for i in sorted({min(int(round((k + offset) * step)), total - 1) for k in range(count)}):
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            ok, frame = cap.read()
            if ok:
                frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise UserError(f"video {path} has no readable frames (empty or corrupt); re-encode or remove it")
    return frames


class FrameReader:
    """Random access to a video's frames for review: sequential reads while playing, a seek otherwise."""

    def __init__(self, path):
        self.cap, self.info = open_video(path)
        self.next_index = 0

    def read(self, index: int):
        """The BGR frame at `index`, or None past the end."""
        if index != self.next_index:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = self.cap.read()
        self.next_index = index + 1 if ok else -1
        return frame if ok else None

    def close(self) -> None:
        self.cap.release()
