"""Classify a long video with a trained checkpoint: per-frame behaviour timeline and bouts.

Usage:
    python infer_behavior_lstm.py --model_path runs/mnv3_lstm/best_model_macro_f1.pt --video_path session.mp4
    python infer_behavior_lstm.py --model_path best.pt --video_path session.mp4 --yolo_mode bbox --output_dir out
    python infer_behavior_lstm.py --model_path best.pt --video_path session.mp4 --print_config

The video is streamed (decoded in a background thread while the detector runs): memory does not grow with
its length beyond a few numbers per frame. Crop, window and detector settings come from the checkpoint; a
different value given here is used with a warning. The detector is checked against the model before the first
frame. With a frame backbone every frame is encoded once and overlapping windows are classified from buffered
features; the last window of the video ends on its last frame.
Outputs (written atomically): <video>.behavior.csv (bouts), <video>.frames.csv (per frame),
<video>.metrics.xlsx (per_frame kinematics, bouts, summary, windows, metadata), <video>.ethogram.png, and
with --output_review_video <video>.review.mp4.

Live mode: a camera index (--video_path 0) or a stream URL (rtsp://..., http://...), or a file with --live
(played at its frame rate, as a camera would deliver it). Each window is labelled as soon as it is complete and
appended to <source>.live.csv with the latency from the capture of its last frame; Ctrl-C (or the dashboard's
Stop) ends the run and writes every output above for what was seen. Frames that arrive while the pipeline is
behind by a full queue are dropped and counted, never queued without bound.
"""
import argparse
import time
from pathlib import Path

from inference import classify_video
from predictor import Predictor
from utils.config import add_config_arguments, resolve_config
from utils.errors import run_cli
from utils.io import ensure_dir
from utils.data.live import source_stem
from utils.logging_utils import setup_logging
from utils.schema import InferenceConfig
from utils.timing import StageTimer

REQUIRED = ("model_path", "video_path")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, (InferenceConfig,), required=REQUIRED)
    return parser


def main(args):
    cfg = resolve_config(args, InferenceConfig, required=REQUIRED)
    out_dir = ensure_dir(cfg.output_dir or Path(cfg.video_path).parent)  # a bad folder fails before loading
    setup_logging(out_dir / f"{source_stem(cfg.video_path)}.infer.log")  # load-time warnings reach the log too
    timer = StageTimer()
    start = time.perf_counter()
    predictor = Predictor.from_checkpoint(cfg.model_path, cfg, timer)
    result = classify_video(predictor, cfg, timer)
    result["total_seconds"] = time.perf_counter() - start  # loading included
    return result


if __name__ == "__main__":
    run_cli(main, get_args_parser())
