"""Classifying recordings and writing every output: the stage behind infer_behavior_lstm.py, batch_process_videos.py
and benchmark_pipeline.py (one Predictor, loaded once, for any number of videos).

    cfg, predictor = load_folder_predictor(args)
    result = classify_video(predictor, cfg)          # paths, tables and counts of one recording
    with BackgroundWriter() as writer:               # outputs written while the next recording is classified
        future = classify_video(predictor, cfg, writer=writer)
"""
import argparse
import csv
import logging
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from predictor import Predictor
from utils.config import add_config_arguments, dump_config, resolve_config
from utils.errors import UserError
from utils.io import atomic_write_csv, ensure_dir, output_set
from utils.data.live import LiveSource, is_live_source, source_stem
from utils.logging_utils import setup_logging
from utils.features.motion import body_axis
from utils.results.outputs import write_outputs
from utils.schema import InferenceConfig
from utils.features.social import contact_bouts
from utils.results.timeline import bout_frames
from utils.timing import StageTimer

log = logging.getLogger("infer")


def get_folder_args_parser(doc: str, input_help: str, add_help: bool = True) -> argparse.ArgumentParser:
    """Parser of the scripts that run inference over a folder: every inference flag, plus --input_dir and
    --output_root; --video_path and --output_dir are set per video (classify_in_tree)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0], add_help=add_help, epilog=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, (InferenceConfig,), required=("model_path",), exclude=("video_path", "output_dir"))
    parser.add_argument("--input_dir", required=True, help="folder searched recursively: " + input_help)
    parser.add_argument("--output_root", required=True, help="outputs go to output_root/<same relative folder>/")
    return parser


def load_folder_predictor(args, timer: StageTimer = None) -> tuple:
    """(InferenceConfig, Predictor) of a folder run: the model and detector are loaded once for all videos."""
    cfg = resolve_config(args, InferenceConfig, required=("model_path",))
    return cfg, Predictor.from_checkpoint(cfg.model_path, cfg, timer)


class BackgroundWriter:
    """Writes a recording's outputs in one background thread while the caller classifies the next recording, so a
    folder run is bound by detection, not by writing tables, the workbook, the ethogram and review videos, where
    detection leaves cores idle (a GPU; on a 2-core CPU it was slower: write_in_background is opt-in). At most
    one recording waits to be written (submit waits for the one before): memory stays that of two recordings'
    per-frame results. Leaving the `with` block (also on Ctrl-C or an error) waits for the write in progress; every
    output is written atomically and published as a set, so nothing half-written is left either way."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outputs", initializer=lower_priority)
        self._last = None

    def submit(self, job) -> Future:
        if self._last is not None:
            wait([self._last])  # its error, if any, is the caller's to read from its future
        self._last = self._pool.submit(job)
        return self._last

    def __enter__(self) -> "BackgroundWriter":
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True)


