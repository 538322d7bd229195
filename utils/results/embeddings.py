"""Embeddings of recordings and the behaviour groups found in them without labels (embed_behavior.py).

Every model kind has a representation of what it sees: the clip embedding its head reads (window networks), the
per-frame features of its last layer (dense and pretrained models), or the window statistics its trees split
(gbt). A frame's embedding is the centre-weighted mean of the embeddings of the windows over it, as a frame's
probabilities are (utils.data.windows.frame_weights); a dense model gives each frame its own.

Groups: k-means on the standardised embeddings (reduced by PCA to at most PCA_DIMS dimensions, which keeps what
varies and drops noise), the number of groups chosen by the silhouette score (how much closer each frame is to
its own group than to the next one) among 2..max_groups on a sample of frames; or HDBSCAN, which finds its own
number and leaves frames in no dense region ungrouped (-1). Group labels are then smoothed in time (the most
common group over `smooth_s` seconds) so that they form bouts a person can review.
"""
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from utils.errors import UserError
from utils.io import atomic_path, atomic_save_npz, atomic_write_csv, atomic_write_text

log = logging.getLogger(__name__)
PCA_DIMS = 16
SILHOUETTE_SAMPLE = 4000  # frames the silhouette is computed on (it costs the square of its sample)
FIT_SAMPLE = 50_000  # frames k-means and HDBSCAN are fitted on; every frame is then assigned


class FrameEmbeddings:
    """Per-frame sums of window embeddings, weighted like probabilities, grown as windows arrive."""

    def __init__(self):
        self.sum, self.weight, self.windows = None, np.zeros(0), []

    def add(self, start: int, values: np.ndarray, weights: np.ndarray) -> None:
        """One window's embedding: values [D] (the window's) or [T, D] (each frame's), frame weights [T]."""
        values = np.asarray(values, np.float32)
        self.windows.append((start, values.mean(0) if values.ndim == 2 else values))
        end = start + len(weights)
        if self.sum is None:
            self.sum = np.zeros((0, values.shape[-1]), np.float32)  # a few windows per frame: float32 sums suffice
        if end > len(self.weight):
            size = max(end, 2 * len(self.weight))
            self.sum = np.concatenate([self.sum, np.zeros((size - len(self.sum), self.sum.shape[1]), np.float32)])
            self.weight = np.concatenate([self.weight, np.zeros(size - len(self.weight))])
        self.sum[start:end] += weights[:, None] * (values if values.ndim == 2 else values[None])
        self.weight[start:end] += weights

    def frames(self, num_frames: int) -> np.ndarray:
        """[num_frames, D] float32; NaN for frames no window covered."""
        dim = 0 if self.sum is None else self.sum.shape[1]
        out = np.full((num_frames, dim), np.nan, np.float32)
        n = min(num_frames, len(self.weight))
        covered = self.weight[:n] > 0
        out[:n][covered] = self.sum[:n][covered] / self.weight[:n][covered, None]
        return out

    def window_table(self) -> tuple:
        """(window starts [W] int64, window embeddings [W, D] float32) in the order the windows were classified."""
        if not self.windows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return (np.array([s for s, _ in self.windows], np.int64),
                np.stack([e for _, e in self.windows]).astype(np.float32))


def standardised_pca(x: np.ndarray, dims: int = PCA_DIMS, seed: int = 0) -> tuple:
    """(x standardised per feature and reduced by PCA to at most `dims` components, the fitted scaler and PCA)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler
    scaler = StandardScaler().fit(x)
    z = np.nan_to_num(scaler.transform(x))
    pca = PCA(n_components=min(dims, z.shape[1], len(z)), random_state=seed).fit(z)
    return pca.transform(z), scaler, pca


def sample_rows(n: int, limit: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False)) if n > limit else np.arange(n)


def choose_kmeans(z: np.ndarray, max_groups: int, seed: int = 0) -> tuple:
    """(labels [N], the chosen number of groups, {k: silhouette}): k-means for k = 2..max_groups on a sample,
    the k with the highest silhouette kept, every frame assigned to its nearest centre."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    fit_rows = sample_rows(len(z), FIT_SAMPLE, seed)
    score_rows = sample_rows(len(fit_rows), SILHOUETTE_SAMPLE, seed + 1)
    scores, models = {}, {}
    for k in range(2, max(2, min(max_groups, len(fit_rows) - 1)) + 1):
        models[k] = KMeans(k, n_init=4, random_state=seed).fit(z[fit_rows])
        scores[k] = float(silhouette_score(z[fit_rows][score_rows], models[k].labels_[score_rows]))
    best = max(scores, key=scores.get)
    return models[best].predict(z), best, scores


