"""Clip augmentation keeps keypoints on their pixels; class weights and the balanced sampler."""
import pickle
import random
from collections import Counter

import numpy as np
import pytest
import torch

from data import AugmentConfig, ClipAugment, balanced_sampler, class_weights


def dotted_clip(points, size=64, t=3):
    """A black clip with a bright 3x3 dot centred on each keypoint (pixel centres at i + 0.5)."""
    frames = torch.zeros(t, 3, size, size, dtype=torch.uint8)
    for x, y in points:
        frames[:, :, int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 255
    kp = np.array([[[x, y, 1.0] for x, y in points]] * t, np.float32)
    return frames, kp


@pytest.mark.parametrize("seed", range(8))
def test_keypoints_follow_pixels(seed):
    points = [(20.5, 30.5), (44.5, 18.5)]
    frames, kp = dotted_clip(points)
    cfg = AugmentConfig(rotation_deg=30, scale_range=0.15, translate_frac=0.1, brightness=0, contrast=0,
                        saturation=0, blur_prob=0, temporal_jitter=0, flip_idx=None)
    out, out_kp = ClipAugment(cfg)(frames, kp, random.Random(seed))
    for t in range(out.shape[0]):
        for k in range(len(points)):
            x, y, conf = out_kp[t, k]
            if conf == 0:
                continue  # pushed outside the crop
            xi, yi = int(np.floor(x)), int(np.floor(y))
            y0, x0 = max(yi - 4, 0), max(xi - 4, 0)
            patch = out[t, 0, y0:yi + 5, x0:xi + 5].double()
            assert patch.max() > 100, f"no dot near augmented keypoint {k} at ({x:.1f}, {y:.1f})"
            ys, xs = torch.meshgrid(torch.arange(patch.shape[0]), torch.arange(patch.shape[1]), indexing="ij")
            centre = [(xs * patch).sum() / patch.sum() + x0 + 0.5, (ys * patch).sum() / patch.sum() + y0 + 0.5]
            assert abs(centre[0] - x) < 1.0 and abs(centre[1] - y) < 1.0
    assert torch.equal(out[0], out[-1])  # one draw for the whole clip


def test_flip_swaps_left_and_right_keypoints():
    frames, kp = dotted_clip([(10.5, 10.5), (50.5, 12.5)])
    cfg = AugmentConfig(hflip_prob=1.0, vflip_prob=0.0, rotation_deg=0, scale_range=0, translate_frac=0,
                        brightness=0, contrast=0, saturation=0, blur_prob=0, temporal_jitter=0, flip_idx=[1, 0])
    out, out_kp = ClipAugment(cfg)(frames, kp, random.Random(0))
    # point 0 (x 10.5) mirrors to x 53.5, point 1 (x 50.5) to 13.5; swapped, slot 0 now holds the mirrored point 1
    np.testing.assert_allclose(out_kp[0, :, :2], [[13.5, 12.5], [53.5, 10.5]], atol=1e-4)
    assert out[0, 0, 12, 13] == 255 and out[0, 0, 10, 53] == 255


def test_temporal_jitter_and_dropout_touch_frames_and_keypoints_alike():
    t = 10
    frames = torch.arange(t, dtype=torch.uint8).view(t, 1, 1, 1).expand(t, 3, 8, 8).contiguous()
    kp = np.arange(t, dtype=np.float32).reshape(t, 1, 1).repeat(3, -1) + 1
    cfg = AugmentConfig(temporal_jitter=3, frame_dropout=0.5, hflip_prob=0, vflip_prob=0, rotation_deg=0,
                        scale_range=0, translate_frac=0, brightness=0, contrast=0, saturation=0, blur_prob=0)
    f2, k2 = ClipAugment(cfg)(frames, kp, random.Random(3))
    assert [int(f) for f in f2[:, 0, 0, 0]] == [int(k) - 1 for k in k2[:, 0, 0]]
    assert not torch.equal(f2, frames)


def test_class_weights_and_clamp():
    labels = [0] * 90 + [1] * 10
    np.testing.assert_allclose(class_weights(labels, 2, "none"), [1, 1])
    w = class_weights(labels, 2, "inverse")
    assert w[1] / w[0] == pytest.approx(9.0) and w.mean() == pytest.approx(1.0)
    assert class_weights(labels, 2, "sqrt_inverse")[1] / class_weights(labels, 2, "sqrt_inverse")[0] == pytest.approx(3.0)
    assert class_weights(labels, 2, "inverse", clamp=4.0)[1] / class_weights(labels, 2, "inverse", clamp=4.0)[0] == pytest.approx(4.0)


def test_balanced_sampler_draws_classes_evenly():
    labels = [0] * 90 + [1] * 10
    drawn = Counter(labels[i] for _ in range(20) for i in balanced_sampler(labels, seed=1))
    assert 0.4 < drawn[1] / sum(drawn.values()) < 0.6


def test_dataset_over_a_prepared_manifest(class_folder_dataset, tiny_yolo, tmp_path):
    from conftest import prepare_args
    from data import WindowDataset
    from prepare_sequences_from_yolo import main as prepare
    prepare(prepare_args("--dataset_root", class_folder_dataset, "--output_root", tmp_path, "--yolo_weights",
                         tiny_yolo, "--yolo_imgsz", "320", "--device", "cpu", "--crop_size", "64",
                         "--window_size", "8", "--window_stride", "8", "--split_strategy", "window"))
    manifest = tmp_path / "sequence_manifest.json"
    val = WindowDataset(manifest, "val", use_pose=True)
    sample = val[0]
    assert sample["frames"].shape == (8, 3, 64, 64) and sample["frames"].dtype == torch.float32
    assert -2.2 < float(sample["frames"].min()) and float(sample["frames"].max()) < 2.7  # ImageNet-normalised
    assert sample["pose"].shape == (8, 55) and bool(sample["pose_present"]) and sample["label"] == val.labels[0]
    assert sample["motion"].shape == (8, 5) and sample["pose"].abs().sum() > 0
    assert WindowDataset(manifest, "val", use_pose=True, pose_features="crop")[0]["pose"].shape == (8, 39)
    assert torch.equal(val[0]["frames"], val[0]["frames"])  # validation: no randomness
    train = WindowDataset(manifest, "train", augment=AugmentConfig(), use_pose=True, seed=1)
    assert train.augment.cfg.flip_idx == [0, 2, 1, 3, 4, 5]  # taken from the manifest
    first = train[0]["frames"]
    assert torch.equal(first, train[0]["frames"])  # draws depend on (seed, epoch, index) only
    train.set_epoch(1)
    assert not torch.equal(first, train[0]["frames"])  # a fresh draw each epoch
    pose_only = WindowDataset(manifest, "train", augment=AugmentConfig(), use_pose=True, seed=1, load_frames=False)
    assert "frames" not in pose_only[0] and not torch.equal(pose_only[0]["pose"], val.plain_item(0)["pose"])
    no_pose = WindowDataset(manifest, "val", use_pose=False)[0]
    assert not bool(no_pose["pose_present"]) and float(no_pose["pose"].abs().sum()) == 0
    # a window without augmentation or frames is computed once, and each caller gets a dict of its own
    once = WindowDataset(manifest, "val", use_pose=True, load_frames=False)
    first = once.plain_item(0)
    first["visual"] = torch.zeros(1)  # as CachedFeatureDataset adds its features
    again = once.plain_item(0)
    assert "visual" not in again and again["pose"] is first["pose"] and torch.equal(again["pose"], sample["pose"])
    assert train.plain_item(0)["pose"] is not train.plain_item(0)["pose"]  # frames loaded: computed each time
    assert once._plain and not pickle.loads(pickle.dumps(once))._plain  # not copied into loader workers
