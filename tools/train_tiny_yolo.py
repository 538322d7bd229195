"""Train the tiny YOLO-pose test fixture from scratch on frames of the synthetic generator.

Tests and the demo use the result (tests/fixtures/tiny_yolo_pose.pt), so nothing is downloaded. Frames come
from many short generated videos, each with its own floor and animal look; a few long videos would overfit to
their look. The script ends by reporting box mAP50 and keypoint pixel error on held-out generated videos
(pose mAP alone hides keypoints collapsed onto the box centre).

The defaults (96 videos x 16 frames, 40 epochs at imgsz 320: 88 minutes on the 2-core CPU) made the committed
fixture: a median keypoint error of 3.70 px on 12 held-out videos. The earlier, smaller recipe
`--num_videos 48 --frames_per_video 12 --epochs 35` gave 4.83 px on the same videos.

Usage:
    YOLO_OFFLINE=1 python tools/train_tiny_yolo.py --output tests/fixtures/tiny_yolo_pose.pt
    YOLO_OFFLINE=1 python tools/train_tiny_yolo.py --init tests/fixtures/tiny_yolo_pose.pt --epochs 20 ...
    YOLO_OFFLINE=1 python tools/train_tiny_yolo.py --evaluate_only --output tests/fixtures/tiny_yolo_pose.pt
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from utils.synthetic import FLIP_IDX, FRAME_H, FRAME_W, KEYPOINT_NAMES, render_video, sample_label_sequence  # noqa: E402


def write_yolo_split(root: Path, split: str, seeds, frames_per_video: int, video_len: int) -> None:
    """Images and YOLO-pose labels (class cx cy w h, then x y visibility per keypoint, all normalised)."""
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        labels = sample_label_sequence(video_len, rng, min_bout=8, max_bout=25)
        video = render_video(labels, seed=seed)
        for i in rng.choice(video_len, size=frames_per_video, replace=False):
            name = f"s{seed}_f{i:04d}"
            cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), video.frames[i], [cv2.IMWRITE_JPEG_QUALITY, 92])
            x1, y1, x2, y2 = np.clip(video.bboxes[i], 0, [FRAME_W, FRAME_H, FRAME_W, FRAME_H])
            box = [(x1 + x2) / 2 / FRAME_W, (y1 + y2) / 2 / FRAME_H, (x2 - x1) / FRAME_W, (y2 - y1) / FRAME_H]
            kps = [v for x, y in video.keypoints[i] for v in (x / FRAME_W, y / FRAME_H, 2)]
            (root / "labels" / split / f"{name}.txt").write_text(" ".join(f"{v:.6f}" for v in [0, *box, *kps]) + "\n")


def write_dataset(root: Path, num_videos: int, frames_per_video: int, video_len: int, seed: int) -> Path:
    train_seeds = range(seed, seed + num_videos)
    val_seeds = range(seed + 10_000, seed + 10_000 + max(4, num_videos // 6))
    write_yolo_split(root, "train", train_seeds, frames_per_video, video_len)
    write_yolo_split(root, "val", val_seeds, frames_per_video, video_len)
    data_yaml = root / "data.yaml"
    data_yaml.write_text(json.dumps({
        "path": str(root), "train": "images/train", "val": "images/val", "names": {0: "animal"},
        "kpt_shape": [len(KEYPOINT_NAMES), 3], "flip_idx": list(FLIP_IDX), "kpt_names": {0: list(KEYPOINT_NAMES)},
    }))
    return data_yaml


def train(data_yaml: Path, args, run_dir: Path) -> Path:
    from ultralytics import YOLO
    # built from the packaged architecture file (no download), or continued from local weights
    model = YOLO(args.init or "yolov8n-pose.yaml")
    model.train(data=str(data_yaml), imgsz=args.imgsz, epochs=args.epochs, batch=args.batch, device="cpu",
                workers=2, project=str(run_dir), name="train", pretrained=bool(args.init), amp=False, plots=False,
                seed=args.seed, deterministic=False, patience=args.epochs, close_mosaic=max(1, args.epochs // 5),
                fliplr=0.5, degrees=15.0, hsv_v=0.5, verbose=False,
                # continuing from trained weights: no warm-up (its high bias rate undoes them), a small rate
                **(dict(optimizer="AdamW", lr0=args.finetune_lr, warmup_epochs=0) if args.init else {}))
    return run_dir / "train" / "weights" / "best.pt"


def evaluate(weights: Path, num_videos: int, imgsz: int, seed: int) -> dict:
    """Box mAP50 (Ultralytics val) and keypoint pixel error on videos never seen in training."""
    from ultralytics import YOLO
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_yolo_split(root, "val", range(seed + 50_000, seed + 50_000 + num_videos), 10, 120)
        (root / "images" / "train").mkdir(parents=True)
        data_yaml = root / "data.yaml"
        data_yaml.write_text(json.dumps({"path": str(root), "train": "images/val", "val": "images/val",
                                         "names": {0: "animal"}, "kpt_shape": [len(KEYPOINT_NAMES), 3],
                                         "flip_idx": list(FLIP_IDX)}))
        model = YOLO(str(weights))
        metrics = model.val(data=str(data_yaml), imgsz=imgsz, batch=16, device="cpu", plots=False, verbose=False,
                            project=str(root / "runs"))
        errors, missed = [], 0
        for label_file in sorted((root / "labels" / "val").glob("*.txt")):
            truth = np.array(label_file.read_text().split(), np.float32)[5:].reshape(-1, 3)[:, :2]
            truth *= [FRAME_W, FRAME_H]
            image = root / "images" / "val" / f"{label_file.stem}.jpg"
            result = model.predict(str(image), imgsz=imgsz, conf=0.25, max_det=1, verbose=False, device="cpu")[0]
            if len(result.boxes) == 0:
                missed += 1
                continue
            errors.append(np.linalg.norm(result.keypoints.xy[0].numpy() - truth, axis=1))
    errors = np.concatenate(errors) if errors else np.array([np.inf])
    return {"box_map50": float(metrics.box.map50), "pose_map50": float(metrics.pose.map50),
            "frames_missed": missed, "keypoint_error_px_median": float(np.median(errors)),
            "keypoint_error_px_mean": float(np.mean(errors)), "keypoints_within_5px": float(np.mean(errors < 5))}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train the tiny YOLO-pose fixture on synthetic frames.",
                                     add_help=add_help)
    parser.add_argument("--output", default="tests/fixtures/tiny_yolo_pose.pt", help="where to save best weights")
    parser.add_argument("--num_videos", type=int, default=96, help="short generated videos to sample frames from")
    parser.add_argument("--frames_per_video", type=int, default=16, help="frames sampled from each video")
    parser.add_argument("--video_len", type=int, default=120, help="frames per generated video")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs")
    parser.add_argument("--imgsz", type=int, default=320, help="training and evaluation image size")
    parser.add_argument("--batch", type=int, default=16, help="batch size")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data and of training")
    parser.add_argument("--eval_videos", type=int, default=12, help="held-out videos for the final report")
    parser.add_argument("--init", default=None,
                        help="continue training from these local YOLO-pose weights instead of from scratch")
    parser.add_argument("--finetune_lr", type=float, default=2e-4, help="AdamW learning rate with --init")
    parser.add_argument("--evaluate_only", action="store_true", help="skip training; evaluate --output")
    parser.add_argument("--work_dir", default=None, help="keep the generated dataset and runs here")
    return parser


def main(args) -> dict:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    output = Path(args.output)
    if not args.evaluate_only:
        work = Path(args.work_dir or tempfile.mkdtemp(prefix="tiny_yolo_"))
        data_yaml = write_dataset(work / "data", args.num_videos, args.frames_per_video, args.video_len, args.seed)
        best = train(data_yaml, args, work / "runs")
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(best, output)
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    report = evaluate(output, args.eval_videos, args.imgsz, args.seed)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