def hdbscan_groups(z: np.ndarray, min_frames: int, seed: int = 0) -> np.ndarray:
    """HDBSCAN on a sample (groups of at least `min_frames` frames); the other frames take their nearest sampled
    frame's group (-1: in no group)."""
    from sklearn.cluster import HDBSCAN
    from sklearn.neighbors import KNeighborsClassifier
    rows = sample_rows(len(z), min(FIT_SAMPLE, 20_000), seed)
    labels = HDBSCAN(min_cluster_size=max(min_frames, 5)).fit_predict(z[rows])
    if len(rows) == len(z):
        return labels
    return KNeighborsClassifier(1).fit(z[rows], labels).predict(z)


def smooth_groups(groups: np.ndarray, fps: float, seconds: float) -> tuple:
    """(each frame's most common group within +-seconds/2 around it (ties: the lowest group), the share of those
    frames in it)."""
    half = int(round(seconds * fps / 2))
    if half < 1 or not len(groups):
        return groups, np.ones(len(groups))
    values = np.unique(groups)
    counts = np.stack([np.convolve(groups == v, np.ones(2 * half + 1), "same") for v in values], 1)
    best = counts.argmax(1)
    return values[best], counts[np.arange(len(groups)), best] / counts.sum(1)


def group_purity(truth, groups) -> dict:
    """How the groups found match known behaviours: the adjusted Rand index over frames with a known behaviour,
    and per behaviour its purity (the share of its frames in the group that holds most of them) and that group."""
    from sklearn.metrics import adjusted_rand_score
    truth, groups = np.asarray(truth, dtype=object), np.asarray(groups)
    known = np.array([t is not None for t in truth])
    out = {"adjusted_rand_index": float(adjusted_rand_score(truth[known].astype(str), groups[known])),
           "per_behaviour": {}}
    for name in sorted({str(t) for t in truth[known]}):
        mine = groups[known][truth[known].astype(str) == name]
        values, counts = np.unique(mine, return_counts=True)
        out["per_behaviour"][name] = {"group": int(values[counts.argmax()]), "purity": float(counts.max() / len(mine)),
                                      "frames": int(len(mine))}
    return out


