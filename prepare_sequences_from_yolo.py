"""Stage B: turn a folder of labelled videos into cropped training windows and sequence_manifest.json.

Usage:
    python prepare_sequences_from_yolo.py --dataset_root data/clips --output_root prepared \
        --yolo_weights tests/fixtures/tiny_yolo_pose.pt
    python prepare_sequences_from_yolo.py --dataset_root data/arena --output_root prepared --detector background
    python prepare_sequences_from_yolo.py --config my_lab.yaml --skip_existing

Dataset layouts (docs/formats.md):
    class_folders    dataset_root/<behaviour>/**/<video>; every window of a video takes its folder's class
    labelled_videos  dataset_root/**/<video> with <stem>.csv (`frame,behavior`) or a BORIS export beside it;
                     a window takes the label of its centre frame; windows over unlabelled frames are skipped
With --detector pose_file a recording is a video with its pose file beside it (DeepLabCut, SLEAP, Anipose 3D,
NWB), or a pose file alone (no video: the windows hold keypoints and boxes but no frames, for pose-only and gbt
models). A pose file that tracks several animals gives one recording per animal (labels per animal:
docs/formats.md).
"""
import argparse
import hashlib
import json
import logging
import os
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from cropping import draw_keypoints
from detectors import RecordedDetector, build_detector, detector_class, warn_ignored_settings
from frame_pipeline import iter_frame_records, prepare_source, tracking_row, window_arrays
from utils.config import add_config_arguments, dump_config, resolve_config, settings_dict
from utils.data.crop_store import CropStoreWriter
from utils.errors import DiskError, UserError, run_cli
from utils.io import atomic_path, atomic_save_npz, atomic_write_csv, atomic_write_json, ensure_dir
from utils.readers.labels import label_file_of, load_frame_labels
from utils.readers.sensors import dataset_channels, frame_sensors, sensor_file_of
from utils.logging_utils import progress, setup_logging
from utils.data.manifest import SCHEMA_VERSION, write_manifest
from utils.features.motion import body_axis
from utils.readers.pose_io import find_pose_file, find_recordings, flip_idx_from_names, is_pose_file, read_pose_file
from utils.schema import PreprocessingConfig
from utils.data.splits import SPLITS, read_split_file, split_by_video, stratified_assign, teaching_problems
from utils.data.video_io import video_info
from utils.data.windows import Windower, usable

log = logging.getLogger("prepare")
REQUIRED = ("dataset_root", "output_root")
# settings that change what a finished video's windows contain; --skip_existing reuses a video only if they match
FINGERPRINT_KEYS = ("dataset_layout", "background_label", "keep_last_box", "max_reuse_frames", "crop_size",
                    "pad_ratio", "window_size", "window_stride", "save_sequence_npz", "save_frame_crops",
                    "detect_every", "pose_min_likelihood", "pose_box_margin", "keypoint_map", "pose_fps",
                    "boris_subject", "sensor_rate", "sensor_offset_s", "pixels_per_cm", "body_length_cm")


@dataclass
class VideoItem:
    path: Path  # a video, or a pose file alone (detector pose_file)
    rel: str  # path relative to dataset_root, posix; "<path>#<animal>" for one animal of a multi-animal pose file
    video_id: str  # unique, file-name safe
    class_name: str = None  # class_folders layout
    label_file: Path = None  # labelled_videos layout
    individual: str = None  # the animal's name in a multi-animal pose file
    pose_file: Path = None  # detector pose_file: the file its keypoints come from
    pose_frames: int = 0  # frames of that pose file, for the progress bar

    @property
    def recording(self) -> str:
        """The recording's relative path: all animals of one recording share it (and its split)."""
        return self.rel.split("#")[0]


@dataclass
class VideoResult:
    windows: list = field(default_factory=list)  # manifest entries without split
    dropped: Counter = field(default_factory=Counter)
    frames: int = 0
    status_counts: Counter = field(default_factory=Counter)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_config_arguments(parser, (PreprocessingConfig,), required=REQUIRED)
    return parser


