"""Tracking only, for labs without a classifier yet: find the animal in every frame, and report where it went,
how far and how fast, and how long it spent in each zone.

Usage:
    python3 track_video.py --video_path session1.mp4 --yolo_weights weights/mouse_pose.pt --output_dir tracks/
    python3 track_video.py --video_path videos/ --detector background --pixels_per_cm 12.5 \
        --zones "centre:160,120;480,120;480,360;160,360" "corner:0,0;100,0;0,100"
    python3 track_video.py --video_path sessionDLC_resnet50_boxOct30shuffle1_6000.h5 --detector pose_file --pose_fps 50

--video_path takes videos, pose files (DeepLabCut, SLEAP, Anipose 3D, NWB; with --detector pose_file) or folders (every
video in them). Per recording, in --output_dir (default: beside it), with <stem>.<animal> for each animal of a
multi-animal pose file:
    <stem>.tracking.csv      per frame: detection status and confidence, box, crop box, keypoints (frame px),
                             position (keypoint centre, else box centre), speed, moving, and one in_<zone> column
                             per zone
    <stem>.tracking.xlsx     sheets summary (distance, mean speed, time moving, detection rate), per_frame
                             (kinematics in px and, with --pixels_per_cm, cm), zones, metadata
    <stem>.trajectory.png    the path over a frame of the video, zones drawn
    <stem>.speed.png         speed over time with the moving threshold
The detector settings are the preprocessing ones; the same zones, given to infer_behavior_lstm.py, are reported
per behaviour in its workbook. Formats: docs/formats.md.
"""
import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from detectors import build_detector, detector_class, warn_ignored_settings
from frame_pipeline import iter_frame_records, prepare_source, tracking_row
from utils.config import add_config_arguments, dump_config, resolve_config
from utils.errors import UserError, run_cli
from utils.io import atomic_write_csv, atomic_write_xlsx, ensure_dir
from utils.results.kinematics import animal_positions, interpolate_gaps, point_kinematics
from utils.data.live import source_stem
from utils.logging_utils import progress, setup_logging
from utils.features.motion import centred_mean
from utils.results.outputs import metadata_table
from utils.results.plots import plot_speed, plot_trajectory
from utils.readers.pose_io import find_recordings, is_pose_file, recording_animals
from utils.schema import TRACKING_SETTINGS, InferenceConfig, PreprocessingConfig
from utils.data.video_io import is_video_file, sample_frames
from utils.results.zones import parse_zones, zone_table

log = logging.getLogger("track")
# positions are averaged over this long before distance and speed: a tracker's jitter of a pixel per frame alone
# would add tens of px/s of movement to a still animal, and inflate the distance travelled
SMOOTH_SECONDS = 0.3


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video_path", nargs="+", required=True,
                        help="videos, pose files or folders of videos to track")
    parser.add_argument("--output_dir", default=None, help="folder for the outputs; default: beside each recording")
    add_config_arguments(parser, (PreprocessingConfig, InferenceConfig), only=TRACKING_SETTINGS)
    return parser