def plot_embedding(xy: np.ndarray, colourings: dict, path, title: str) -> None:
    """One scatter panel per colouring ({panel title: per-point values}, categorical or numbers), saved
    atomically as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from utils.io import atomic_path
    panels, size = len(colourings), 6 if len(xy) < 3000 else 2
    columns = min(panels, 3)  # a grid, not a strip: readable in a dashboard pane as in a file viewer
    rows = -(-panels // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.2 * rows), squeeze=False)
    for ax in axes.flat[panels:]:
        ax.axis("off")
    for ax, (name, values) in zip(axes.flat, colourings.items()):
        values = np.asarray(values)
        if values.dtype.kind in "fiu" and len(np.unique(values)) > 20:
            points = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=size, cmap="viridis", linewidths=0)
            fig.colorbar(points, ax=ax, fraction=0.046)
        else:
            names = values.astype(str)
            kinds = sorted(set(names))
            palette = plt.cm.tab10 if len(kinds) <= 10 else plt.cm.tab20  # tab20 pairs shades: only past ten
            for i, value in enumerate(kinds):
                here = names == value
                ax.scatter(xy[here, 0], xy[here, 1], s=size, linewidths=0, label=value, color=palette(i % palette.N))
            ax.legend(markerscale=4, fontsize=7, loc="best", frameon=False)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ recordings
UNGROUPED = -1


@dataclass
class RecordingEmbedding:
    """One recording's (or one animal's) embeddings as embed_behavior.py writes them."""
    name: str  # unique among the recordings: its folder under input_dir and its recording name
    path: Path
    fps: float
    frames: np.ndarray  # [N, D] float32, NaN where no window covered the frame
    window_starts: np.ndarray
    window_embeddings: np.ndarray
    prediction: np.ndarray  # [N] the model's label per frame ("" for a pretrained model, which has no classes)
    truth: list = None  # [N] known behaviour (None where unknown) when a label file lies beside the recording
    groups: np.ndarray = None  # [N] int, UNGROUPED where none
    group_share: np.ndarray = None  # [N] share of the smoothing span in the frame's group
    map_inputs: np.ndarray = None  # [valid frames, PCA dims] the standardised, reduced embeddings the maps draw
    boxes: np.ndarray = None  # [N, 4] frame px, NaN where missed: the Review tab draws them
    keypoints: np.ndarray = None  # [N, K, 3] frame px (x, y, conf)

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.frames).all(1)

    @property
    def has_video(self) -> bool:
        from utils.readers.pose_io import is_pose_file
        return not is_pose_file(self.path)


def recording_embedding(path, root, animal, prediction, class_names: list, truth=None) -> RecordingEmbedding:
    """A Predictor's prediction (made with keep_embeddings) as a RecordingEmbedding."""
    from utils.readers.pose_io import recording_name
    path, root = Path(path), Path(root)
    parts = list(path.relative_to(root).parent.parts) + [recording_name(path)] + ([animal] if animal else [])
    starts, windows = prediction.embeddings.window_table()
    probs, covered = prediction.acc.mean_probs()
    labels = np.array(class_names, dtype=object)[probs.argmax(1)] if class_names else np.full(len(probs), "")
    labels = np.where(covered, labels, "").astype(str)
    return RecordingEmbedding("__".join(parts), path, prediction.fps, prediction.embeddings.frames(prediction.frames),
                              starts, windows, labels, truth, boxes=prediction.acc.boxes.values(),
                              keypoints=prediction.acc.keypoints.values())


def check_umap(wanted: bool) -> None:
    if not wanted:
        return
    import importlib.util
    if importlib.util.find_spec("umap") is None:
        raise UserError("the UMAP map needs umap-learn, which is not installed: pip install umap-learn (or "
                        "--no-umap for the PCA map only)")


def find_groups(recordings: list, cfg) -> dict:
    """Group every frame of every recording (cfg: EmbeddingConfig); fills each recording's groups and returns the
    report: the method, the number of groups, the silhouette per number tried, and agreement with known labels."""
    x = np.concatenate([r.frames[r.valid] for r in recordings])
    if not len(x):
        raise UserError("no frame has an embedding: no window of any recording could be classified")
    z, _, pca = standardised_pca(x, seed=cfg.seed)
    offsets = np.cumsum([0] + [int(r.valid.sum()) for r in recordings])
    report = {"groups_method": cfg.groups, "frames": int(len(x)), "embedding_dims": int(x.shape[1]),
              "pca_dims": int(z.shape[1]), "pca_variance_kept": round(float(pca.explained_variance_ratio_.sum()), 4)}
    if cfg.groups == "kmeans":
        labels, count, scores = choose_kmeans(z, cfg.max_groups, cfg.seed)
        report.update(groups=count, silhouette={str(k): round(v, 4) for k, v in scores.items()})
    elif cfg.groups == "hdbscan":
        fps = float(np.median([r.fps for r in recordings]))
        labels = hdbscan_groups(z, int(cfg.min_group_s * fps), cfg.seed)
        report.update(groups=int(labels.max() + 1), ungrouped_share=round(float((labels < 0).mean()), 4))
    else:
        labels = np.full(len(z), UNGROUPED)
        report.update(groups=0)
    for i, r in enumerate(recordings):
        raw = np.full(len(r.frames), UNGROUPED)
        raw[r.valid] = labels[offsets[i]:offsets[i + 1]]
        r.map_inputs = z[offsets[i]:offsets[i + 1]]
        r.groups, r.group_share = smooth_groups(raw, r.fps, cfg.smooth_s) if cfg.groups != "none" else (raw, raw * 0.0)
        r.groups = np.where(r.valid, r.groups, UNGROUPED)
    known = [r for r in recordings if r.truth is not None]
    if known and cfg.groups != "none":
        report["against_labels"] = group_purity(sum((list(r.truth) for r in known), []),
                                                np.concatenate([r.groups for r in known]))
    return report


