"""Classify a long video with a trained checkpoint: per-frame behaviour timeline and bouts.

Usage:
    python infer_behavior_lstm.py --model_path runs/mnv3_lstm/best_model_macro_f1.pt --video_path session.mp4
    python infer_behavior_lstm.py --model_path best.pt --video_path session.mp4 --yolo_mode bbox --output_dir out

The video is streamed (decoded in a background thread while the detector runs): memory does not grow with
its length beyond a few numbers per frame. Crop, window and detector settings come from the checkpoint; a
different value given here is used with a warning. With a frame backbone every frame is encoded once and
overlapping windows are classified from buffered features.
Outputs (written atomically): <video>.behavior.csv (bouts), <video>.frames.csv (per frame),
<video>.metrics.xlsx (per_frame kinematics, bouts, summary, windows, metadata), <video>.ethogram.png, and
with --output_review_video <video>.review.mp4.
"""
import argparse
import copy
import logging
import sys
import time
from collections import deque
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from cropping import (STATUS_DETECTED, STATUS_MISSED, STATUS_REUSED, BoxTracker, build_detector, crop_detection,
                      map_keypoints_to_crop)
from data import normalise_frames
from model import ModelConfig, build_model
from utils.checkpoint import load_checkpoint
from utils.config import add_config_arguments, dump_config, resolve_config
from utils.device import resolve_device, set_cpu_threads
from utils.errors import UserError, run_cli
from utils.io import atomic_path, atomic_write_csv, atomic_write_xlsx
from utils.kinematics import box_centres, point_kinematics
from utils.plots import plot_ethogram
from utils.logging_utils import progress, setup_logging
from utils.pose_features import pose_features
from utils.timeline import frame_labels, merge_short_bouts, to_bouts
from utils.timing import StageTimer
from utils.video_io import iter_frame_batches, prefetched, video_info

log = logging.getLogger("infer")
SECTIONS = ("inference",)
REQUIRED = ("model_path", "video_path")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, SECTIONS, required=REQUIRED)
    return parser


