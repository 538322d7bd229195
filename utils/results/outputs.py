"""Output writers shared by inference, evaluation and live mode: bouts and per-frame CSVs, the metrics workbook
(per-frame kinematics, bouts, per-behaviour summary, windows, metadata), the ethogram and the review video.
Formats: docs/formats.md. Every file is written atomically.
"""
import platform
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from utils.io import atomic_path, atomic_write_csv, atomic_write_xlsx
from utils.results.kinematics import animal_positions, box_centres, point_kinematics
from utils.data.live import source_stem
from utils.results.drift import frame_unfamiliarity
from utils.results.plots import plot_ethogram
from utils.results.timeline import bout_frames, frame_labels, merge_short_bouts, to_bouts
from utils.data.video_io import is_video_file, iter_frame_batches, video_info
from utils.results.zones import parse_zones, zone_table


def write_outputs(prediction, class_names: list, cfg, out_dir: Path, meta_rows: dict) -> dict:
    """Every output of one classified video (cfg: the InferenceConfig's post-processing and output options)."""
    acc, fps = prediction.acc, prediction.fps
    probs, covered = acc.mean_probs()
    labels, conf = frame_labels(probs, covered, class_names, cfg.prob_threshold, cfg.smoothing, cfg.smoothing_window)
    labels = merge_short_bouts(labels, bout_frames(cfg.min_bout_s, fps))
    bouts = to_bouts(labels, conf)
    video, stem = Path(prediction.video_path), source_stem(prediction.video_path)
    if prediction.animal is not None:
        stem = f"{stem}.{prediction.animal}"
    bouts_df = pd.DataFrame([{"start_frame": b.start_frame, "end_frame": b.end_frame,
                              "start_time_s": round(b.start_frame / fps, 4), "end_time_s": round((b.end_frame + 1) / fps, 4),
                              "behavior": b.behavior, "duration_s": round((b.end_frame - b.start_frame + 1) / fps, 4),
                              "mean_confidence": round(b.mean_confidence, 4)} for b in bouts])
    top = np.argsort(-probs, axis=1)[:, : cfg.top_k]
    frames_df = pd.DataFrame({"frame": np.arange(len(labels)), "time_s": np.round(np.arange(len(labels)) / fps, 4),
                              "label": labels, "confidence": np.round(conf, 4), "detection_status": acc.statuses()})
    if prediction.drift:  # what suggest_review.py ranks by, beside the model's doubt
        frames_df["unfamiliar"] = np.round(frame_unfamiliarity(acc.windows, prediction.window[0], len(labels),
                                                               prediction.drift["distance_limit"]), 3)
    for k in range(top.shape[1]):
        frames_df[f"top{k + 1}_label"] = np.array(class_names, dtype=object)[top[:, k]]
        frames_df[f"top{k + 1}_prob"] = np.where(covered, np.round(probs[np.arange(len(probs)), top[:, k]], 4), np.nan)
    boxes = acc.boxes.values().astype(np.float64)
    for j, name in enumerate(("box_x1", "box_y1", "box_x2", "box_y2")):
        frames_df[name] = np.round(boxes[:, j], 2)
    keypoints = acc.keypoints.values()  # (N, K, 3) frame px; NaN where the detector gave none
    for k in range(keypoints.shape[1]):
        for j, axis in enumerate(("x", "y", "conf")):
            frames_df[f"kp{k}_{axis}"] = np.round(keypoints[:, k, j], 2 if j < 2 else 3)
    paths = {"bouts": out_dir / f"{stem}.behavior.csv", "frames": out_dir / f"{stem}.frames.csv",
             "metrics": out_dir / f"{stem}.metrics.xlsx", "ethogram": out_dir / f"{stem}.ethogram.png"}
    atomic_write_csv(paths["bouts"], bouts_df)
    atomic_write_csv(paths["frames"], frames_df)
    per_frame = kinematics_table(labels, boxes, acc.kp_centres.values(), fps, cfg.pixels_per_cm)
    sheets = {"per_frame": per_frame, "bouts": bouts_df,
              "summary": summary_table(bouts_df, per_frame, class_names, fps, cfg.pixels_per_cm),
              "windows": windows_table(acc.windows, class_names, fps), "metadata": metadata_table(cfg, meta_rows)}
    if cfg.zones:  # time of each behaviour in each zone
        xy = animal_positions(boxes, acc.kp_centres.values())
        sheets["zones"] = zone_table(xy, parse_zones(cfg.zones), fps, labels, class_names)
    atomic_write_xlsx(paths["metrics"], sheets)
    plot_ethogram(labels, conf, class_names, fps, paths["ethogram"])
    if cfg.output_review_video and is_video_file(video) and video.is_file():  # not a camera, stream or pose file
        paths["review"] = out_dir / f"{stem}.review.mp4"
        write_review_video(video, paths["review"], labels, conf, acc, fps)
    return {"paths": paths, "bouts": bouts_df, "frames": frames_df, "sheets": sheets}


