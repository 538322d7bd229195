"""Whole recordings for dense (per-frame) models: a split's windows stitched back into each recording's frames, cut
into overlapping chunks, with a label on every frame.

A prepared window stores its frames' keypoints, boxes and scale references (and, since frame labels were added, every
frame's own label); the windows of one recording overlap, so together they give each covered frame once. Frames no
window covers (the animal missed, a window dropped) split a recording into runs; chunks never cross a gap. A frame
is labelled by the window files' `frame_labels`; windows prepared before those existed give only their centre frame
a label, the other frames stay UNLABELLED and out of the loss (a partly labelled recording trains too).

Chunks follow the windowing rule of inference (utils.data.windows.window_starts over each run, `chunk` frames every
`stride`); a run shorter than a chunk is one shorter chunk. Features are computed per chunk by the same
FeatureSpec.window_inputs that inference applies to a chunk of a video.
"""
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils.data.windows import dropout_index, frame_weights, window_starts
from utils.features.motion import augment_motion_inputs
from utils.features.recording_norm import RecordingNorm

UNLABELLED = -1
PER_FRAME = ("keypoints_xy_raw", "keypoints_conf_raw", "keypoints_z_raw", "bbox_xyxy", "scale_ref", "partner_xy_raw",
             "partner_conf_raw", "sensor_raw")


@dataclass
class Recording:
    """One recording (one animal of it: `source` is the windows' source_video) of a split: per-frame arrays over
    frames 0..N-1 (NaN where no window covers a frame), labels [N] (class index or UNLABELLED), covered [N], and the
    split's windows that lie in it (index into the split, start frame, size)."""
    name: str
    source: str
    fps: float
    arrays: dict
    labels: np.ndarray
    covered: np.ndarray
    has_pose: bool
    windows: list = field(default_factory=list)
    visual: np.ndarray = None  # frame features [N, Dv] of a model with use_frame_features (training.dense)
    norm: RecordingNorm = None  # its feature statistics, once asked for (feature_normalisation)

    def runs(self) -> list:
        """[(first, end)) of each stretch of covered frames."""
        edges = np.diff(np.concatenate([[0], self.covered.astype(np.int8), [0]]))
        return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))

    def chunks(self, size: int, stride: int) -> list:
        """(start, end) of every chunk: window_starts over each run, a run shorter than `size` whole."""
        out = []
        for first, end in self.runs():
            length = int(end - first)
            starts = window_starts(length, size, stride) if length >= size else [0]
            out += [(int(first + s), int(first + s + min(size, length))) for s in starts]
        return out


def recording_key(entry: dict) -> str:
    """The recording a window belongs to: the prepared folder its window file lies in (a merged manifest, as retraining
    writes, holds several) and its window id without the start frame (`<video id>_f<start>`)."""
    prepared = Path(entry["npz"]).parent.parent.parent.as_posix()  # <prepared>/sequence_npz/<class>/<id>.npz
    return f"{prepared}/{entry['id'].rsplit('_f', 1)[0]}"


def stitch_recordings(dataset, class_count: int) -> list:
    """The recordings of a WindowDataset's split (data.WindowDataset), in order of first appearance."""
    grouped = {}
    for index, entry in enumerate(dataset.entries):
        grouped.setdefault(recording_key(entry), []).append(index)
    return [_stitch(dataset, name, indices, class_count) for name, indices in grouped.items()]


def _stitch(dataset, name: str, indices: list, class_count: int) -> Recording:
    entries = [dataset.entries[i] for i in indices]
    length = max(e["end_frame"] for e in entries) + 1
    arrays, labels, covered = {}, np.full(length, UNLABELLED, np.int64), np.zeros(length, bool)
    class_to_idx = dataset.manifest["class_to_idx"]
    windows = []
    for index, entry in zip(indices, entries):
        small = dataset.small_arrays(index)
        rows = small["frame_index"]
        for key in PER_FRAME:
            if key in small:
                if key not in arrays:
                    arrays[key] = np.full((length,) + small[key].shape[1:], np.nan, np.float32)
                arrays[key][rows] = small[key]
        covered[rows] = True
        names = dataset.frame_labels(index)
        if names is None:  # prepared before frame labels: only the centre frame's is known
            labels[entry["start_frame"] + len(rows) // 2] = entry["label"]
        else:
            labels[rows] = [class_to_idx.get(n, UNLABELLED) if n else UNLABELLED for n in names]
        windows.append((index, int(rows[0]), len(rows)))
    if "partner_conf_raw" in arrays:
        arrays["partner_conf_raw"] = np.nan_to_num(arrays["partner_conf_raw"])
    labels[labels >= class_count] = UNLABELLED
    has_pose = dataset.use_pose and all(e.get("has_keypoints") for e in entries)
    return Recording(name, entries[0]["source_video"], float(entries[0]["fps"]), arrays, labels, covered, has_pose, windows)


def chunk_features(dataset, recording: Recording, start: int, end: int, rng: random.Random = None) -> tuple:
    """(pose [T, Dp] or None, motion [T, Dm] or None) of frames start..end-1, with a feature-space augmentation
    draw (the one WindowDataset makes for a window, frame dropout included) when rng is given."""
    arrays = {k: v[start:end] for k, v in recording.arrays.items()}
    fps = recording.fps
    augment = dataset.augment_cfg
    if rng is not None and augment is not None and augment.frame_dropout:  # each frame keeps its own label
        order = dropout_index(np.arange(end - start), augment.frame_dropout, rng)
        arrays = {k: v[order] for k, v in arrays.items()}
    if rng is not None and augment is not None:
        mirror = augment.hflip_prob * (1 - augment.vflip_prob) + augment.vflip_prob * (1 - augment.hflip_prob)
        arrays, fps = augment_motion_inputs(arrays, fps, rng, mirror, augment.scale_range, augment.speed_range,
                                            augment.pose_jitter, augment.flip_idx)
    pose, motion = dataset.spec.window_inputs(arrays, fps, recording.has_pose)
    if dataset.spec.normalisation != "none":
        pose, motion = recording_norm(dataset, recording).apply(pose, motion)
    return pose, motion


def recording_norm(dataset, recording: Recording) -> RecordingNorm:
    """A recording's feature statistics (utils.features.recording_norm) over windows of the prepared window size,
    every third of a window, as inference takes them over its windows: computed once and kept with the recording."""
    if recording.norm is None:
        size = int(dataset.manifest["meta"].get("window_size") or 30)
        poses, motions = [], []
        for start, end in recording.chunks(size, max(size // 3, 1)):
            pose, motion = dataset.spec.window_inputs({k: v[start:end] for k, v in recording.arrays.items()},
                                                      recording.fps, recording.has_pose)
            poses.append(pose)
            motions.append(motion)
        recording.norm = RecordingNorm.from_windows(poses, motions)
    return recording.norm


def stitch_chunk_probs(length: int, chunks: list, probs: list) -> tuple:
    """(per-frame probabilities [length, C], covered [length]) from overlapping chunks' per-frame probabilities,
    each chunk's frames weighted by utils.data.windows.frame_weights (its edges see the least context)."""
    total = np.zeros((length, probs[0].shape[1]))
    weight = np.zeros(length)
    for (start, end), p in zip(chunks, probs):
        w = frame_weights(end - start)
        total[start:end] += w[:, None] * p
        weight[start:end] += w
    covered = weight > 0
    total[covered] /= weight[covered, None]
    return total, covered
