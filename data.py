"""Reading prepared windows: the Dataset over sequence_manifest.json, clip augmentation, class balancing.

A sample is a dict:
    frames        float32 [T, 3, S, S]  normalised with ImageNet mean/std (S = the manifest's crop_size); absent
                                        for pose-only models (no frame is decoded)
    pose          float32 [T, D]        pose features (utils.features.motion: "body" set, or utils.pose_features: "crop"
                                        set); zeros when the clip has no keypoints
    motion        float32 [T, M]        box-motion features (utils.features.motion.box_motion_features); M = 0 when off
    pose_present  bool                  False for a clip without keypoints (the model then ignores `pose`)
    label         int64
Augmentation is sampled once per clip. On frames it is applied identically to every frame and to the crop
keypoints (one affine matrix moves both; a horizontal or vertical flip also swaps left/right keypoints by
flip_idx); the frame-pixel keypoints and boxes behind the "body" pose and box-motion features get a mirror,
scale, speed and jitter draw in feature space. One temporal index (start jitter, frame dropout) serves all.
"""
import random
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from utils.data.crop_store import CropStoreReader
from utils.errors import UserError
from utils.data.manifest import load_manifest
from utils.data.recordings import recording_key
from utils.data.windows import dropout_index
from utils.features.motion import TRACK_SMOOTH_SECONDS, FeatureSpec, augment_motion_inputs, body_axis
from utils.features.recording_norm import RecordingNorm
from utils.schema import AugmentConfig

