"""Figures written by training: curves and start-up previews (what the model will actually see)."""
import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from utils.io import atomic_path  # noqa: E402

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)


def plot_training_curves(history: list, path) -> None:
    """Loss (train, val) and validation accuracy / macro-F1 per epoch; one set of lines per ensemble member when
    the rows carry a `member`."""
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    members = {}
    for h in history:
        members.setdefault(h.get("member"), []).append(h)
    for i, (member, rows) in enumerate(members.items()):
        # members: one colour each, the line style tells the curve
        tag, look = ("", {}) if member is None else (f"member {member}: ", {"color": f"C{i}"})
        dashed = {**look, "linestyle": "--"} if look else {}
        epochs = [h["epoch"] for h in rows]
        ax_loss.plot(epochs, [h["train_loss"] for h in rows], label=f"{tag}train loss", **look)
        if "val_loss" in rows[0]:
            ax_loss.plot(epochs, [h["val_loss"] for h in rows], label=f"{tag}val loss", **dashed)
        if "val_acc" in rows[0]:  # masked pretraining (training/pretrain.py) has a held-out loss and no scores
            ax_metric.plot(epochs, [h["val_acc"] for h in rows], label=f"{tag}val accuracy", **dashed)
            ax_metric.plot(epochs, [h["val_macro_f1"] for h in rows], label=f"{tag}val macro-F1", **look)
            ax_metric.set_ylim(0, 1)
    if not ax_metric.lines:
        ax_metric.text(0.5, 0.5, "no validation scores", ha="center", va="center", transform=ax_metric.transAxes)
    for ax, title in ((ax_loss, "loss"), (ax_metric, "validation")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend(loc="best") if ax.lines else None
    _save(fig, path)


class TrainingCurves:
    """training_curves.png kept up to date during training without drawing it after every epoch: a figure takes about
    0.4 s, as long as a whole epoch of a small pose model. Redrawn when `every_s` seconds have passed since the last
    drawing (every epoch when epochs are slower than that) and by `finish`, so the file always ends complete."""

    def __init__(self, path, every_s: float = 10.0):
        self.path, self.every_s = path, every_s
        self.drawn_at, self.pending = None, None

    def update(self, history: list) -> None:
        self.pending = list(history)
        if self.drawn_at is None or time.monotonic() - self.drawn_at >= self.every_s:
            self.finish()

    def finish(self) -> None:
        """Draw the last history given, if it has not been drawn yet."""
        if self.pending is not None:
            plot_training_curves(self.pending, self.path)
            self.drawn_at, self.pending = time.monotonic(), None


def _image(frames_chw) -> np.ndarray:
    """A normalised [3,H,W] tensor back to displayable RGB in 0..1."""
    img = frames_chw.permute(1, 2, 0).numpy() * STD + MEAN
    return np.clip(img, 0, 1)


# the start-up previews are drawn with OpenCV: a matplotlib grid took 0.3 s per figure, 1.6 s of every training start
CELL = 128  # px of each crop in a preview
CAPTION = 16  # px of the caption strip above each crop
TAB10 = [tuple(int(255 * v) for v in colour[:3]) for colour in plt.get_cmap("tab10").colors]  # keypoint colours, RGB


def _cell(frame_chw, caption: str, points=None) -> np.ndarray:
    """One preview cell (RGB uint8): the crop at CELL px under a caption, with `points` [(x, y)] in crop pixels drawn
    in keypoint order's colours."""
    rgb = (_image(frame_chw) * 255).astype(np.uint8)
    size = rgb.shape[0]
    crop = cv2.resize(rgb, (CELL, CELL), interpolation=cv2.INTER_NEAREST if size < CELL else cv2.INTER_AREA)
    for j, (x, y) in enumerate(points if points is not None else []):
        centre = (int(round(x * CELL / size - 0.5)), int(round(y * CELL / size - 0.5)))
        cv2.circle(crop, centre, 4, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(crop, centre, 3, TAB10[j % len(TAB10)], -1, cv2.LINE_AA)
    strip = np.full((CAPTION, CELL, 3), 255, np.uint8)
    cv2.putText(strip, caption, (2, CAPTION - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, crop])


def _save_grid(rows: list, path) -> None:
    """Rows of cells (lists of equal-sized RGB images; short rows padded white) as one PNG, written atomically."""
    width = max(len(r) for r in rows) if rows else 1
    blank = np.full((CAPTION + CELL, CELL, 3), 255, np.uint8)
    grid = np.vstack([np.hstack(r + [blank] * (width - len(r))) for r in rows] or [blank])
    _, png = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(png.tobytes())


def save_crops_preview(samples: list, class_names: list, path, frames_per_clip: int = 4) -> None:
    """A grid: one row per clip, a few frames across, each captioned with the class and frame."""
    rows = []
    for sample in samples:
        t = sample["frames"].shape[0]
        rows.append([_cell(sample["frames"][i], f"{class_names[int(sample['label'])]} t={i}")
                     for i in np.linspace(0, t - 1, frames_per_clip).astype(int)])
    _save_grid(rows, path)


def save_pose_preview(samples: list, keypoints: list, class_names: list, path) -> None:
    """Centre frame of each clip with its visible keypoints (crop pixels) drawn on top, in one row."""
    cells = []
    for sample, kp in zip(samples, keypoints):
        mid = sample["frames"].shape[0] // 2
        points = None if kp is None else kp[mid, kp[mid, :, 2] > 0, :2]
        cells.append(_cell(sample["frames"][mid], class_names[int(sample["label"])], points))
    _save_grid([cells], path)


def ethogram_bars(ax, labels, rows: list, scale: float = 1.0, band: tuple = (-0.4, 0.8), **style) -> None:
    """Each row's runs of `labels` (frame indices * scale on x) as bars at y = row index + band offset. Used by
    the ethogram files and by the dashboard's strip."""
    labels = np.asarray(labels, dtype=object)
    colours = plt.get_cmap("tab10")
    for r, name in enumerate(rows):
        on = np.flatnonzero(labels == name)
        if len(on):  # contiguous runs as bars
            breaks = np.flatnonzero(np.diff(on) > 1)
            starts, ends = on[np.r_[0, breaks + 1]], on[np.r_[breaks, len(on) - 1]]
            ax.broken_barh([(s * scale, (e - s + 1) * scale) for s, e in zip(starts, ends)],
                           (r + band[0], band[1]), facecolors=colours(r % 10), **style)


def plot_ethogram(labels, confidence, class_names: list, fps: float, path, truth=None) -> None:
    """Behaviour raster (one row per behaviour, time on x) above the per-frame confidence trace. With `truth`
    (per-frame true labels, None where unknown) each row shows the prediction above the truth."""
    labels = np.asarray(labels, dtype=object)
    rows = [c for c in class_names] + [x for x in ("unknown", "no_window") if (labels == x).any()]
    t = np.arange(len(labels)) / fps
    fig, (ax, ax_p) = plt.subplots(2, 1, figsize=(12, 1.2 + (0.5 if truth is not None else 0.35) * len(rows)),
                                   sharex=True, gridspec_kw={"height_ratios": [max(len(rows), 2), 1.5]})
    if truth is None:
        ethogram_bars(ax, labels, rows, 1 / fps)
        ax.set_title("ethogram")
    else:
        ethogram_bars(ax, labels, rows, 1 / fps, (-0.42, 0.42))
        ethogram_bars(ax, truth, rows, 1 / fps, (0.02, 0.38), alpha=0.55, hatch="//")
        ax.set_title("ethogram: prediction (upper bar of each row) and truth (lower, hatched)")
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax_p.plot(t, confidence, lw=0.8, color="black")
    ax_p.set_ylim(0, 1)
    ax_p.set_ylabel("confidence")
    ax_p.set_xlabel("time (s)")
    _save(fig, path)


def plot_confusion_matrix(counts: np.ndarray, rows: list, columns: list, path) -> None:
    """Counts with row-normalised shading (rows = true classes, columns = predicted labels)."""
    norm = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(columns), 1.0 + 0.7 * len(rows)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(rows)):
        for j in range(len(columns)):
            ax.text(j, i, f"{counts[i, j]}\n{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    _save(fig, path)


def plot_trajectory(xy: np.ndarray, zones: list, background, path, title: str) -> None:
    """The animal's path (colour = time) over a frame of the video (when there is one), with the zones drawn."""
    fig, ax = plt.subplots(figsize=(7, 6))
    if background is not None:
        ax.imshow(background, alpha=0.6)
    known = np.isfinite(xy).all(1)
    points = ax.scatter(xy[known, 0], xy[known, 1], c=np.flatnonzero(known), s=2, cmap="viridis")
    ax.plot(xy[:, 0], xy[:, 1], lw=0.4, color="black", alpha=0.5)
    for zone in zones:
        closed = np.vstack([zone.polygon, zone.polygon[:1]])
        ax.plot(closed[:, 0], closed[:, 1], lw=1.5, color="tab:red")
        ax.text(*zone.polygon.mean(0), zone.name, color="tab:red", ha="center", va="center", fontsize=10)
    if background is None:
        ax.invert_yaxis()  # image coordinates: y grows downwards
    ax.set_aspect("equal")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.set_title(title)
    fig.colorbar(points, ax=ax, label="frame")
    _save(fig, path)


def plot_speed(time_s: np.ndarray, speed: np.ndarray, threshold: float, unit: str, path) -> None:
    """Speed over time with the moving threshold."""
    fig, ax = plt.subplots(figsize=(12, 3))
    ax.plot(time_s, speed, lw=0.8, color="black")
    ax.axhline(threshold, color="tab:red", lw=1, ls="--", label=f"moving above {threshold:.3g} {unit}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"speed ({unit})")
    ax.legend(loc="upper right")
    _save(fig, path)
