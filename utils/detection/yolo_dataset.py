"""Training data for a YOLO-pose detector: DeepLabCut labelled frames, tracker predictions as pseudo-labels, and
the Ultralytics dataset layout they are written to (train_detector.py).

DeepLabCut labelled frames: `labeled-data/<video>/CollectedData_<scorer>.csv` (or `.h5`) beside the PNGs. The
CSV has three header rows (scorer, bodyparts, coords), four for multi-animal projects (individuals added), then
one row per image: the image path (one column, or three: labeled-data, video, file) and x, y per body part,
empty where the labeller saw no point. Each labelled individual becomes one box of class 0.

Ultralytics YOLO-pose labels (one .txt per image): `0 cx cy w h` then `x y v` per keypoint, all divided by the
image size; a keypoint not seen is `0 0 0`. data.yaml names the keypoints (`kpt_names`, kept in the trained
weights, where detectors.py reads them) and `flip_idx`, so left/right augmentation swaps left and right parts.
"""
import csv
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from PIL import Image

from utils.errors import UserError
from utils.results.kinematics import keypoint_box
from utils.readers.pose_io import flip_idx_from_names, read_pose_file
from utils.data.video_io import iter_frame_batches

log = logging.getLogger(__name__)
HEADER_ROWS = ("scorer", "individuals", "bodyparts", "coords")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class LabelledImage:
    """One image and its animals: xy [animals, K, 2] in image pixels, NaN where a keypoint was not labelled."""
    image: Path
    xy: np.ndarray
    group: str  # the video it comes from: train/val splits keep a video's frames together when they can


def read_dlc_labels(path) -> tuple:
    """(keypoint names, [LabelledImage]) from a DeepLabCut CollectedData CSV or HDF5 file."""
    path = Path(path)
    if path.suffix.lower() == ".h5":
        rows, names, individuals = _dlc_h5_rows(path)
    else:
        rows, names, individuals = _dlc_csv_rows(path)
    images = []
    for image_parts, values in rows:
        image = path.parent / Path(image_parts[-1]).name
        if not image.is_file():
            raise UserError(f"{path} labels {'/'.join(image_parts)}, but {image} does not exist; keep the labelled "
                            f"PNGs beside the CollectedData file, as DeepLabCut does")
        xy = values.reshape(len(individuals), len(names), 2)
        xy = xy[np.isfinite(xy).all(2).any(1)]  # an individual with no labelled point is not in this image
        images.append(LabelledImage(image, xy, path.parent.name))
    return names, images


def _dlc_csv_rows(path: Path) -> tuple:
    with open(path, newline="") as fh:
        table = list(csv.reader(fh))
    header = {}
    while table and table[0] and table[0][0] in HEADER_ROWS:
        row = table.pop(0)
        header[row[0]] = row
    if "bodyparts" not in header or "coords" not in header:
        raise UserError(f"{path} is not a DeepLabCut CollectedData file: expected header rows scorer, bodyparts, "
                        f"coords (and individuals for multi-animal projects)")
    coords = header["coords"]
    first = next((i for i, c in enumerate(coords) if c in ("x", "y")), None)
    if first is None or any(c not in ("x", "y") for c in coords[first:]):
        raise UserError(f"{path}: the coords row must list x and y per body part, got {coords[first or 1:][:6]}")
    names = _unique(header["bodyparts"][first::2])
    individuals = _unique(header["individuals"][first::2]) if "individuals" in header else ["animal"]
    rows = []
    for row in table:
        if not row or not any(row):
            continue
        values = np.array([float(v) if v.strip() else np.nan for v in row[first:]], np.float64)
        if values.size != len(coords) - first:
            raise UserError(f"{path}: row for {row[:first]} has {values.size} values, expected {len(coords) - first}")
        rows.append(([p for p in row[:first] if p], values))
    return rows, names, individuals