def get_folder_args_parser(doc: str, input_help: str, add_help: bool = True) -> argparse.ArgumentParser:
    """Parser of the scripts that run inference over a folder: every inference flag, plus --input_dir and
    --output_root; --video_path and --output_dir are set per video (run_in_tree)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0], add_help=add_help, epilog=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[get_args_parser(add_help=False)], conflict_handler="resolve")
    parser.add_argument("--input_dir", required=True, help=input_help)
    parser.add_argument("--output_root", required=True, help="outputs go to output_root/<same relative folder>/")
    parser.add_argument("--video_path", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def run_in_tree(args, video: Path) -> dict:
    """main() on one video of args.input_dir, its outputs in the mirrored folder under args.output_root."""
    video_args = copy.copy(args)
    video_args.video_path = str(video)
    video_args.output_dir = str(Path(args.output_root) / video.relative_to(args.input_dir).parent)
    return main(video_args)


def settings_from_checkpoint(cfg, meta: dict) -> argparse.Namespace:
    """Crop/window/detector settings: the checkpoint's, or the CLI's with a warning naming both values."""
    chosen = {}
    for key, cli_value in (("window_size", cfg.window_size), ("keep_last_box", cfg.keep_last_box),
                           ("yolo_weights", cfg.yolo_weights)):
        trained = meta.get(key)
        if cli_value is not None and trained is not None and cli_value != trained:
            log.warning("%s: using %s given here, the model was trained with %s", key, cli_value, trained)
        chosen[key] = cli_value if cli_value is not None else trained
    stride = cfg.window_stride or max(chosen["window_size"] // 2, 1)
    detector = meta.get("detector", "yolo")
    if cfg.yolo_mode == "bbox":
        yolo_task = "detect"
    elif cfg.yolo_mode == "pose":
        yolo_task = "pose"
    else:
        yolo_task = "auto"
    return argparse.Namespace(
        crop_size=meta["crop_size"], pad_ratio=meta["pad_ratio"], window_size=chosen["window_size"],
        window_stride=stride, keep_last_box=bool(chosen["keep_last_box"]), max_reuse_frames=meta.get("max_reuse_frames", 0),
        detector=detector, yolo_weights=chosen["yolo_weights"], yolo_task=yolo_task,
        yolo_conf=meta.get("yolo_conf", 0.25), yolo_iou=meta.get("yolo_iou", 0.45), yolo_imgsz=meta.get("yolo_imgsz", 640),
        device=cfg.device, num_threads=0, bg_num_samples=meta.get("bg_num_samples", 25),
        bg_threshold=meta.get("bg_threshold", 25), bg_min_area=meta.get("bg_min_area", 80),
        yolo_batch=16, min_keypoint_conf=0.0)


class GrowingArray:
    """Rows appended into one numpy buffer that doubles when full: per-frame state costs a few bytes per frame
    and no Python object per frame, so memory stays flat however long the video is."""

    def __init__(self, row_shape: tuple, dtype, fill=0):
        self.fill = fill
        self.data = np.full((1024, *row_shape), fill, dtype)
        self.size = 0

    def append(self, row) -> None:
        if self.size == len(self.data):
            grown = np.full((2 * len(self.data), *self.data.shape[1:]), self.fill, self.data.dtype)
            grown[: self.size] = self.data
            self.data = grown
        self.data[self.size] = row
        self.size += 1

    def __len__(self) -> int:
        return self.size

    def values(self) -> np.ndarray:
        return self.data[: self.size]


STATUSES = (STATUS_DETECTED, STATUS_REUSED, STATUS_MISSED)


class Accumulator:
    """Per-frame sums of window probabilities and per-frame detection results, in numpy buffers."""

    def __init__(self, num_classes: int, num_keypoints: int):
        self.prob_sum = GrowingArray((num_classes,), np.float64)
        self.count = GrowingArray((), np.int32)
        self.status_code = GrowingArray((), np.int8)  # index into STATUSES
        self.boxes = GrowingArray((4,), np.float32, np.nan)  # xyxy frame px, NaN when missed
        self.kp_centres = GrowingArray((2,), np.float64, np.nan)  # mean of the confident keypoints, frame px
        self.keypoints = GrowingArray((num_keypoints, 3), np.float32, np.nan)  # for the review video
        self.windows = []  # (start, probs, pose used): one per window, not per frame

    def __len__(self) -> int:
        return len(self.count)

    def add_frame(self, status: str, box, keypoints) -> None:
        self.prob_sum.append(0.0)
        self.count.append(0)
        self.status_code.append(STATUSES.index(status))
        self.boxes.append(np.nan if box is None else box)
        visible = keypoints[keypoints[:, 2] > 0, :2] if keypoints is not None else np.zeros((0, 2))
        self.kp_centres.append(visible.mean(0) if len(visible) else np.nan)
        self.keypoints.append(np.nan if keypoints is None else keypoints)

    def add_window(self, start: int, probs: np.ndarray, length: int) -> None:
        self.prob_sum.data[start:start + length] += probs
        self.count.data[start:start + length] += 1

    def statuses(self) -> np.ndarray:
        return np.array(STATUSES, dtype=object)[self.status_code.values()]

    def any_detected(self) -> bool:
        return bool((self.status_code.values() == STATUSES.index(STATUS_DETECTED)).any())

    def mean_probs(self) -> tuple:
        count = self.count.values()
        return self.prob_sum.values() / np.maximum(count, 1)[:, None], count > 0


class WindowClassifier:
    """Buffers per-frame inputs and classifies each complete window, in batches."""

    def __init__(self, model, settings, cfg, device, fps: float, acc: Accumulator):
        self.model, self.s, self.cfg, self.device, self.fps, self.acc = model, settings, cfg, device, fps, acc
        self.buffer = deque(maxlen=settings.window_size)
        self.pending = []
        self.windows = self.with_pose = self.skipped = 0
        self.backbone_frames = 0  # frames through the backbone (each frame once with a frame backbone)

    def add(self, index: int, feature, keypoints, missed: bool) -> None:
        self.buffer.append((index, feature, keypoints, missed))
        start = index - self.s.window_size + 1
        if start >= 0 and start % self.s.window_stride == 0:
            self._queue(start)
        if len(self.pending) >= self.cfg.batch_size:
            self.flush()

    def _queue(self, start: int) -> None:
        items = list(self.buffer)
        if any(missed for *_, missed in items):
            self.skipped += 1  # the detector missed a frame: no contiguous crop sequence
            return
        has_pose = all(kp is not None for _, _, kp, _ in items) and self.cfg.yolo_mode != "bbox"
        if self.cfg.require_pose and not has_pose:
            raise UserError(f"--require_pose: the window starting at frame {start} has no keypoints on every frame; "
                            f"use pose weights, --keep_last_box, or drop --require_pose")
        if self.model.backbone is None and not has_pose:
            self.skipped += 1  # a pose-only model cannot classify a window without pose
            return
        pose = None
        if has_pose and self.model.pose_proj is not None:
            pose = torch.from_numpy(pose_features(np.stack([kp for _, _, kp, _ in items]), self.s.crop_size, self.fps))
        self.pending.append((start, torch.stack([f for _, f, _, _ in items]) if self.model.backbone is not None else None,
                             pose))

    @torch.no_grad()
    def flush(self) -> None:
        if not self.pending:
            return
        t = self.s.window_size
        visual = None
        if self.model.backbone is not None:
            visual = torch.stack([v for _, v, _ in self.pending]).to(self.device)  # (B, T, ...) features or crops
            if self.model.is_video:
                self.backbone_frames += visual.shape[0] * t
                visual = self.model.encode_frames(visual)
        present = torch.tensor([p is not None for _, _, p in self.pending], device=self.device)
        pose = None
        if self.model.pose_proj is not None:
            dim = self.model.cfg.pose_dim
            pose = torch.stack([p if p is not None else torch.zeros(t, dim) for _, _, p in self.pending]).to(self.device)
        probs = torch.softmax(self.model.forward_head(self.model.forward_from_features(visual, pose, present)), -1)
        for (start, _, p), row in zip(self.pending, probs.cpu().numpy()):
            self.acc.add_window(start, row, t)
            self.acc.windows.append((start, row, p is not None))
            self.windows += 1
            self.with_pose += p is not None
        self.pending.clear()


def load_model(path, device):
    ckpt = load_checkpoint(path)
    model = build_model(ModelConfig(**{**ckpt["model_args"], "pretrained_backbone": False}))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


def run_video(cfg, model, ckpt, settings, device, detector, timer: StageTimer) -> tuple:
    """Stream the video once; returns (Accumulator, WindowClassifier, fps)."""
    info = video_info(cfg.video_path)
    acc = Accumulator(len(ckpt["class_names"]), detector.num_keypoints)
    classifier = WindowClassifier(model, settings, cfg, device, info.fps, acc)
    detector.prepare(cfg.video_path)
    tracker = BoxTracker(settings.keep_last_box, settings.max_reuse_frames)
    batches = prefetched(iter_frame_batches(cfg.video_path, settings.yolo_batch))  # decoded while we compute
    with progress(total=max(info.frame_count, 0), desc="frames") as bar, closing(batches):
        for first, batch in timer.timed_iter("decode", batches):
            with timer.stage("detect"):
                detections = [tracker.update(d) for d in detector.detect(batch)]
            crops, keypoints = [], []
            with timer.stage("crop"):
                for frame, det in zip(batch, detections):
                    crop, crop_box = crop_detection(frame, det, settings.crop_size, settings.pad_ratio)
                    crops.append(crop)
                    keypoints.append(None if det.keypoints is None or crop is None else np.concatenate(
                        [map_keypoints_to_crop(det.keypoints[:, :2], crop_box, settings.crop_size),
                         det.keypoints[:, 2:]], 1))
                    acc.add_frame(det.status, det.box, det.keypoints)
            with timer.stage("backbone"):
                features = encode_crops(model, crops, device, classifier)
            with timer.stage("head"):  # includes the video backbone, which encodes whole windows
                for offset, (feature, kp, crop) in enumerate(zip(features, keypoints, crops)):
                    classifier.add(first + offset, feature, kp, crop is None)
            bar.update(len(batch))
    with timer.stage("head"):
        classifier.flush()
    return acc, classifier, info.fps


@torch.no_grad()
def encode_crops(model, crops, device, classifier) -> list:
    """Per-frame backbone features (frame backbone: each frame encoded exactly once, here) or the normalised
    crops themselves (video backbone: encoded per window). None for missed frames and pose-only models."""
    present = [i for i, c in enumerate(crops) if c is not None]
    out = [None] * len(crops)
    if model.backbone is None or not present:
        return out
    x = normalise_frames(torch.from_numpy(np.stack([crops[i] for i in present])).permute(0, 3, 1, 2))
    if model.is_video:
        for i, frame in zip(present, x):
            out[i] = frame
        return out
    feats = model.encode_frames(x[None].to(device))[0].cpu()  # (n, Dv)
    classifier.backbone_frames += len(present)
    for i, f in zip(present, feats):
        out[i] = f
    return out


def write_outputs(cfg, acc: Accumulator, class_names: list, fps: float, meta_rows: dict) -> dict:
    probs, covered = acc.mean_probs()
    labels, conf = frame_labels(probs, covered, class_names, cfg.prob_threshold, cfg.smoothing, cfg.smoothing_window)
    labels = merge_short_bouts(labels, cfg.min_bout_frames)
    bouts = to_bouts(labels, conf)
    video = Path(cfg.video_path)
    out_dir = Path(cfg.output_dir) if cfg.output_dir else video.parent
    bouts_df = pd.DataFrame([{"start_frame": b.start_frame, "end_frame": b.end_frame,
                              "start_time_s": round(b.start_frame / fps, 4), "end_time_s": round((b.end_frame + 1) / fps, 4),
                              "behavior": b.behavior, "duration_s": round((b.end_frame - b.start_frame + 1) / fps, 4),
                              "mean_confidence": round(b.mean_confidence, 4)} for b in bouts])
    top = np.argsort(-probs, axis=1)[:, : cfg.top_k]
    frames_df = pd.DataFrame({"frame": np.arange(len(labels)), "time_s": np.round(np.arange(len(labels)) / fps, 4),
                              "label": labels, "confidence": np.round(conf, 4), "detection_status": acc.statuses()})
    for k in range(top.shape[1]):
        frames_df[f"top{k + 1}_label"] = np.array(class_names, dtype=object)[top[:, k]]
        frames_df[f"top{k + 1}_prob"] = np.where(covered, np.round(probs[np.arange(len(probs)), top[:, k]], 4), np.nan)
    boxes = acc.boxes.values().astype(np.float64)
    for j, name in enumerate(("box_x1", "box_y1", "box_x2", "box_y2")):
        frames_df[name] = np.round(boxes[:, j], 2)
    paths = {"bouts": out_dir / f"{video.stem}.behavior.csv", "frames": out_dir / f"{video.stem}.frames.csv",
             "metrics": out_dir / f"{video.stem}.metrics.xlsx", "ethogram": out_dir / f"{video.stem}.ethogram.png"}
    atomic_write_csv(paths["bouts"], bouts_df)
    atomic_write_csv(paths["frames"], frames_df)
    per_frame = kinematics_table(labels, boxes, acc.kp_centres.values(), fps)
    sheets = {"per_frame": per_frame, "bouts": bouts_df, "summary": summary_table(bouts_df, per_frame, class_names, fps),
              "windows": windows_table(acc.windows, class_names, fps), "metadata": metadata_table(cfg, meta_rows)}
    atomic_write_xlsx(paths["metrics"], sheets)
    plot_ethogram(labels, conf, class_names, fps, paths["ethogram"])
    if cfg.output_review_video:
        paths["review"] = out_dir / f"{video.stem}.review.mp4"
        write_review_video(video, paths["review"], labels, conf, acc, fps)
    return {"paths": paths, "bouts": bouts_df, "frames": frames_df, "sheets": sheets}


def write_review_video(video: Path, path: Path, labels, confidence, acc: Accumulator, fps: float) -> None:
    """Second pass over the video (labels are final only after every window is seen): box, keypoints, label."""
    info = video_info(video)
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (info.width, info.height))
        try:
            for first, batch in iter_frame_batches(video, 64):
                for i, frame in enumerate(batch, start=first):
                    if i < len(labels):
                        draw_review(frame, acc.boxes.data[i], acc.keypoints.data[i], f"{labels[i]} {confidence[i]:.2f}")
                    writer.write(frame)
        finally:
            writer.release()


def draw_review(frame, box, keypoints, text: str) -> None:
    """box [4] and keypoints [K,3] in frame px; NaN where the detector gave none."""
    if np.isfinite(box).all():
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(frame, (x1, y1), (x2, y2), (0, 220, 0), 2)
    for x, y, c in keypoints:
        if c > 0:  # NaN compares False
            cv2.circle(frame, (int(round(x)), int(round(y))), 3, (0, 0, 255), -1, cv2.LINE_AA)
    cv2.putText(frame, text, (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(frame, text, (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)


def kinematics_table(labels, boxes: np.ndarray, kp_centres: np.ndarray, fps: float) -> pd.DataFrame:
    """Per frame: box-centre kinematics (px), keypoint-centre kinematics when pose exists, label."""
    table = {"frame": np.arange(len(labels)), "time_s": np.arange(len(labels)) / fps}
    centres = box_centres(boxes)
    table.update(centre_x_px=centres[:, 0], centre_y_px=centres[:, 1])
    table.update({f"box_{k}": v for k, v in point_kinematics(centres, fps).items()})
    if np.isfinite(kp_centres).any():
        table.update(kp_centre_x_px=kp_centres[:, 0], kp_centre_y_px=kp_centres[:, 1])
        table.update({f"kp_{k}": v for k, v in point_kinematics(kp_centres, fps).items()})
    table["label"] = labels
    return pd.DataFrame(table).round(4)


def summary_table(bouts: pd.DataFrame, per_frame: pd.DataFrame, class_names: list, fps: float) -> pd.DataFrame:
    """Per behaviour: bouts, total and mean duration, % of time, latency to the first bout, distance travelled."""
    total_s = len(per_frame) / fps
    rows = []
    for name in list(class_names) + [x for x in ("unknown", "no_window") if (bouts["behavior"] == x).any()]:
        own = bouts[bouts["behavior"] == name]
        in_it = per_frame["label"] == name
        rows.append({"behavior": name, "bout_count": len(own), "total_duration_s": own["duration_s"].sum(),
                     "mean_bout_duration_s": own["duration_s"].mean() if len(own) else 0.0,
                     "percent_of_time": 100 * own["duration_s"].sum() / total_s if total_s else 0.0,
                     "latency_to_first_bout_s": own["start_time_s"].min() if len(own) else np.nan,
                     "distance_travelled_px": per_frame.loc[in_it, "box_step_px"].sum()})
    return pd.DataFrame(rows).round(4)


def windows_table(windows: list, class_names: list, fps: float) -> pd.DataFrame:
    rows = [{"start_frame": s, "start_time_s": round(s / fps, 4), "top_label": class_names[int(np.argmax(p))],
             "pose_used": used, **{f"p_{c}": round(float(v), 4) for c, v in zip(class_names, p)}}
            for s, p, used in windows]
    return pd.DataFrame(rows)


def metadata_table(cfg, extra: dict) -> pd.DataFrame:
    import platform

    import torchvision
    import ultralytics
    rows = {**{k: v for k, v in vars(cfg).items() if k != "config"}, **extra,
            "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "ultralytics": ultralytics.__version__, "numpy": np.__version__, "pandas": pd.__version__}
    return pd.DataFrame({"key": list(rows), "value": [str(v) for v in rows.values()]})


def main(args):
    cfg = resolve_config(args, SECTIONS, required=REQUIRED)
    out_dir = Path(cfg.output_dir) if cfg.output_dir else Path(cfg.video_path).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(out_dir / f"{Path(cfg.video_path).stem}.infer.log")
    log.info("command: %s", " ".join(sys.argv))
    dump_config(cfg, SECTIONS, out_dir / f"{Path(cfg.video_path).stem}.config.yaml")
    device = resolve_device(cfg.device)
    timer = StageTimer()
    start = time.perf_counter()
    with timer.stage("load"):
        model, ckpt = load_model(cfg.model_path, device)
        settings = settings_from_checkpoint(cfg, ckpt["preprocessing"])
        detector = build_detector(settings.detector, settings)
        set_cpu_threads(0)
    acc, classifier, fps = run_video(cfg, model, ckpt, settings, device, detector, timer)
    if not acc.any_detected():
        raise UserError(f"no animal detected in any of the {len(acc)} frames of {cfg.video_path}: "
                        f"{detector.miss_hint}")
    if classifier.windows == 0:
        raise UserError(f"no window of {cfg.video_path} could be classified ({classifier.skipped} skipped: the animal "
                        f"was not detected on every frame of any window); check the detector or use --keep_last_box")
    log.info("Pose features used in %d/%d windows", classifier.with_pose, classifier.windows)
    meta_rows = {"class_names": ckpt["class_names"], "model_selection": ckpt.get("selection"), "fps": fps,
                 "windows": classifier.windows, "windows_with_pose": classifier.with_pose,
                 **{f"setting_{k}": v for k, v in vars(settings).items()}}
    with timer.stage("write"):
        result = write_outputs(cfg, acc, ckpt["class_names"], fps, meta_rows)
    result.update(class_names=ckpt["class_names"], seconds=dict(timer.seconds), total_seconds=time.perf_counter() - start, fps=fps,
                  labels=result["frames"]["label"].to_numpy(), windows=classifier.windows, windows_with_pose=classifier.with_pose, skipped=classifier.skipped,
                  backbone_frames=classifier.backbone_frames, frames=len(acc))
    log.info("%d frames, %d windows (%d skipped), backbone encoded %d frames; wrote %s", len(acc),
             classifier.windows, classifier.skipped, classifier.backbone_frames,
             ", ".join(str(p) for p in result["paths"].values()))
    return result


if __name__ == "__main__":
    run_cli(main, get_args_parser())