OPEN_STORES = 8  # crop stores kept open per process: at most OPEN_STORES x crop_store.CACHE_BYTES of chunk cache
PLAIN_CACHE_BYTES = 128 * 2 ** 20  # windows kept per dataset (and loader worker): about 10 KB each without frames
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class ClipAugment:
    """One random draw per clip, applied to all T frames [T,3,S,S] uint8 and keypoints [T,K,3] (crop px).

    Flips, rotation, scale and translation are folded into one 2x3 matrix (continuous pixel coordinates):
    every frame is warped with it (cv2.warpAffine, bilinear, black outside) and the keypoints are moved by
    the same matrix, so they stay on their pixels. Colour jitter and blur are saturating uint8 operations.
    (Measured in bench/bench_augment.py: torchvision.transforms.v2 on the video tensor was 4x slower than a
    per-frame PIL loop on CPU, this path is faster than both.)
    """

    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg

    def __call__(self, frames: torch.Tensor, keypoints: np.ndarray = None, rng: random.Random = None,
                 index: np.ndarray = None):
        """`index`: the clip's temporal index when the caller drew it (temporal_index) to apply it to other
        arrays too; otherwise it is drawn here."""
        self.rng = rng or random.Random()
        index = self.temporal_index(frames.shape[0], self.rng) if index is None else index
        frames, keypoints = frames[index], (keypoints[index] if keypoints is not None else None)
        size = frames.shape[-1]
        matrix, mirrored = self._draw_geometry(size)
        colour = self._draw_colour()
        sigma = self.rng.uniform(0.3, 1.5) if self.rng.random() < self.cfg.blur_prob else None
        index_matrix = np.hstack([matrix[:, :2], (matrix[:, :2] @ [0.5, 0.5] + matrix[:, 2] - 0.5)[:, None]])
        clip = frames.permute(0, 2, 3, 1).numpy()  # (T, S, S, 3) RGB uint8
        mean = float(cv2.cvtColor(clip[len(clip) // 2], cv2.COLOR_RGB2GRAY).mean())
        out = np.empty_like(clip)
        for t, frame in enumerate(clip):
            frame = cv2.warpAffine(frame, index_matrix, (size, size), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            frame = self._apply_colour(frame, colour, mean)
            out[t] = cv2.GaussianBlur(frame, (5, 5), sigma) if sigma else frame
        if keypoints is not None:
            keypoints = self._move_keypoints(keypoints, matrix, size, mirrored)
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous(), keypoints

    def _draw_geometry(self, size: int) -> tuple:
        """(2x3 matrix in continuous pixel coordinates, mirrored?) for this clip."""
        hflip = self.rng.random() < self.cfg.hflip_prob
        vflip = self.rng.random() < self.cfg.vflip_prob
        angle = np.deg2rad(self.rng.uniform(-self.cfg.rotation_deg, self.cfg.rotation_deg))
        scale = self.rng.uniform(1 - self.cfg.scale_range, 1 + self.cfg.scale_range)
        shift = [self.rng.uniform(-1, 1) * self.cfg.translate_frac * size for _ in range(2)]
        flip = np.diag([-1.0 if hflip else 1.0, -1.0 if vflip else 1.0])
        flip_offset = np.array([size if hflip else 0.0, size if vflip else 0.0])
        rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        centre = np.array([size / 2, size / 2])
        linear = rot @ flip  # p' = rot (flip p + flip_offset - c) + c + shift
        offset = rot @ (flip_offset - centre) + centre + shift
        return np.hstack([linear, offset[:, None]]), hflip != vflip

    def _draw_colour(self) -> tuple:
        def factor(strength):
            return self.rng.uniform(max(0.0, 1 - strength), 1 + strength)
        return factor(self.cfg.brightness), factor(self.cfg.contrast), factor(self.cfg.saturation)

    @staticmethod
    def _apply_colour(frame: np.ndarray, colour: tuple, mean: float) -> np.ndarray:
        """Brightness b then contrast c about the clip's grey mean m: y = b c x + b m (1 - c); saturation s:
        blend with the grey image. uint8 in, uint8 out (saturating)."""
        b, c, s = colour
        if b != 1 or c != 1:
            frame = cv2.convertScaleAbs(frame, alpha=b * c, beta=b * mean * (1 - c))
        if s != 1:
            grey = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            frame = cv2.addWeighted(frame, s, grey, 1 - s, 0)
        return frame

    def temporal_index(self, t: int, rng: random.Random) -> np.ndarray:
        """Start jitter (shift, edge frames repeated) and frame dropout (a frame replaced by its predecessor)."""
        index = np.arange(t)
        if self.cfg.temporal_jitter:
            shift = rng.randint(-self.cfg.temporal_jitter, self.cfg.temporal_jitter)
            index = np.clip(index + shift, 0, t - 1)
        return dropout_index(index, self.cfg.frame_dropout, rng)

    def _move_keypoints(self, keypoints: np.ndarray, matrix: np.ndarray, size: int, mirrored: bool) -> np.ndarray:
        xy = keypoints[..., :2] @ matrix[:, :2].T + matrix[:, 2]
        conf = keypoints[..., 2].copy()
        conf[(xy < 0).any(-1) | (xy >= size).any(-1)] = 0.0  # pushed out of the crop: treat as missing
        out = np.concatenate([xy, conf[..., None]], -1).astype(np.float32)
        if mirrored and self.cfg.flip_idx:
            out = out[:, self.cfg.flip_idx]  # the left ear is now where a right ear would be
        return out


def normalise_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [T,3,H,W] (or float in 0..1) -> float ImageNet-normalised, as every backbone here expects."""
    x = frames.float().div_(255) if frames.dtype == torch.uint8 else frames
    return (x - IMAGENET_MEAN) / IMAGENET_STD


class WindowDataset(Dataset):
    """Windows of one split of a manifest. With `augment` (training) each clip gets a fresh draw: ClipAugment on
    the frames (and crop keypoints), feature-space augmentation (utils.features.motion.augment_motion_inputs) on the
    frame-pixel keypoints and boxes, one temporal index for all of them. Without `load_frames` (pose-only
    models) no frame is ever decoded: the small per-window arrays are read once and kept in memory."""
    SMALL = ("keypoints", "keypoints_xy_raw", "keypoints_conf_raw", "keypoints_z_raw", "bbox_xyxy", "scale_ref",
             "frame_index", "partner_xy_raw", "partner_conf_raw", "sensor_raw")
    in_memory = False  # samples are read from the prepared files: loader workers help

    def __init__(self, manifest_path, split: str, augment: AugmentConfig = None, use_pose: bool = False,
                 min_keypoint_conf: float = 0.0, seed: int = 0, pose_features: str = "body",
                 box_motion: bool = True, load_frames: bool = True,
                 track_smoothing_s: float = TRACK_SMOOTH_SECONDS, use_sensors: bool = True,
                 feature_normalisation: str = "none"):
        self.seed, self.epoch = seed, 0
        self.manifest_path = Path(manifest_path)
        self.manifest = load_manifest(self.manifest_path)
        self.entries = self.manifest["splits"].get(split, [])
        meta = self.manifest["meta"]
        self.crop_size, self.num_keypoints = meta["crop_size"], meta.get("num_keypoints", 0)
        # crop features move with the frames' geometric augmentation, so they need the frames
        self.use_pose, self.load_frames = use_pose, load_frames or pose_features == "crop"
        if use_pose and self.num_keypoints == 0:
            raise UserError(f"--use_pose asked for, but {self.manifest_path} has no keypoints (detector "
                            f"{meta.get('detector')}, task {meta.get('yolo_task')}); prepare with YOLO pose weights")
        axis = meta.get("body_axis") or body_axis(meta.get("keypoint_names"), self.num_keypoints)
        self.spec = FeatureSpec(pose_features, self.num_keypoints, tuple(axis), min_keypoint_conf, self.crop_size,
                                box_motion, social=bool(meta.get("social")), track_smoothing_s=track_smoothing_s,
                                spatial_dims=meta.get("spatial_dims", 2),
                                sensor_channels=tuple(meta.get("sensor_channels") or ()) if use_sensors else (),
                                normalisation=feature_normalisation)
        self.pose_dim, self.motion_dim = self.spec.pose_dim, self.spec.motion_dim
        if augment is not None and augment.flip_idx is None:
            augment.flip_idx = meta.get("flip_idx") or None
        self.augment_cfg = augment
        self.augment = ClipAugment(augment) if augment is not None else None
        self.noise_std = augment.noise_std if augment is not None else 0.0
        self._small, self._frame_labels, self._stores = {}, {}, OrderedDict()
        self._plain, self._plain_bytes = {}, 0  # windows without augmentation or frames, as item() made them
        self._recording_windows, self._norms = {}, {}  # recording key -> window indices, RecordingNorm

    def set_epoch(self, epoch: int) -> None:
        """Augmentation draws depend on (seed, epoch, index) only: the same with any number of workers, and
        a resumed run repeats them exactly."""
        self.epoch = epoch

    def __getstate__(self):  # pickled into DataLoader workers (spawn): each worker keeps windows of its own
        return {**self.__dict__, "_plain": {}, "_plain_bytes": 0}

    def __len__(self):
        return len(self.entries)

    @property
    def labels(self) -> list:
        return [e["label"] for e in self.entries]

    def _read(self, index: int, keys) -> dict:
        path = self.manifest_path.parent / self.entries[index]["npz"]
        try:
            with np.load(path, allow_pickle=False) as data:
                if "scale_ref" not in data.files:
                    raise UserError(f"{path} has no scale_ref (prepared by an older BehaviorScope); re-run "
                                    f"prepare_sequences_from_yolo.py")
                return {k: data[k] for k in keys if k in data.files}
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"cannot read window {path}: {exc}; re-run preprocessing") from None

    def small_arrays(self, index: int) -> dict:
        """Keypoints, boxes and scale references of one window (read once, then from memory)."""
        if index not in self._small:
            self._small[index] = self._read(index, self.SMALL)
        return self._small[index]

    def frame_labels(self, index: int):
        """Every frame's label name of one window ("" where unlabelled), or None for windows prepared before frame
        labels were stored (only the centre frame's label, the window's, is known)."""
        if index not in self._frame_labels:
            self._frame_labels[index] = self._read(index, ("frame_labels",)).get("frame_labels")
        return self._frame_labels[index]

    def load(self, index: int) -> tuple:
        """Raw (frames uint8 [T,3,S,S] tensor, crop keypoints [T,K,3] or None) of one window: from its video's
        crop store (utils.data.crop_store), or from its own npz in manifests of schema version 2."""
        store = self.entries[index].get("crop_store")
        if store:
            rows = self.small_arrays(index)["frame_index"]
            crops = self._store(store).frames(int(rows[0]), int(rows[-1]))
        else:
            crops = self._read(index, ("frames",))["frames"]
        return torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous(), self.small_arrays(index).get("keypoints")

    def _store(self, relative: str) -> CropStoreReader:
        """The crop store of a video, kept open among the OPEN_STORES last used (each caches inflated chunks)."""
        if relative in self._stores:
            self._stores.move_to_end(relative)
        else:
            self._stores[relative] = CropStoreReader(self.manifest_path.parent / relative)
            if len(self._stores) > OPEN_STORES:
                self._stores.popitem(last=False)[1].close()
        return self._stores[relative]

    def __getitem__(self, index: int) -> dict:
        return self.item(index)[0]

    def plain_item(self, index: int, with_frames: bool = None) -> dict:
        """The window without augmentation (as validation sees it), whatever this dataset's augment is."""
        augment, self.augment = self.augment, None
        try:
            return self.item(index, with_frames)[0]
        finally:
            self.augment = augment

    def item(self, index: int, with_frames: bool = None) -> tuple:
        """(sample dict, crop keypoints [T,K,3] after augmentation or None): the keypoints are for previews. A
        window without augmentation or frames is computed once (up to PLAIN_CACHE_BYTES): trees, the drift
        reference, decision weights and each epoch's validation read every window again."""
        frames = self.load_frames if with_frames is None else with_frames
        kept = self.augment is None and not frames
        if kept and index in self._plain:
            sample, keypoints = self._plain[index]
            return dict(sample), keypoints  # the caller's dict: some add keys to it (CachedFeatureDataset)
        sample, keypoints = self._compute_item(index, frames)
        if kept and self._plain_bytes < PLAIN_CACHE_BYTES:
            self._plain[index] = dict(sample), keypoints
            self._plain_bytes += sum(v.numel() * v.element_size() for v in sample.values())
        return sample, keypoints

    def _compute_item(self, index: int, frames: bool) -> tuple:
        entry, arrays = self.entries[index], self.small_arrays(index)
        t, fps = len(arrays["bbox_xyxy"]), float(entry["fps"])
        rng = random.Random(hash((self.seed, self.epoch, index))) if self.augment is not None else None
        order = self.augment.temporal_index(t, rng) if rng else np.arange(t)
        keypoints = arrays.get("keypoints")
        sample = {"label": torch.tensor(entry["label"], dtype=torch.long)}
        if frames:
            sample["frames"], keypoints = self._frames(index, rng, order)
        elif keypoints is not None:
            keypoints = keypoints[order]
        inputs = {k: v[order] for k, v in arrays.items() if k != "frame_index"}
        inputs["keypoints"] = keypoints
        if rng is not None:
            a = self.augment_cfg
            mirror = a.hflip_prob * (1 - a.vflip_prob) + a.vflip_prob * (1 - a.hflip_prob)
            inputs, fps = augment_motion_inputs(inputs, fps, rng, mirror, a.scale_range, a.speed_range,
                                                a.pose_jitter, a.flip_idx)
        present = self.use_pose and keypoints is not None
        pose, motion = self.normalised(index, *self.spec.window_inputs(inputs, fps, present))
        sample["pose"] = torch.from_numpy(pose) if pose is not None else torch.zeros(t, self.pose_dim)
        sample["motion"] = torch.from_numpy(motion) if motion is not None else torch.zeros(t, 0)
        sample["pose_present"] = torch.tensor(present)
        return sample, keypoints

    def normalised(self, index: int, pose, motion) -> tuple:
        """A window's (pose, motion) inputs against its recording's statistics when the features are normalised
        per recording (utils.features.recording_norm); as they are otherwise."""
        if self.spec.normalisation == "none":
            return pose, motion
        return self.recording_norm(recording_key(self.entries[index])).apply(pose, motion)

    def recording_norm(self, key: str) -> RecordingNorm:
        """The statistics of one recording, over the plain (not augmented) inputs of its windows in this split."""
        if not self._recording_windows:  # every recording's windows, grouped once
            for index, entry in enumerate(self.entries):
                self._recording_windows.setdefault(recording_key(entry), []).append(index)
        if key not in self._norms:
            poses, motions = [], []
            for index in self._recording_windows[key]:
                arrays = self.small_arrays(index)
                inputs = {k: v for k, v in arrays.items() if k != "frame_index"}
                present = self.use_pose and arrays.get("keypoints") is not None
                pose, motion = self.spec.window_inputs(inputs, float(self.entries[index]["fps"]), present)
                poses.append(pose)
                motions.append(motion)
            self._norms[key] = RecordingNorm.from_windows(poses, motions)
        return self._norms[key]

    def _frames(self, index: int, rng, order) -> tuple:
        """Normalised frames [T,3,S,S] (augmented when rng is given) and the crop keypoints moved with them."""
        frames, keypoints = self.load(index)
        x_noise = None
        if rng is not None:  # noise too is part of augmentation
            frames, keypoints = self.augment(frames, keypoints, rng, index=order)
            gen = torch.Generator().manual_seed(rng.getrandbits(62))
            x_noise = torch.randn(frames.shape, generator=gen) * self.noise_std if self.noise_std else None
        x = frames.float().div_(255)
        if x_noise is not None:
            x = (x + x_noise).clamp_(0, 1)
        return normalise_frames(x), keypoints


def class_weights(labels, num_classes: int, mode: str, clamp: float = 10.0) -> torch.Tensor:
    """Loss weights from training counts: none (ones), inverse or sqrt_inverse frequency; mean 1; the ratio
    between the largest and smallest weight is at most `clamp`. A class with no sample gets the largest."""
    counts = torch.bincount(torch.as_tensor(labels, dtype=torch.long), minlength=num_classes).float()
    if mode == "none":
        return torch.ones(num_classes)
    w = 1.0 / counts.clamp(min=1)
    if mode == "sqrt_inverse":
        w = w.sqrt()
    w = w.clamp(max=float(w.min()) * clamp)
    return w / w.mean()


def balanced_sampler(labels, seed: int = 0) -> WeightedRandomSampler:
    """Draws each class equally often on average (weight 1 / class count per sample)."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    per_sample = 1.0 / torch.bincount(labels).float()[labels]
    return WeightedRandomSampler(per_sample.double(), num_samples=len(labels), replacement=True,
                                 generator=torch.Generator().manual_seed(seed))


class CachedFeatureDataset(Dataset):
    """Windows as cached backbone features: `visual` [T, Dv] replaces `frames`. Views: 0 = the clean clip,
    1.. = augmented clips; each access draws one view from (seed, epoch, index), like the augmentation. Pose
    and box motion are cheap: they come from the source dataset on every access, freshly augmented."""

    in_memory = True  # the features are in memory: loader workers would only copy them

    def __init__(self, bank: torch.Tensor, frame_index: torch.Tensor, source: WindowDataset):
        self.bank, self.frame_index, self.source = bank, frame_index, source  # frame_index: (N, V, T) bank rows
        self.labels_, self.manifest, self.seed, self.epoch = source.labels, source.manifest, source.seed, 0
        self.spec, self.pose_dim, self.motion_dim = source.spec, source.pose_dim, source.motion_dim

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.source.set_epoch(epoch)

    def __len__(self):
        return len(self.labels_)

    @property
    def labels(self) -> list:
        return self.labels_

    @property
    def entries(self) -> list:
        return self.source.entries

    def __getitem__(self, index: int) -> dict:
        views = self.frame_index.shape[1]
        view = random.Random(hash((self.seed, self.epoch, index))).randrange(views) if views > 1 else 0
        sample = self.source.item(index, with_frames=False)[0]
        sample["visual"] = self.bank[self.frame_index[index, view]].float()
        return sample

    def plain_item(self, index: int) -> dict:
        """The clean view of the window, without augmentation (as validation sees it)."""
        sample = self.source.plain_item(index, with_frames=False)
        sample["visual"] = self.bank[self.frame_index[index, 0]].float()
        return sample


@torch.no_grad()
def build_feature_cache(encode, dataset: WindowDataset, device, augmented_views: int = 0, batch_frames: int = 64,
                        bank_dtype=torch.float16) -> CachedFeatureDataset:
    """Encode every unique source frame of `dataset` once (overlapping windows share frames) with `encode`
    ((1, N, 3, H, W) -> (1, N, D)), plus `augmented_views` augmented copies of each clip."""
    slot_of, pending = {}, []  # slot_of: unique (video, frame) -> bank row
    chunks, index = [], []

    def flush():
        if pending:
            chunks.append(encode(torch.stack(pending)[None].to(device))[0].to("cpu", bank_dtype))
            pending.clear()

    def add_frames(x):  # (T, 3, H, W) normalised -> new bank rows
        start = sum(len(c) for c in chunks) + len(pending)
        for frame in x:
            pending.append(frame)
            if len(pending) >= batch_frames:
                flush()
        return list(range(start, start + len(x)))

    for i, entry in enumerate(dataset.entries):
        frame_ids = [(entry["source_video"], int(f)) for f in dataset.small_arrays(i)["frame_index"]]
        frames = dataset.plain_item(i)["frames"]
        new = [j for j, fid in enumerate(frame_ids) if fid not in slot_of]
        for j, row in zip(new, add_frames(frames[new])):
            slot_of[frame_ids[j]] = row
        view_rows = [[slot_of[f] for f in frame_ids]]
        for v in range(augmented_views):
            dataset.set_epoch(10_000 + v)  # augmented draws that no training epoch repeats
            view_rows.append(add_frames(dataset[i]["frames"]))
        index.append(view_rows)
    dataset.set_epoch(0)
    flush()
    bank = torch.cat(chunks) if chunks else torch.zeros(0, 0, dtype=bank_dtype)
    return CachedFeatureDataset(bank, torch.tensor(index, dtype=torch.long), dataset)