def recordings(paths, pose_files: bool) -> list:
    """Every recording named: files as given, folders searched (videos, or pose files with --detector pose_file)."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += find_recordings(path, pose_files, [])
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"--video_path {path} does not exist")
    if not found:
        raise UserError(f"no video{' or pose file' if pose_files else ''} found in {', '.join(map(str, paths))}")
    return found


def track(path: Path, detector, cfg, animal=None) -> tuple:
    """(tracking table, fps) of one animal in one recording."""
    info = prepare_source(path, detector, cfg, animal)
    rows = []
    with progress(total=max(info.frame_count, 0), desc=f"frames {path.name}") as bar:
        for records in iter_frame_records(path, detector, cfg):
            rows += [tracking_row(r, detector.num_keypoints) for r in records]
            bar.update(len(records))
    return pd.DataFrame(rows), info.fps


def positions(table: pd.DataFrame, num_keypoints: int) -> np.ndarray:
    """[N, 2] per frame: the centre of the keypoints (each keypoint's short losses filled in time) where the animal
    was found with keypoints, else its box centre; NaN where it was not found."""
    boxes = table[["box_x1", "box_y1", "box_x2", "box_y2"]].to_numpy(np.float64)
    if not num_keypoints:
        return animal_positions(boxes, None)
    xy = np.stack([table[[f"kp{k}_x", f"kp{k}_y"]].to_numpy(np.float64) for k in range(num_keypoints)], 1)
    seen = np.isfinite(xy).all(2).any(1)
    with np.errstate(all="ignore"):
        centres = np.nanmean(interpolate_gaps(xy), axis=1)
    return animal_positions(boxes, np.where(seen[:, None], centres, np.nan))


def body_length_px(table: pd.DataFrame) -> float:
    """The median long side of the animal's box over the recording: the unit of the moving threshold."""
    sides = np.maximum(table["box_x2"] - table["box_x1"], table["box_y2"] - table["box_y1"]).to_numpy(np.float64)
    sides = sides[np.isfinite(sides)]
    return float(np.median(sides)) if len(sides) else np.nan


def kinematics(table: pd.DataFrame, xy: np.ndarray, fps: float, report) -> tuple:
    """(per-frame kinematics, summary row) of the positions averaged over SMOOTH_SECONDS."""
    smooth = centred_mean(xy, fps, SMOOTH_SECONDS)
    smooth[~np.isfinite(xy).all(1)] = np.nan  # not found stays not found
    per_frame = pd.DataFrame({"frame": table["frame"], "time_s": table["frame"] / fps, "x_px": xy[:, 0],
                              "y_px": xy[:, 1], "x_smoothed_px": smooth[:, 0], "y_smoothed_px": smooth[:, 1],
                              **point_kinematics(smooth, fps, "", report.pixels_per_cm)})
    body = body_length_px(table)
    per_frame["moving"] = per_frame["speed_px_s"] > report.moving_speed * body  # NaN (not found) is not moving
    detected = np.isfinite(xy).all(1)
    summary = {"frames": len(table), "duration_s": len(table) / fps, "fps": fps,
               "frames_with_animal_percent": 100 * detected.mean() if len(table) else 0.0,
               "body_length_px": body, "distance_px": np.nansum(per_frame["step_px"]),
               "mean_speed_px_s": np.nanmean(per_frame["speed_px_s"]) if detected.any() else np.nan,
               "time_moving_s": per_frame["moving"].sum() / fps,
               "time_moving_percent": 100 * per_frame["moving"].sum() / max(detected.sum(), 1),
               "moving_threshold_px_s": report.moving_speed * body}
    if report.pixels_per_cm:
        summary.update(distance_cm=summary["distance_px"] / report.pixels_per_cm,
                       mean_speed_cm_s=summary["mean_speed_px_s"] / report.pixels_per_cm)
    return per_frame.round(4), summary


def background_image(path: Path):
    """An RGB frame of the video for the trajectory plot; None for a pose file without video."""
    if not is_video_file(path):
        return None
    return sample_frames(path, 1)[0][..., ::-1]


def write_track(path: Path, animal, table: pd.DataFrame, fps: float, cfg, out_dir: Path, num_keypoints: int) -> dict:
    """Every output of one tracked animal; returns the summary row and the paths."""
    report, zones = cfg.inference, parse_zones(cfg.inference.zones)
    stem = source_stem(path) + (f".{animal}" if animal else "")
    xy = positions(table, num_keypoints)
    per_frame, summary = kinematics(table, xy, fps, report)
    table = table.assign(x_px=per_frame["x_px"], y_px=per_frame["y_px"], speed_px_s=per_frame["speed_px_s"],
                         moving=per_frame["moving"].astype(int),
                         **{f"in_{z.name}": z.contains(xy).astype(int) for z in zones})
    paths = {"tracking": out_dir / f"{stem}.tracking.csv", "workbook": out_dir / f"{stem}.tracking.xlsx",
             "trajectory": out_dir / f"{stem}.trajectory.png", "speed": out_dir / f"{stem}.speed.png"}
    atomic_write_csv(paths["tracking"], table.round(4))
    sheets = {"summary": pd.DataFrame([{"recording": str(path), "animal": animal, **summary}]).round(4),
              "per_frame": per_frame, "zones": zone_table(xy, zones, fps),
              "metadata": metadata_table(cfg.preprocessing, {"source": str(path), **{
                  k: getattr(report, k) for k in TRACKING_SETTINGS[InferenceConfig]}})}
    atomic_write_xlsx(paths["workbook"], sheets)
    plot_trajectory(xy, zones, background_image(path), paths["trajectory"],
                    f"{stem}: path over {summary['duration_s']:.0f} s")
    plot_speed(per_frame["time_s"].to_numpy(), per_frame["speed_px_s"].to_numpy(),
               summary["moving_threshold_px_s"], "px/s", paths["speed"])
    log.info("%s: animal found in %.1f%% of %d frames, distance %.0f px%s, moving %.1f%% of the time; wrote %s",
             stem, summary["frames_with_animal_percent"], summary["frames"], summary["distance_px"],
             f" ({summary['distance_cm']:.1f} cm)" if report.pixels_per_cm else "", summary["time_moving_percent"],
             ", ".join(str(p) for p in paths.values()))
    return {"summary": summary, "paths": paths, "zones": sheets["zones"]}


def main(args):
    cfg = resolve_config(args, (PreprocessingConfig, InferenceConfig))
    settings = cfg.preprocessing
    reads_pose_files = detector_class(settings.detector).reads_pose_files
    sources = recordings(args.video_path, reads_pose_files)
    if any(is_pose_file(s) for s in sources) and not reads_pose_files:
        pose = next(s for s in sources if is_pose_file(s))
        raise UserError(f"{pose} is a pose file; track it with --detector pose_file")
    warn_ignored_settings(settings)
    detector = build_detector(settings.detector, settings)  # loaded once for every recording
    results = []
    for path in sources:
        out_dir = ensure_dir(args.output_dir or path.parent)
        setup_logging(out_dir / f"{source_stem(path)}.track.log")
        dump_config([settings, cfg.inference], out_dir / f"{source_stem(path)}.track_config.yaml")
        start = time.perf_counter()
        for animal in recording_animals(path, reads_pose_files):
            table, fps = track(path, detector, settings, animal)
            results.append(write_track(path, animal, table, fps, cfg, out_dir, detector.num_keypoints))
        log.info("%s tracked in %.1f s", path, time.perf_counter() - start)
    return results


if __name__ == "__main__":
    run_cli(main, get_args_parser())