def group_name(group: int) -> str:
    return "unknown" if group == UNGROUPED else f"group_{group:02d}"


def runs_of(values: np.ndarray) -> list:
    """(start, end inclusive, value) of each run of equal values."""
    if not len(values):
        return []
    edges = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts, ends = np.r_[0, edges], np.r_[edges, len(values)] - 1
    return [(int(s), int(e), values[s]) for s, e in zip(starts, ends)]


def write_recordings(recordings: list, out_root: Path, report: dict) -> None:
    """<name>.embeddings.npz and groups/<name>.frames.csv (the Review tab's result format) per recording; the
    report lists them."""
    report["recordings"] = [{"name": r.name, "path": str(r.path), "has_video": r.has_video, "frames": len(r.groups),
                             "groups_frames": f"groups/{r.name}.frames.csv"} for r in recordings]
    for r in recordings:
        arrays = dict(frame_embeddings=r.frames, valid=r.valid, window_start=r.window_starts,
                      window_embeddings=r.window_embeddings, groups=r.groups.astype(np.int16),
                      prediction=r.prediction.astype(str), fps=np.float64(r.fps))
        if r.truth is not None:
            arrays["truth"] = np.array(["" if t is None else str(t) for t in r.truth])
        atomic_save_npz(out_root / f"{r.name}.embeddings.npz", **arrays)
        atomic_write_csv(out_root / "groups" / f"{r.name}.frames.csv", groups_frames_table(r))


def groups_frames_table(r: RecordingEmbedding) -> pd.DataFrame:
    """The groups as inference's frames.csv has its labels (frame, label, confidence, the box and keypoints the
    Review tab draws), plus the model's own label."""
    columns = {"frame": np.arange(len(r.groups)), "label": [group_name(g) for g in r.groups],
               "confidence": np.round(r.group_share, 4), "model_label": r.prediction}
    columns.update({f"box_{k}": r.boxes[:, i] for i, k in enumerate(("x1", "y1", "x2", "y2"))})
    for k in range(r.keypoints.shape[1]):
        columns.update({f"kp{k}_{axis}": r.keypoints[:, k, j] for j, axis in enumerate(("x", "y", "conf"))})
    return pd.DataFrame(columns)


def write_groups(recordings: list, out_root: Path, report: dict) -> pd.DataFrame:
    """groups.csv: per group its frames, share, bouts, median bout length, and the model's and the known label
    most common in it."""
    rows = []
    groups = np.concatenate([r.groups for r in recordings])
    prediction = np.concatenate([r.prediction for r in recordings])
    truth = np.concatenate([np.array(["" if t is None else str(t) for t in (r.truth or [None] * len(r.groups))])
                            for r in recordings])
    bouts = {}
    for r in recordings:
        for start, end, g in runs_of(r.groups):
            bouts.setdefault(int(g), []).append((end - start + 1) / r.fps)
    for g in sorted(set(groups.tolist())):
        mine = groups == g
        row = {"group": group_name(g), "frames": int(mine.sum()), "share": round(float(mine.mean()), 4),
               "bouts": len(bouts.get(g, [])), "median_bout_s": round(float(np.median(bouts.get(g, [0]))), 3)}
        for column, values in (("model_label", prediction[mine]), ("known_label", truth[mine])):
            named = values[values != ""]
            if len(named):
                names, counts = np.unique(named, return_counts=True)
                row[column], row[f"{column}_share"] = names[counts.argmax()], round(float(counts.max() / len(named)), 4)
        rows.append(row)
    table = pd.DataFrame(rows)
    atomic_write_csv(out_root / "groups.csv", table)
    report["group_table"] = rows
    return table


