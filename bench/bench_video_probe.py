"""What checking a video's time base costs: reading every packet's timestamp without decoding (PyAV, the check
video_info runs before the first frame) against decoding the frames (OpenCV, what every stage does anyway).

Both are timed over the whole file, alternating, --repeats times; figures are medians and the ratio is of the
medians of one run. Default: DeepLabCut's open-field video in ../shared (2330 frames, 640x480, 30 fps).

Usage:
    python bench/bench_video_probe.py --output bench/results_video_probe.json
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from utils.data.video_io import frame_times  # noqa: E402
from utils.io import report_json  # noqa: E402

DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "openfield" / "m3v1mp4.mp4"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default=str(DEFAULT_VIDEO), help="the video to time")
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs of each; medians are reported")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def decode_all(path: str) -> int:
    cap, frames = cv2.VideoCapture(path), 0
    while cap.grab() and cap.retrieve()[0]:
        frames += 1
    cap.release()
    return frames


def timed(fn, *args) -> tuple:
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def main(args) -> dict:
    probe, decode = [], []
    for _ in range(args.repeats):
        seconds, times = timed(frame_times, args.video)
        probe.append(seconds)
        seconds, frames = timed(decode_all, args.video)
        decode.append(seconds)
    results = {"video": Path(args.video).name, "frames": frames, "timestamps": len(times), "repeats": args.repeats,
               "probe_ms_per_frame": 1e3 * statistics.median(probe) / frames,
               "decode_ms_per_frame": 1e3 * statistics.median(decode) / frames,
               "probe_share_of_decode": statistics.median(probe) / statistics.median(decode)}
    return report_json(results, args.output)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
