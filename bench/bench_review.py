"""Review tab on a one-hour video: random seeks and playback rate at 640x480.

Writes a one-hour 640x480 video (30 fps, 108,000 frames: a dark animal moving over a textured floor) and a
matching <video>.frames.csv, then
  1. times random seeks with utils.data.video_io.FrameReader alone (decode only);
  2. opens the video in the dashboard's Review tab (under the DISPLAY you give, e.g. Xvfb) and times
     ReviewTab.seek to random frames (decode + drawing + ethogram marker + Tk image);
  3. plays for --play_seconds at 1x and counts the distinct frames shown per second against the video's rate.
The video is encoded with H.264 (keyframe every 250 frames, x264's default, as most lab cameras write) when the
optional `imageio-ffmpeg` package is installed, else with OpenCV's MPEG-4 part 2 writer; the codec used is printed.

Usage:
    Xvfb :97 -screen 0 1366x768x24 & DISPLAY=:97 python bench/bench_review.py --work /tmp/review_bench
The video in --work is reused when it exists.
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from utils.data.video_io import FrameReader  # noqa: E402
from utils.io import report_json  # noqa: E402

CLASSES = ["groom", "rear", "rest", "walk"]


def frame_at(index: int, floor: np.ndarray) -> np.ndarray:
    """A dark ellipse on a textured floor, moving on a slow loop, with the frame number burnt in."""
    frame = floor.copy()
    t = index / 30.0
    centre = (int(320 + 220 * np.cos(t / 7)), int(240 + 160 * np.sin(t / 5)))
    cv2.ellipse(frame, centre, (34, 16), float(np.degrees(t / 3) % 360), 0, 360, (40, 35, 30), -1)
    cv2.putText(frame, str(index), (10, 470), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    return frame


def write_video(path: Path, num_frames: int, fps: float) -> str:
    rng = np.random.default_rng(0)
    floor = cv2.GaussianBlur(rng.integers(150, 230, (480, 640, 3), dtype=np.uint8), (0, 0), 3)
    try:
        import imageio_ffmpeg
        codec = "H.264 (libx264, keyframe every 250 frames)"
        proc = subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo",
                                 "-pix_fmt", "bgr24", "-s", "640x480", "-r", str(fps), "-i", "-", "-c:v", "libx264",
                                 "-preset", "ultrafast", "-g", "250", "-pix_fmt", "yuv420p", str(path)],
                                stdin=subprocess.PIPE)
        for i in range(num_frames):
            proc.stdin.write(frame_at(i, floor).tobytes())
        proc.stdin.close()
        proc.wait()
    except ImportError:
        codec = "MPEG-4 part 2 (OpenCV mp4v)"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
        for i in range(num_frames):
            writer.write(frame_at(i, floor))
        writer.release()
    (path.with_suffix(".codec.txt")).write_text(codec)
    return codec


def write_frames_csv(path: Path, num_frames: int) -> None:
    """Predictions in inference's <video>.frames.csv layout: 10 s bouts, a box and 7 keypoints per frame."""
    frame = np.arange(num_frames)
    t = frame / 30.0
    cx, cy = 320 + 220 * np.cos(t / 7), 240 + 160 * np.sin(t / 5)
    columns = {"frame": frame, "time_s": t, "label": np.array(CLASSES)[(frame // 300) % len(CLASSES)],
               "confidence": 0.5 + 0.5 * np.abs(np.sin(t / 11)),
               "box_x1": cx - 40, "box_y1": cy - 40, "box_x2": cx + 40, "box_y2": cy + 40}
    for k in range(7):
        columns.update({f"kp{k}_x": cx - 30 + 10 * k, f"kp{k}_y": cy, f"kp{k}_conf": np.full(num_frames, 0.9)})
    pd.DataFrame(columns).to_csv(path, index=False)


def time_reader_seeks(video: Path, targets) -> list:
    reader = FrameReader(video)
    times = []
    for index in targets:
        start = time.perf_counter()
        assert reader.read(int(index)) is not None
        times.append(time.perf_counter() - start)
    reader.close()
    return times


def summary(times) -> dict:
    ms = sorted(1000 * t for t in times)
    return {"median_ms": round(statistics.median(ms), 1), "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1),
            "max_ms": round(ms[-1], 1), "n": len(ms)}


def time_review_tab(video: Path, frames_csv: Path, targets, play_seconds: float) -> dict:
    from gui import state
    from gui.app import BehaviorScopeApp
    state.STATE_PATH = video.parent / "gui_state.json"  # never the user's own recent-paths file
    app = BehaviorScopeApp()
    app.geometry("1366x740+0+0")
    tab = app.tabs["Review"]
    app.notebook.select(tab)
    pump(app, 0.5)
    start = time.perf_counter()
    tab.open(video, frames_csv)
    pump(app, 0.1)
    open_seconds = time.perf_counter() - start
    seeks = []
    for index in targets:
        start = time.perf_counter()
        tab.seek(int(index))
        app.update()  # the new image is on screen
        seeks.append(time.perf_counter() - start)
        assert tab.frame_index == int(index)
    shown = []
    original = tab.show_frame

    def counting_show_frame(index):
        original(index)
        shown.append(tab.frame_index)
    tab.show_frame = counting_show_frame
    tab.playing = False
    tab.toggle_play()
    start = time.monotonic()
    pump(app, play_seconds)
    elapsed = time.monotonic() - start
    tab.playing = False
    fps = tab.reader.info.fps
    distinct = len(set(shown))
    app.destroy()
    return {"open_seconds": round(open_seconds, 2), "seek": summary(seeks),
            "playback": {"video_fps": fps, "frames_shown_per_s": round(distinct / elapsed, 1),
                         "frames_advanced_per_s": round((max(shown) - min(shown) + 1) / elapsed, 1) if shown else 0,
                         "skipped_share": round(1 - distinct / max(max(shown) - min(shown) + 1, 1), 3)
                         if shown else 1.0}}


def pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.update()
        time.sleep(0.002)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for the generated video (reused)")
    parser.add_argument("--minutes", type=float, default=60.0, help="video length")
    parser.add_argument("--seeks", type=int, default=30, help="random seeks per measurement")
    parser.add_argument("--play_seconds", type=float, default=10.0, help="playback measured for this long")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def main(args) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    num_frames = int(args.minutes * 60 * 30)
    video, frames_csv = work / f"review_{num_frames}.mp4", work / f"review_{num_frames}.frames.csv"
    if not video.is_file():
        start = time.perf_counter()
        write_video(video, num_frames, 30.0)
        print(f"wrote {video} in {time.perf_counter() - start:.0f} s", flush=True)
    if not frames_csv.is_file():
        write_frames_csv(frames_csv, num_frames)
    codec = video.with_suffix(".codec.txt").read_text()
    targets = np.random.default_rng(1).integers(0, num_frames - 1, args.seeks)
    results = {"video": {"frames": num_frames, "size": "640x480", "fps": 30, "codec": codec,
                         "megabytes": round(video.stat().st_size / 1e6, 1)},
               "reader_seek": summary(time_reader_seeks(video, targets))}
    results["review_tab"] = time_review_tab(video, frames_csv, targets[::-1], args.play_seconds)
    return report_json(results, args.output)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
