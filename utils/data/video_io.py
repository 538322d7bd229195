"""Video reading shared by every stage: streamed in batches, so memory does not grow with video length."""
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2

from utils.errors import UserError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")


def is_video_file(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS and not Path(path).name.startswith(".")


def find_videos(root) -> list:
    """Every video file under root (recursive), sorted by path."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file() and is_video_file(p))


@dataclass
class VideoInfo:
    path: str
    fps: float
    frame_count: int  # as the container reports it; the true count is known only after decoding
    width: int
    height: int


def open_video(path):
    """An opened cv2.VideoCapture and its VideoInfo; a UserError when the file cannot be read as video."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"video not found: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise UserError(f"cannot open video {path}: not a video OpenCV can decode (corrupt or unsupported codec); "
                        f"re-encode it, e.g. ffmpeg -i in -c:v libx264 out.mp4")
    fps = cap.get(cv2.CAP_PROP_FPS)
    info = VideoInfo(str(path), float(fps) if fps and fps > 0 else 30.0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
                     int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return cap, info


def video_info(path) -> VideoInfo:
    """The VideoInfo of a readable video (the capture is released at once); a UserError otherwise."""
    cap, info = open_video(path)
    cap.release()
    return info


def iter_frame_batches(path, batch_size: int):
    """Yield (first_frame_index, [BGR frames]) batches; a UserError if the video yields no frame at all."""
    cap, _ = open_video(path)
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


def sample_frames(path, count: int) -> list:
    """`count` frames spread evenly over the video (by seeking), for a median background."""
    cap, info = open_video(path)
    try:
        total = info.frame_count
        frames = []
        if total <= 0:
            raise UserError(f"video {path} reports no frames; re-encode it")
        for i in sorted({int(round(k * (total - 1) / max(count - 1, 1))) for k in range(count)}):
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