def _dlc_h5_rows(path: Path) -> tuple:
    import pandas as pd
    frame = pd.read_hdf(path)
    levels = list(frame.columns.names)
    if "bodyparts" not in levels or "coords" not in levels:
        raise UserError(f"{path} is not a DeepLabCut CollectedData file: its columns are {levels}, expected "
                        f"scorer, bodyparts, coords (and individuals)")
    frame = frame.loc[:, frame.columns.get_level_values("coords").isin(["x", "y"])]
    names = _unique(frame.columns.get_level_values("bodyparts"))
    individuals = (_unique(frame.columns.get_level_values("individuals")) if "individuals" in levels
                   else ["animal"])
    rows = [([str(p) for p in (index if isinstance(index, tuple) else (index,))], values.astype(np.float64))
            for index, values in zip(frame.index, frame.to_numpy())]
    return rows, names, individuals


def _unique(values) -> list:
    """Values in first-seen order without repeats (body parts repeat once per coordinate)."""
    return list(dict.fromkeys(str(v) for v in values))


def find_dlc_label_files(root) -> list:
    """CollectedData_*.csv (or .h5 where no CSV) of a labelled-data folder, a DeepLabCut project or one file."""
    root = Path(root)
    if root.is_file():
        return [root]
    files = sorted(root.rglob("CollectedData_*.csv"))
    csv_parents = {f.with_suffix("") for f in files}
    files += [f for f in sorted(root.rglob("CollectedData_*.h5")) if f.with_suffix("") not in csv_parents]
    if not files:
        raise UserError(f"no CollectedData_<scorer>.csv or .h5 under {root}; give a DeepLabCut labeled-data folder")
    return files


def pseudo_labels(video, pose_file, out_dir: Path, min_likelihood: float, every: int, max_jump: float) -> tuple:
    """(keypoint names, [LabelledImage]) from a tracker's predictions on a whole video: every `every`-th frame
    whose keypoints are all above `min_likelihood` and none of which moved more than `max_jump` body lengths
    since the previous frame (a jump is usually an identity or head/tail swap). Frames are written as PNG."""
    recording = read_pose_file(pose_file, min_likelihood)
    xy = recording.xy  # [T, I, K, 2]
    complete = np.isfinite(xy).all((2, 3)).all(1)
    centroid = np.nanmean(xy, axis=2)
    body = np.nanmedian(np.linalg.norm(xy.max(2) - xy.min(2), axis=-1))
    jump = np.zeros(len(xy), bool)
    with np.errstate(invalid="ignore"):
        steps = np.linalg.norm(np.diff(xy - centroid[:, :, None], axis=0), axis=-1).max((1, 2))
    jump[1:] = steps > max_jump * body  # unknown after a missing frame: not counted as a jump
    keep = set(np.flatnonzero(complete & ~jump)[::every].tolist())
    out_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for first, frames in iter_frame_batches(video, 64):
        for index, frame in enumerate(frames, first):
            if index in keep:
                image = out_dir / f"{Path(video).stem}_{index:06d}.png"
                cv2.imwrite(str(image), frame)
                images.append(LabelledImage(image, xy[index].astype(np.float64), f"pseudo:{Path(video).stem}"))
    log.info("%s: %d pseudo-labelled frames of %d (%d incomplete below likelihood %.2f, %d jumps)", pose_file,
             len(images), len(xy), int((~complete).sum()), min_likelihood, int((jump & complete).sum()))
    return recording.keypoint_names, images


def split_images(images: list, val_fraction: float, rng: np.random.Generator) -> tuple:
    """(train, val): a random share of the hand-labelled images goes to validation; pseudo-labelled frames only
    ever train (they are the tracker's guesses, not ground truth to judge a detector by)."""
    labelled = [i for i, image in enumerate(images) if not image.group.startswith("pseudo:")]
    count = int(round(len(labelled) * val_fraction)) if len(labelled) > 1 else 0
    val = set(rng.choice(labelled, size=count, replace=False).tolist()) if count else set()
    return [im for i, im in enumerate(images) if i not in val], [im for i, im in enumerate(images) if i in val]


def yolo_label_lines(xy: np.ndarray, width: int, height: int, margin: float) -> list:
    """YOLO-pose label lines of one image, one per animal; keypoints not labelled are `0 0 0`."""
    lines, scale = [], np.array([width, height], np.float64)
    for animal in xy:
        seen = np.isfinite(animal).all(1)
        x1, y1, x2, y2 = np.clip(keypoint_box(animal[seen], margin), 0, [width, height, width, height])
        values = [0, (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]
        for point, visible in zip(animal, seen):
            values += [*np.clip(point / scale, 0, 1), 2] if visible else [0, 0, 0]
        lines.append(" ".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in values))
    return lines


