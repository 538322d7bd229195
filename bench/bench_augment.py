"""Clip augmentation speed, per clip: ClipAugment (one affine matrix for frames and keypoints, cv2 on uint8),
torchvision.transforms.v2 on the whole [T,3,S,S] video with its KeyPoints (the approach it replaced), and a
per-frame PIL loop (same flip, affine and colour jitter frame by frame). Medians of --repeats runs; the
ratios are computed within each run.

Usage:
    python bench/bench_augment.py --crop_size 224 --window_size 30 --repeats 5
"""
import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from data import AugmentConfig, ClipAugment  # noqa: E402


def pil_loop(frames_np, keypoints, size):
    """The per-frame way: every frame converted to PIL and transformed on its own; keypoints by hand."""
    angle, scale, shift = 10.0, 1.05, (4, -3)
    out = []
    for frame in frames_np:
        img = Image.fromarray(frame).transpose(Image.FLIP_LEFT_RIGHT)
        img = TF.affine(img, angle=angle, translate=list(shift), scale=scale, shear=[0.0])
        img = TF.adjust_brightness(TF.adjust_contrast(TF.adjust_saturation(img, 1.1), 0.9), 1.1)
        out.append(TF.pil_to_tensor(img))
    theta = np.deg2rad(angle)
    kp = keypoints.copy()
    kp[..., 0] = size - kp[..., 0]
    c = size / 2
    x, y = kp[..., 0] - c, kp[..., 1] - c
    kp[..., 0] = scale * (np.cos(theta) * x - np.sin(theta) * y) + c + shift[0]
    kp[..., 1] = scale * (np.sin(theta) * x + np.cos(theta) * y) + c + shift[1]
    return torch.stack(out), kp


def v2_clip(frames, keypoints, size):
    """transforms.v2: the video and its keypoints through one flip, affine and colour jitter draw."""
    video = tv_tensors.Video(frames)
    kp = tv_tensors.KeyPoints(torch.as_tensor(keypoints[..., :2] - 0.5), canvas_size=(size, size))
    video, kp = v2.functional.horizontal_flip(video), v2.functional.horizontal_flip(kp)
    video, kp = v2.RandomAffine(15, (0.05, 0.05), (0.9, 1.1))(video, kp)
    return v2.ColorJitter(0.2, 0.2, 0.1)(video), kp


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Benchmark clip augmentation.", add_help=add_help)
    parser.add_argument("--crop_size", type=int, default=224)
    parser.add_argument("--window_size", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clips", type=int, default=10, help="clips per timing")
    return parser


def main(args) -> dict:
    torch.set_num_threads(1)  # one data-loader worker's view
    rng = np.random.default_rng(0)
    frames_np = rng.integers(0, 255, (args.window_size, args.crop_size, args.crop_size, 3), dtype=np.uint8)
    frames = torch.from_numpy(frames_np).permute(0, 3, 1, 2).contiguous()
    keypoints = rng.uniform(10, args.crop_size - 10, (args.window_size, 6, 3)).astype(np.float32)
    augment = ClipAugment(AugmentConfig(hflip_prob=1.0, vflip_prob=0.0, blur_prob=0.0, temporal_jitter=0))
    runs = []
    for r in range(args.repeats):
        start = time.perf_counter()
        for i in range(args.clips):
            augment(frames, keypoints, random.Random(i))
        v2_s = (time.perf_counter() - start) / args.clips
        start = time.perf_counter()
        for _ in range(args.clips):
            v2_clip(frames, keypoints, args.crop_size)
        tv2_s = (time.perf_counter() - start) / args.clips
        start = time.perf_counter()
        for _ in range(args.clips):
            pil_loop(frames_np, keypoints, args.crop_size)
        pil_s = (time.perf_counter() - start) / args.clips
        runs.append({"clip_augment_ms": 1000 * v2_s, "transforms_v2_ms": 1000 * tv2_s, "pil_loop_ms": 1000 * pil_s,
                     "speedup_vs_v2": tv2_s / v2_s, "speedup_vs_pil_loop": pil_s / v2_s})
    report = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    report.update(crop_size=args.crop_size, window_size=args.window_size, repeats=args.repeats)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