def lower_priority() -> None:
    """The writing thread yields the cores to detection: niced (Linux gives each thread its own priority)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # no per-thread priority (macOS, Windows) or not allowed
        pass


def classify_in_tree(predictor: Predictor, cfg: InferenceConfig, input_dir, output_root, video: Path,
                     writer: BackgroundWriter = None):
    """classify_video on one video of input_dir, its outputs in the mirrored folder under output_root."""
    out_dir = Path(output_root) / video.relative_to(input_dir).parent
    return classify_video(predictor, replace(cfg, video_path=str(video), output_dir=str(out_dir)), writer=writer)


def classify_video(predictor: Predictor, cfg: InferenceConfig, timer: StageTimer = None,
                   writer: BackgroundWriter = None):
    """Predict one recording and write every output; returns paths, tables and counts. With `writer` (not for live
    sources), returns once the recording is classified: a Future of that result, written in the background."""
    start = time.perf_counter()
    timer = timer or StageTimer()
    video, stem = Path(cfg.video_path), source_stem(cfg.video_path)
    out_dir = ensure_dir(cfg.output_dir or video.parent)
    setup_logging(out_dir / f"{stem}.infer.log")
    log.info("command: %s", " ".join(sys.argv))
    if cfg.live or is_live_source(cfg.video_path):
        predictions = [classify_live(predictor, cfg, out_dir / f"{stem}.live.csv", timer)]
        writer = None
    else:
        predictions = [predictor.predict_video(video, timer, animal) for animal in predictor.animals(video)]
    # what the outputs say of the model, detector and recording, read now: the detector moves on to the next one
    job = partial(write_recording, predictor.class_names, predictor.describe(), predictor.detector.recording, cfg,
                  predictions, out_dir, stem, timer, start)
    return writer.submit(job) if writer else job()


def write_recording(class_names: list, described: dict, recording, cfg: InferenceConfig, predictions: list,
                    out_dir: Path, stem: str, timer: StageTimer, start: float) -> dict:
    """Every output of one recording (one prediction per animal; `described`: the predictor's description,
    `recording`: the pose file's every animal or None), published together: a failure leaves the previous set."""
    with output_set(out_dir) as staging:
        dump_config(cfg, staging / f"{stem}.config.yaml")
        results = [write_prediction(class_names, described, cfg, prediction, staging, timer, start)
                   for prediction in predictions]
        results[0]["other_animals"] = results[1:]  # several animals: each has its own outputs, <stem>.<animal>.*
        if len(results) > 1:
            results[0]["paths"]["social"] = write_contact_bouts(recording, cfg, results, staging / f"{stem}.social.csv")
    for result in results:
        result["paths"] = {kind: out_dir / path.name for kind, path in result["paths"].items()}
    log.info("wrote %s", ", ".join(str(p) for r in results for p in r["paths"].values()))
    return results[0]


def write_contact_bouts(recording, cfg: InferenceConfig, results: list, path: Path) -> Path:
    """<stem>.social.csv: contact bouts between every pair of animals of the pose file `recording` (`results`: one
    per animal), with the behaviour each animal showed most during the bout."""
    axis = body_axis(recording.keypoint_names, len(recording.keypoint_names))
    bouts = contact_bouts(recording.xy, recording.conf, recording.individuals, axis, results[0]["fps"],
                          cfg.contact_distance, bout_frames(cfg.min_bout_s, results[0]["fps"]))
    labels = {r["animal"]: r["frames_table"]["label"] for r in results}
    for side in ("a", "b"):
        animal = bouts[f"animal_{side}"]
        bouts[f"behavior_{side}"] = [labels[a][start:end + 1].mode().iloc[0]
                                     for a, start, end in zip(animal, bouts["start_frame"], bouts["end_frame"])]
    atomic_write_csv(path, bouts)
    log.info("%d contact bouts (nearest keypoints closer than %.2f body lengths): %s", len(bouts),
             cfg.contact_distance, path)
    return path


def write_prediction(class_names: list, described: dict, cfg: InferenceConfig, prediction, out_dir: Path,
                     timer: StageTimer, start: float) -> dict:
    """Write every output of one prediction (one animal of one recording); returns paths, tables and counts."""
    log.info("Pose features used in %d/%d windows", prediction.with_pose, prediction.windows)
    meta_rows = {**described, "fps": prediction.fps, "animal": prediction.animal,
                 "windows": prediction.windows, "windows_with_pose": prediction.with_pose,
                 "frames_dropped": prediction.dropped, "damage": "; ".join(prediction.damage) or "none",
                 "detections_reused": prediction.detections_reused,
                 **(prediction.drift or {"drift_score": "not available: the model has no drift reference"})}
    with timer.stage("write"):
        result = write_outputs(prediction, class_names, cfg, out_dir, meta_rows)
    result["frames_table"] = result["frames"]
    result.update(class_names=class_names, seconds=dict(timer.seconds), fps=prediction.fps,
                  animal=prediction.animal, other_animals=[],
                  total_seconds=time.perf_counter() - start, labels=result["frames"]["label"].to_numpy(),
                  windows=prediction.windows, windows_with_pose=prediction.with_pose, skipped=prediction.skipped,
                  backbone_frames=prediction.backbone_frames, frames=prediction.frames, drift=prediction.drift,
                  damage=prediction.damage, detections_reused=prediction.detections_reused)
    log.info("%d frames, %d windows (%d skipped), backbone encoded %d frames", prediction.frames,
             prediction.windows, prediction.skipped, prediction.backbone_frames)
    return result


def classify_live(predictor: Predictor, cfg: InferenceConfig, live_csv: Path, timer: StageTimer):
    """Run a live source, appending each window's label to live_csv as it comes (header first, one flushed row
    per window: a reader sees whole rows only)."""
    if not predictor.detector.streams:
        raise UserError(f"live mode needs the yolo detector; this model was trained with {predictor.settings.detector}"
                        f" (its background model is built from frames sampled across a whole file)")
    source = LiveSource(cfg.video_path, pace=not is_live_source(cfg.video_path))
    names, fps, latencies = predictor.class_names, source.fps, []
    with open(live_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["window_start", "window_end", "start_time_s", "label", "confidence", "latency_s"])
        f.flush()

        def on_window(start: int, probs, latency: float, t: int) -> None:
            best = int(probs.argmax())
            writer.writerow([start, start + t - 1, round(start / fps, 3), names[best], round(float(probs[best]), 4),
                             round(latency, 4)])
            f.flush()
            latencies.append(latency)
        prediction = predictor.predict_live(source, on_window, timer)
    if latencies:
        log.info("live: %d windows labelled, latency from the capture of a window's last frame to its label: median "
                 "%.3f s, max %.3f s; %d frames dropped", len(latencies), float(np.median(latencies)),
                 max(latencies), prediction.dropped)
    return prediction