def write_yolo_dataset(root: Path, train: list, val: list, names: list, margin: float) -> Path:
    """Images (copied) and labels under root/images|labels/train|val, and root/data.yaml; returns data.yaml."""
    for split, images in (("train", train), ("val", val or train[:1])):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for number, item in enumerate(images):
            width, height = image_size(item.image)
            stem = f"{item.group.replace(':', '_')}_{number:05d}_{item.image.stem}"
            shutil.copyfile(item.image, root / "images" / split / f"{stem}{item.image.suffix.lower()}")
            (root / "labels" / split / f"{stem}.txt").write_text(
                "\n".join(yolo_label_lines(item.xy, width, height, margin)) + "\n")
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump({
        "path": str(root.resolve()), "train": "images/train", "val": "images/val", "names": {0: "animal"},
        "kpt_shape": [len(names), 3], "flip_idx": flip_idx_from_names(names), "kpt_names": {0: list(names)}},
        sort_keys=False))
    return data_yaml


def image_size(path: Path) -> tuple:
    """(width, height) from the image file's header, without decoding its pixels."""
    with Image.open(path) as image:
        return image.size


def read_yolo_labels(label_file: Path, num_keypoints: int, width: int, height: int) -> tuple:
    """(boxes [N,4] x1y1x2y2, keypoints [N,K,2] with NaN where not visible) in pixels, from one label file."""
    rows = np.array([line.split() for line in label_file.read_text().splitlines() if line.strip()], np.float64)
    rows = rows.reshape(-1, 5 + 3 * num_keypoints)
    cx, cy, w, h = (rows[:, 1:5] * [width, height, width, height]).T
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    points = rows[:, 5:].reshape(-1, num_keypoints, 3)
    xy = points[..., :2] * [width, height]
    xy[points[..., 2] == 0] = np.nan
    return boxes, xy


def keypoint_errors(model, image_dir: Path, label_dir: Path, imgsz: int, device: str) -> dict:
    """Keypoint pixel error of a YOLO-pose model on labelled images: each labelled animal is matched to the
    predicted box with the highest IoU. Pose mAP alone stays high when every keypoint sits on the box centre."""
    num_keypoints = int(model.model.kpt_shape[0])
    errors, missed, animals = [], 0, 0
    for image in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        label = label_dir / f"{image.stem}.txt"
        width, height = image_size(image)
        boxes, truth = read_yolo_labels(label, num_keypoints, width, height)
        result = model.predict(str(image), imgsz=imgsz, conf=0.25, verbose=False, device=device)[0]
        predicted = result.boxes.xyxy.cpu().numpy()
        points = result.keypoints.xy.cpu().numpy() if len(predicted) else np.zeros((0, num_keypoints, 2))
        for box, animal in zip(boxes, truth):
            animals += 1
            overlap = box_iou(box, predicted)
            if not len(overlap) or overlap.max() < 0.3:
                missed += 1
                continue
            seen = np.isfinite(animal).all(1)
            errors.append(np.linalg.norm(points[int(overlap.argmax())][seen] - animal[seen], axis=1))
    result = {"animals": animals, "animals_missed": missed}
    if not errors:  # nothing found: no error to report (JSON has no infinity)
        return {**result, "keypoint_error_px_median": None, "keypoint_error_px_mean": None,
                "keypoint_error_px_p90": None, "keypoints_within_10px": 0.0}
    errors = np.concatenate(errors)
    return {**result, "keypoint_error_px_median": float(np.median(errors)),
            "keypoint_error_px_mean": float(np.mean(errors)), "keypoint_error_px_p90": float(np.quantile(errors, 0.9)),
            "keypoints_within_10px": float(np.mean(errors <= 10))}


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box with each of `boxes` (all x1y1x2y2)."""
    if not len(boxes):
        return np.zeros(0)
    low, high = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    area = lambda b: np.prod(b[..., 2:] - b[..., :2], axis=-1)  # noqa: E731
    return inter / (area(box) + area(boxes) - inter + 1e-9)