def video_id_for(rel: str) -> str:
    """Readable and unique: the relative path flattened, plus a short hash of it (same names never collide)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(Path(rel).with_suffix("")).replace("/", "__"))
    return f"{stem}-{hashlib.sha1(rel.encode()).hexdigest()[:6]}"


def per_animal(items: list, min_likelihood: float, skipped: list) -> list:
    """Items of multi-animal pose files split into one item per animal (rel <path>#<animal>); a pose file that
    cannot be read is skipped with the reason."""
    out = []
    for item in items:
        item.pose_file = item.path if is_pose_file(item.path) else find_pose_file(item.path)
        try:
            recording = read_pose_file(item.pose_file, min_likelihood)
        except UserError as exc:
            skipped.append(str(exc))
            continue
        item.pose_frames = recording.num_frames
        if len(recording.individuals) == 1:
            out.append(item)
            continue
        for animal in recording.individuals:
            rel = f"{item.rel}#{animal}"
            out.append(VideoItem(item.path, rel, video_id_for(rel), item.class_name, item.label_file, animal,
                                 item.pose_file, recording.num_frames))
    return out


def discover_videos(root: Path, layout: str, detector: str = "yolo", min_likelihood: float = 0.0) -> tuple:
    """(layout used, [VideoItem], [skip messages]) for the dataset folder."""
    if not root.is_dir():
        raise UserError(f"dataset_root {root} is not a folder; pass --dataset_root with your videos")
    skipped, reads_pose_files = [], detector_class(detector).reads_pose_files
    videos = find_recordings(root, reads_pose_files, skipped)
    if layout == "auto":
        layout = "labelled_videos" if any(label_file_of(v) for v in videos) else "class_folders"
    if layout == "class_folders":
        items = [VideoItem(v, v.relative_to(root).as_posix(), video_id_for(v.relative_to(root).as_posix()),
                           class_name=v.relative_to(root).parts[0]) for v in videos if v.parent != root]
        skipped += [f"{v.name}: at the top of dataset_root, not in a class folder" for v in videos if v.parent == root]
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if not any(i.class_name == folder.name for i in items):
                skipped.append(f"class folder '{folder.name}' holds no video (mp4, avi, mov, mkv); class left out")
    else:
        items = []
        for v in videos:
            rel = v.relative_to(root).as_posix()
            label_file = label_file_of(v)
            if label_file is None:
                skipped.append(f"{rel}: no label file beside it (<stem>.csv or BORIS export)")
                continue
            items.append(VideoItem(v, rel, video_id_for(rel), label_file=label_file))
    if not items:
        raise UserError(f"no usable videos under {root} (layout {layout}, detector {detector}); expected "
                        + ("<root>/<behaviour>/<video>.mp4" if layout == "class_folders"
                           else "<video>.mp4 with <video>.csv `frame,behavior` beside it")
                        + (" and a pose file beside each video, or pose files alone" if reads_pose_files else ""))
    return layout, (per_animal(items, min_likelihood, skipped) if reads_pose_files else items), skipped



class WindowWriter:
    """Receives processed frames (FrameRecords) in order and writes each window as soon as it is complete."""

    def __init__(self, item: VideoItem, cfg, out_root: Path, manifest_dir: Path, labels, fps: float, num_kp: int,
                 has_frames: bool = True):
        self.item, self.cfg, self.out_root, self.manifest_dir = item, cfg, out_root, manifest_dir
        self.labels, self.fps, self.num_kp, self.has_frames = labels, fps, num_kp, has_frames
        self.windower = Windower(cfg.window_size, cfg.window_stride)
        self.result = VideoResult()
        self.store_path = out_root / "frames" / f"{item.video_id}.h5"
        # each frame's crop once, in the video's crop store; the window files hold keypoints, boxes and indices
        self.store = CropStoreWriter(self.store_path, cfg.crop_size) if has_frames and cfg.save_sequence_npz else None

    def add(self, record) -> None:
        if self.store is not None:
            self.store.put(record.index, record.crop)
        for start, frames in self.windower.push(record):
            self._emit(start, frames)

    def finish(self) -> None:
        for start, frames in self.windower.finish():
            self._emit(start, frames)
        if self.store is not None:
            self.store.close()

    def abort(self) -> None:
        """A failed or stopped video: no partial crop store is left behind."""
        if self.store is not None:
            self.store.abort()

    def _window_label(self, start: int):
        return self._frame_label(start + self.cfg.window_size // 2)

    def _frame_label(self, frame: int):
        if self.item.class_name is not None:
            return self.item.class_name
        return self.labels.label_at(frame, self.cfg.background_label)

    def _emit(self, start: int, frames: list) -> None:
        if not usable(frames):
            self.result.dropped["missed_detection"] += 1
            return
        label = self._window_label(start)
        if label is None:
            self.result.dropped["unlabelled_centre_frame"] += 1
            return
        window_id = f"{self.item.video_id}_f{start:07d}"
        npz_path = self.out_root / "sequence_npz" / _safe(label) / f"{window_id}.npz"
        has_kp = self.num_kp > 0 and all(f.keypoints_crop is not None for f in frames)
        if self.cfg.save_sequence_npz:
            atomic_save_npz(npz_path, **self._arrays(frames, has_kp))
        if self.cfg.save_frame_crops and self.has_frames:
            self._write_qa(frames[len(frames) // 2], label, window_id)
        end = start + self.cfg.window_size - 1
        self.result.windows.append({
            "id": window_id, "class_name": label,
            "npz": relative_to_manifest(npz_path, self.manifest_dir) if self.cfg.save_sequence_npz else None,
            "start_frame": start, "end_frame": end, "fps": self.fps, "source_video": self.item.rel,
            "has_keypoints": has_kp, "has_frames": self.has_frames,
            "crop_store": relative_to_manifest(self.store_path, self.manifest_dir) if self.store else None})

    def _arrays(self, frames, has_kp: bool) -> dict:
        arrays = window_arrays(frames, self.num_kp)
        arrays.update(crop_xyxy=np.stack([f.crop_box for f in frames]).astype(np.float32),
                      frame_index=np.array([f.index for f in frames], np.int64),
                      detection_status=np.array([f.status for f in frames]),
                      detection_conf=np.array([f.confidence for f in frames], np.float32),
                      # every frame's own label ("" unlabelled or ambiguous): dense models learn from all of them
                      frame_labels=np.array([self._frame_label(f.index) or "" for f in frames]))
        if has_kp:
            arrays["keypoints"] = np.stack([f.keypoints_crop for f in frames]).astype(np.float32)
        return arrays

    def _write_qa(self, frame, label: str, window_id: str) -> None:
        image = frame.crop if frame.keypoints_crop is None else draw_keypoints(frame.crop, frame.keypoints_crop)
        with atomic_path(self.out_root / "qa_crops" / _safe(label) / f"{window_id}.jpg") as tmp:
            cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def relative_to_manifest(path, manifest_dir: Path) -> str:
    """Posix path of `path` relative to the manifest's folder (which may lie outside output_root)."""
    return Path(os.path.relpath(path, manifest_dir)).as_posix()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def process_video(item: VideoItem, detector, cfg, out_root: Path, manifest_dir: Path, bar,
                  sensor_channels: list = ()) -> VideoResult:
    """Detect, track, crop and window one video (or pose file), streaming; writes its npz files and its tracking
    table. `sensor_channels`: the dataset's sensor streams, aligned to this recording's frames into its windows."""
    info = prepare_source(item.path, detector, cfg, item.individual)
    sensors = None
    if sensor_channels:
        sensors = frame_sensors(item.path, info.frame_count, info.fps, cfg.sensor_rate, cfg.sensor_offset_s,
                                sensor_channels, "the dataset's first stream")
    labels = None
    if item.label_file is not None:
        labels = load_frame_labels(item.label_file, max(info.frame_count, 1), info.fps,
                                   item.individual or cfg.boris_subject, media=item.path)
    writer = WindowWriter(item, cfg, out_root, manifest_dir, labels, info.fps, detector.num_keypoints, info.has_frames)
    rows = []
    try:
        for records in iter_frame_records(item.path, detector, cfg, sensors=sensors):
            for record in records:
                rows.append(tracking_row(record, detector.num_keypoints))
                writer.add(record)
            bar.update(len(records))
    except BaseException:
        writer.abort()
        raise
    writer.finish()
    result = writer.result
    result.frames = len(rows)
    result.status_counts = Counter(r["status"] for r in rows)
    if result.status_counts.get("detected", 0) == 0:
        raise UserError(f"no animal detected in any of the {len(rows)} frames of {item.rel}: {detector.miss_hint}")
    if len(rows) < cfg.window_size:
        result.dropped["video_shorter_than_window"] += 1
    if labels is not None and labels.ambiguous:
        result.dropped["ambiguous_frames(overlapping events)"] += len(labels.ambiguous)
    atomic_write_csv(out_root / "tracking" / f"{item.video_id}.csv", pd.DataFrame(rows))
    return result


def detection_fingerprint(cfg, detector, item: VideoItem) -> dict:
    """What the detections of a video depend on: the video, the detector (its weights file's size and time
    too) and detect_every. The runtime and its measured agreement may differ between runs within tolerance."""
    stat = item.path.stat()
    weights = detector.weights_file
    weights_stat = [weights.stat().st_size, weights.stat().st_mtime] if weights and weights.is_file() else None
    pose = item.pose_file.stat() if item.pose_file else None
    described = {k: v for k, v in detector.describe().items() if not k.startswith(("detector_", "pose_software"))}
    return {"detector": described, "weights_file": weights_stat, "detect_every": cfg.detect_every,
            "video_size": stat.st_size, "video_mtime": stat.st_mtime,
            "pose_file": [str(item.pose_file), pose.st_size, pose.st_mtime, item.individual] if pose else None}


def fingerprint(cfg, detector, item: VideoItem) -> dict:
    label_stat = item.label_file.stat().st_mtime if item.label_file else None
    stream = sensor_file_of(item.path)
    return {"schema_version": SCHEMA_VERSION, "settings": {k: getattr(cfg, k) for k in FINGERPRINT_KEYS},
            "detection": detection_fingerprint(cfg, detector, item), "label_mtime": label_stat,
            "class_name": item.class_name,
            "sensors": [stream.name, stream.stat().st_size, stream.stat().st_mtime] if stream else None}


def recorded_detections(record_path: Path, expected: dict, tracking: Path, detector, cfg):
    """A RecordedDetector replaying the tracking table of an earlier run whose detections are still valid
    (same detection fingerprint), so that changing only crop, window or label settings skips the detector."""
    if detector.reads_pose_files or not (record_path.is_file() and tracking.is_file()):
        return None  # a pose file is read as fast as its tracking table, and it holds every animal
    record = json.loads(record_path.read_text())
    if (record.get("fingerprint") or {}).get("detection") != expected["detection"]:
        return None
    return RecordedDetector.from_table(pd.read_csv(tracking), detector)


def load_finished(record_path: Path, expected: dict, manifest_dir: Path):
    """The VideoResult of an earlier run of this video, if its settings match and its files all exist."""
    if not record_path.is_file():
        return None
    record = json.loads(record_path.read_text())
    if record.get("fingerprint") != expected:
        return None
    files = [w[key] for w in record["windows"] for key in ("npz", "crop_store") if w.get(key)]
    if any(not (manifest_dir / f).is_file() for f in files):
        return None
    return VideoResult(record["windows"], Counter(record["dropped"]), record["frames"], Counter(record["status_counts"]))


def assign_splits(results: dict, cfg) -> dict:
    """{split: [entries]} following split_strategy."""
    ratios = (cfg.train_ratio, cfg.val_ratio, cfg.test_ratio)
    windows = [w for r in results.values() for w in r.windows]
    if cfg.split_strategy == "video":  # every animal of a recording goes with it
        recordings = defaultdict(list)
        for v, r in results.items():
            recordings[v.split("#")[0]] += [w["class_name"] for w in r.windows]
        by_video = split_by_video({v: names for v, names in recordings.items() if names}, ratios, cfg.seed)
        split_of = lambda w: by_video[w["source_video"].split("#")[0]]  # noqa: E731
    elif cfg.split_strategy == "window":
        groups = defaultdict(list)
        for w in windows:
            groups[w["class_name"]].append(w["id"])
        by_window = stratified_assign(groups, ratios, cfg.seed)
        split_of = lambda w: by_window[w["id"]]  # noqa: E731
    else:
        by_file = read_split_file(cfg.split_file, sorted({v.split("#")[0] for v in results}))
        split_of = lambda w: by_file[w["source_video"].split("#")[0]]  # noqa: E731
    splits = {s: [] for s in SPLITS}
    for w in windows:
        splits[split_of(w)].append(w)
    return splits


def build_manifest(cfg, layout, detector, results: dict, splits: dict, fps_values, kp_names, flip_idx,
                   out_root: Path, manifest_dir: Path) -> dict:
    classes = sorted({w["class_name"] for entries in splits.values() for w in entries})
    class_to_idx = {c: i for i, c in enumerate(classes)}
    for entries in splits.values():
        for w in entries:
            w["label"] = class_to_idx[w["class_name"]]
    fps = sorted(set(fps_values))
    meta = settings_dict(cfg)  # every preprocessing setting, so inference can rebuild the same pipeline
    meta.update(detector.describe())  # what the detector actually ran with (e.g. its native imgsz)
    meta.update({"dataset_layout": layout, "dataset_root": str(Path(cfg.dataset_root).resolve()),
                 "num_keypoints": detector.num_keypoints, "keypoint_names": kp_names, "flip_idx": flip_idx,
                 "spatial_dims": detector.spatial_dims,
                 "body_axis": list(body_axis(kp_names, detector.num_keypoints)),
                 "fps": fps[0] if len(fps) == 1 else None,
                 "has_frames": all(w["has_frames"] for entries in splits.values() for w in entries),
                 "social": any("#" in v for v in results),  # several animals per recording: social features
                 "frame_format": "RGB uint8 [N,S,S,3] per video in frames/<video_id>.h5 (utils/data/crop_store.py), "
                                 "row = frame index; a window's crop_store and start_frame..end_frame select its "
                                 "frames; absent for pose files without video",
                 "keypoint_format": "float32 [T,K,3] crop pixels (x, y, conf)"})
    return {"schema_version": SCHEMA_VERSION, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "class_to_idx": class_to_idx, "idx_to_class": {str(i): c for c, i in class_to_idx.items()},
            "meta": meta, "splits": splits,
            "videos": {v: {"tracking": relative_to_manifest(out_root / "tracking" / f"{video_id}.csv", manifest_dir),
                           "frames": r.frames,
                           "status_counts": dict(r.status_counts), "windows": len(r.windows),
                           "dropped": dict(r.dropped)} for v, (video_id, r) in results.items()}}


def summary_lines(results: dict, splits: dict, skipped: list, strategy: str) -> list:
    lines = [f"videos processed: {len(results)}, skipped: {len(skipped)}"]
    lines += [f"  skipped {s}" for s in skipped]
    classes = sorted({w["class_name"] for e in splits.values() for w in e})
    lines.append("windows per class and split:")
    lines.append(f"  {'class':<20}" + "".join(f"{s:>8}" for s in SPLITS))
    for c in classes:
        lines.append(f"  {c:<20}" + "".join(f"{sum(w['class_name'] == c for w in splits[s]):>8}" for s in SPLITS))
    lines.append(f"  {'total':<20}" + "".join(f"{len(splits[s]):>8}" for s in SPLITS))
    for problem in teaching_problems({s: [w["class_name"] for w in splits[s]] for s in SPLITS},
                                     {s: {w["source_video"].split("#")[0] for w in splits[s]} for s in SPLITS},
                                     strategy):
        lines.append(f"  WARNING: {problem}")
    dropped = sum((r.dropped for _, r in results.values()), Counter())
    lines.append("dropped: " + (", ".join(f"{k}={v}" for k, v in sorted(dropped.items())) or "none"))
    return lines


def main(args):
    cfg = resolve_config(args, PreprocessingConfig, required=REQUIRED)
    out_root = ensure_dir(cfg.output_root, "output_root")
    manifest_path = Path(cfg.manifest_path) if cfg.manifest_path else out_root / "sequence_manifest.json"
    manifest_dir = manifest_path.parent.resolve()
    out_root = out_root.resolve()
    setup_logging(out_root / "prepare.log")
    log.info("command: %s", " ".join(sys.argv))
    dump_config(cfg, out_root / "config.yaml")
    layout, items, skipped = discover_videos(Path(cfg.dataset_root), cfg.dataset_layout, cfg.detector,
                                             cfg.pose_min_likelihood)
    log.info("layout %s: %d videos", layout, len(items))
    warn_ignored_settings(cfg)
    sensor_channels = checked_sensor_channels(items)
    detector = build_detector(cfg.detector, cfg)  # bad names and weights fail here, before anything is removed
    # a stale manifest would point at windows this run is about to rewrite: remove it until the run completes
    manifest_path.unlink(missing_ok=True)
    results, fps_values = process_all(items, detector, cfg, out_root, manifest_dir, skipped, sensor_channels)
    if not any(r.windows for _, r in results.values()):
        raise UserError(f"no windows were produced from {len(items)} video(s); see {out_root / 'prepare.log'}")
    splits = assign_splits({v: r for v, (_, r) in results.items()}, cfg)
    kp_names = detector.keypoint_names or [f"kp{k}" for k in range(detector.num_keypoints)]
    manifest = build_manifest(cfg, layout, detector, results, splits, fps_values, kp_names,
                              flip_idx_from_names(detector.keypoint_names), out_root, manifest_dir)
    manifest["meta"]["sensor_channels"] = sensor_channels
    manifest["summary"] = summary_lines(results, splits, skipped, cfg.split_strategy)
    write_manifest(manifest_path, manifest)
    for line in manifest["summary"]:
        (log.warning if line.lstrip().startswith(("WARNING", "skipped")) else log.info)(line)
    log.info("manifest written: %s", manifest_path)
    return manifest


def _reported_frame_count(item: VideoItem) -> int:
    """The container's (or pose file's) frame count for the progress bar; 0 for a video that will be skipped as
    unreadable."""
    if is_pose_file(item.path):
        return item.pose_frames
    try:
        return max(video_info(item.path).frame_count, 0)
    except UserError:
        return 0


def checked_sensor_channels(items: list) -> list:
    """The channels of the recordings' sensor streams ([] without streams), checked across the dataset at start."""
    channels = dataset_channels(sorted({item.path for item in items}))
    several = next((item for item in items if item.individual is not None), None)
    if channels and several is not None:
        raise UserError(f"{several.path} tracks several animals, and sensor streams are one per recording; prepare "
                        f"multi-animal recordings without them (move the .sensors files away)")
    if channels:
        log.info("sensor streams: %d channels (%s)", len(channels), ", ".join(channels))
    return channels


def process_all(items, detector, cfg, out_root: Path, manifest_dir: Path, skipped: list,
                sensor_channels: list = ()) -> tuple:
    """{source_video: (video_id, VideoResult)} and the fps of each processed video; bad videos are skipped."""
    results, fps_values = {}, []
    total = sum(_reported_frame_count(i) for i in items)
    with progress(total=total, desc="frames") as bar:
        for item in items:
            record_path = out_root / "videos" / f"{item.video_id}.json"
            try:
                expected = fingerprint(cfg, detector, item)
                result = load_finished(record_path, expected, manifest_dir) if cfg.skip_existing else None
                if result is not None:
                    log.info("%s: finished in an earlier run, reused (--skip_existing)", item.rel)
                    bar.update(result.frames)
                else:
                    tracking = out_root / "tracking" / f"{item.video_id}.csv"
                    recorded = recorded_detections(record_path, expected, tracking, detector, cfg)
                    if recorded is not None:
                        log.info("%s: detections reused from %s (same video, detector and detect_every)",
                                 item.rel, tracking)
                    result = process_video(item, recorded or detector, cfg, out_root, manifest_dir, bar,
                                           sensor_channels)
                    atomic_write_json(record_path, {"fingerprint": expected, "windows": result.windows,
                                                    "dropped": result.dropped, "frames": result.frames,
                                                    "status_counts": result.status_counts})
            except DiskError:
                raise  # the output folder, not this video: every later video would fail alike
            except UserError as exc:
                log.warning("skipped %s", exc)
                skipped.append(str(exc))
                continue
            log.info("%s: %d frames, %d windows, dropped %s", item.rel, result.frames, len(result.windows),
                     dict(result.dropped) or "none")
            results[item.rel] = (item.video_id, result)
            fps_values.extend(w["fps"] for w in result.windows[:1])
    return results, fps_values


if __name__ == "__main__":
    run_cli(main, get_args_parser())