def write_review_video(video: Path, path: Path, labels, confidence, acc, fps: float) -> None:
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


def draw_review(frame, box, keypoints, text: str, second_line: str = None) -> None:
    """box [4] and keypoints [K,3] in frame px; NaN where the detector gave none. `second_line`: e.g. the true
    label in the dashboard's review."""
    if np.isfinite(box).all():
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(frame, (x1, y1), (x2, y2), (0, 220, 0), 2)
    for x, y, c in keypoints:
        if c > 0:  # NaN compares False
            cv2.circle(frame, (int(round(x)), int(round(y))), 3, (0, 0, 255), -1, cv2.LINE_AA)
    for row, line in enumerate(t for t in (text, second_line) if t):
        cv2.putText(frame, line, (12, 30 + 34 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(frame, line, (12, 30 + 34 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)


def kinematics_table(labels, boxes: np.ndarray, kp_centres: np.ndarray, fps: float,
                     pixels_per_cm: float = None) -> pd.DataFrame:
    """Per frame: box-centre kinematics (px, and cm with a scale), keypoint-centre kinematics when pose exists,
    label."""
    table = {"frame": np.arange(len(labels)), "time_s": np.arange(len(labels)) / fps}
    centres = box_centres(boxes)
    table.update(centre_x_px=centres[:, 0], centre_y_px=centres[:, 1])
    table.update(point_kinematics(centres, fps, "box", pixels_per_cm))
    if np.isfinite(kp_centres).any():
        table.update(kp_centre_x_px=kp_centres[:, 0], kp_centre_y_px=kp_centres[:, 1])
        table.update(point_kinematics(kp_centres, fps, "kp", pixels_per_cm))
    table["label"] = labels
    return pd.DataFrame(table).round(4)


def summary_table(bouts: pd.DataFrame, per_frame: pd.DataFrame, class_names: list, fps: float,
                  pixels_per_cm: float = None) -> pd.DataFrame:
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
                     "distance_travelled_px": per_frame.loc[in_it, "box_step_px"].sum(),
                     **({"distance_travelled_cm": per_frame.loc[in_it, "box_step_cm"].sum()} if pixels_per_cm else {})})
    return pd.DataFrame(rows).round(4)


def windows_table(windows: list, class_names: list, fps: float) -> pd.DataFrame:
    rows = [{"start_frame": s, "start_time_s": round(s / fps, 4), "top_label": class_names[int(np.argmax(p))],
             "pose_used": used, **{f"p_{c}": round(float(v), 4) for c, v in zip(class_names, p)},
             "distance_to_training": round(distance, 3)}
            for s, p, used, distance, _ in windows]
    return pd.DataFrame(rows)


def metadata_table(cfg, extra: dict) -> pd.DataFrame:
    import torch
    import torchvision
    import ultralytics
    rows = {**{k: v for k, v in vars(cfg).items() if k != "config"}, **extra,
            "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "ultralytics": ultralytics.__version__, "numpy": np.__version__, "pandas": pd.__version__}
    return pd.DataFrame({"key": list(rows), "value": [str(v) for v in rows.values()]})