def map_sample(recordings: list, limit: int, seed: int) -> tuple:
    """(z rows, {colouring: values}) of an even sample of every recording's embedded frames."""
    z = np.concatenate([r.map_inputs for r in recordings])
    rows = sample_rows(len(z), limit, seed)
    colours = {"group": np.concatenate([[group_name(g) for g in r.groups[r.valid]] for r in recordings]),
               "model label": np.concatenate([r.prediction[r.valid] for r in recordings]),
               "recording": np.concatenate([[r.name] * int(r.valid.sum()) for r in recordings]),
               "time (s)": np.concatenate([np.flatnonzero(r.valid) / r.fps for r in recordings])}
    if all(r.truth is not None for r in recordings):
        colours["known behaviour"] = np.concatenate([["unknown" if t is None else str(t)
                                                      for t in np.asarray(r.truth, dtype=object)[r.valid]]
                                                     for r in recordings])
    if not any(np.concatenate([r.prediction for r in recordings]) != ""):
        del colours["model label"]  # a pretrained model has no classes
    if len(set(colours["recording"])) > 20:
        del colours["recording"]  # too many to tell apart
    return z[rows], {k: np.asarray(v)[rows] for k, v in colours.items()}


def write_maps(recordings: list, out_root: Path, cfg, report: dict) -> None:
    """embedding_pca.png (the first two principal components) and, with cfg.umap, embedding_umap.png."""
    z, colours = map_sample(recordings, cfg.plot_points, cfg.seed)
    plot_embedding(z[:, :2], colours, out_root / "embedding_pca.png", f"PCA of {len(z)} frames")
    if cfg.umap:
        import umap
        xy = umap.UMAP(n_components=2, n_neighbors=30, min_dist=0.1, random_state=cfg.seed).fit_transform(z)
        plot_embedding(xy, colours, out_root / "embedding_umap.png", f"UMAP of {len(z)} frames")
    report["maps"] = ["embedding_pca.png"] + ["embedding_umap.png"] * bool(cfg.umap)


def write_clips(recordings: list, out_root: Path, per_group: int) -> int:
    """clips/group_XX/<name>_fNNNNNNN.mp4: each group's longest bouts (at most 10 s each) from recordings with
    video, across all of them; returns how many were written."""
    import cv2
    from utils.data.video_io import FrameReader
    bouts = {}
    for r in recordings:
        if r.has_video:
            for start, end, g in runs_of(r.groups):
                if g != UNGROUPED:
                    bouts.setdefault(int(g), []).append((end - start, r, start, end))
    written = 0
    for g, found in bouts.items():
        for _, r, start, end in sorted(found, key=lambda b: -b[0])[:per_group]:
            reader = FrameReader(r.path)
            try:
                end = min(end, start + int(10 * r.fps))
                frames = [f for f in (reader.read(i) for i in range(start, end + 1)) if f is not None]
            finally:
                reader.close()
            if not frames:
                continue
            with atomic_path(out_root / "clips" / group_name(g) / f"{r.name}_f{start:07d}.mp4") as tmp:
                h, w = frames[0].shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), r.fps, (w, h))
                for frame in frames:
                    writer.write(frame)
                writer.release()
            written += 1
    if per_group and not bouts:
        log.info("no example clips: the recordings are pose files without video")
    return written


def write_report(out_root: Path, report: dict, model_path) -> None:
    atomic_write_text(out_root / "embedding_report.json", json.dumps({"model": str(model_path), **report}, indent=2)
                      + "\n")
    lines = [f"{report['frames']} frames, embeddings of {report['embedding_dims']} values; grouping "
             f"{report['groups_method']}: {report['groups']} groups"]
    if "against_labels" in report:
        ari = report["against_labels"]["adjusted_rand_index"]
        lines.append(f"against the known labels: adjusted Rand index {ari:.3f}")
    for line in lines:
        log.info(line)
