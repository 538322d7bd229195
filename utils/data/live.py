"""Live sources: a camera, a stream, or a video file played at its own frame rate, read as frames arrive.

A reader thread captures frames into a bounded queue, stamping each with its capture time. The pipeline takes
whatever has arrived (at least one frame, at most a detector batch), so a fast pipeline works on small batches
with little delay and a slow one on larger batches. When the queue is full (the pipeline has fallen behind by
`queue_frames` frames) the newest frame is dropped and counted: memory never grows, and the count is reported.
Frame indices count the frames kept; after a drop, `time_s` (index / fps) runs behind the wall clock by the
dropped frames, which is why the count is reported with the outputs.
"""
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass

import cv2

from utils.errors import UserError
from utils.readers.pose_io import recording_name

log = logging.getLogger(__name__)
DEFAULT_CAMERA_FPS = 30.0


def is_live_source(source) -> bool:
    """A camera index ("0") or a stream URL ("rtsp://...", "http://...")."""
    text = str(source)
    return text.isdigit() or re.match(r"^[a-z][a-z0-9+.-]*://", text) is not None


def source_stem(source) -> str:
    """A file-name stem for a live source's outputs: camera0, or the stream's host and path."""
    text = str(source)
    if text.isdigit():
        return f"camera{text}"
    if not is_live_source(text):
        return recording_name(text)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text.split("://", 1)[1]).strip("_")[:60] or "stream"


@dataclass
class Arrival:
    index: int
    frame: object
    captured: float  # time.monotonic() when read


class LiveSource:
    """Frames of `source` as they arrive (module docstring). `pace`: a file is read at its frame rate, as a
    camera would deliver it; a camera or stream paces itself."""

    def __init__(self, source, pace: bool, queue_frames: int = 64):
        text = str(source)
        self.name = text
        self.cap = cv2.VideoCapture(int(text) if text.isdigit() else text)
        if not self.cap.isOpened():
            raise UserError(f"cannot open live source {text}: check the camera index or stream URL (and that no "
                            f"other program holds the camera)")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else DEFAULT_CAMERA_FPS
        self.pace = pace
        self.queue = queue.Queue(maxsize=queue_frames)
        self.dropped, self.captured = 0, 0
        self.stop, self.ended = threading.Event(), threading.Event()
        self.error = None
        self.reader = threading.Thread(target=self._read, name="live-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        start, kept = time.monotonic(), 0
        try:
            while not self.stop.is_set():
                if self.pace:  # a file: release frame i at start + i / fps, as a camera would
                    delay = start + self.captured / self.fps - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                ok, frame = self.cap.read()
                if not ok:
                    break
                now = time.monotonic()
                self.captured += 1
                try:
                    self.queue.put_nowait(Arrival(kept, frame, now))
                    kept += 1
                except queue.Full:
                    self.dropped += 1
        except Exception as exc:  # handed to the consumer, which raises it
            self.error = exc
        finally:
            self.ended.set()

    def batches(self, max_batch: int):
        """Yield lists of Arrivals: whatever has arrived, at least one frame, at most max_batch."""
        while True:
            batch = []
            while not batch:
                try:
                    batch.append(self.queue.get(timeout=0.05))
                except queue.Empty:
                    if self.error is not None:
                        raise self.error
                    if self.ended.is_set() and self.queue.empty():
                        return
            while len(batch) < max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            yield batch

    def close(self) -> None:
        self.stop.set()
        self.reader.join(timeout=5)
        self.cap.release()
