"""Preprocessing speed: frames/s of decoding, detection (batched vs one frame per call), crop, crop store write
(each frame once, utils.data.crop_store), and end to end, on a generated dataset. Each figure is the median of --repeats runs.

Usage:
    YOLO_OFFLINE=1 python bench/bench_preprocess.py --repeats 3 --yolo_imgsz 320 --output bench/results_preprocess.json
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import prepare_sequences_from_yolo as prepare  # noqa: E402
from cropping import crop_frame, square_crop_box  # noqa: E402
from detectors import build_detector  # noqa: E402
from utils.data.crop_store import CropStoreWriter  # noqa: E402
from utils.data.video_io import iter_frame_batches  # noqa: E402
from utils.device import set_cpu_threads  # noqa: E402
from utils.synthetic import make_class_folder_dataset  # noqa: E402


def timed(fn, frames: int) -> float:
    """Frames per second of one call of fn."""
    start = time.perf_counter()
    fn()
    return frames / (time.perf_counter() - start)


def bench_stages(videos, detector, args) -> dict:
    frames = [f for v in videos for _, batch in iter_frame_batches(v, 64) for f in batch]
    n = len(frames)
    detections = detector.detect(frames[:args.yolo_batch])  # warm-up (model fuse, thread setup)
    results = {"decode": timed(lambda: [b for v in videos for b in iter_frame_batches(v, args.yolo_batch)], n)}
    results["detect_batched"] = timed(
        lambda: [detector.detect(frames[i:i + args.yolo_batch]) for i in range(0, n, args.yolo_batch)], n)
    sample = frames[: max(args.yolo_batch * 2, 32)]
    results["detect_one_per_call"] = timed(lambda: [detector.detect([f]) for f in sample], len(sample))
    detections = [d for i in range(0, n, args.yolo_batch) for d in detector.detect(frames[i:i + args.yolo_batch])]
    boxes = [d.box if d.box is not None else np.array([0, 0, 50, 50], np.float32) for d in detections]

    def crop_all():
        return [cv2.cvtColor(crop_frame(f, square_crop_box(b, args.pad_ratio), args.crop_size), cv2.COLOR_BGR2RGB)
                for f, b in zip(frames, boxes)]
    results["crop"] = timed(crop_all, n)
    crops = np.stack(crop_all())
    with tempfile.TemporaryDirectory() as tmp:
        def write_all():  # each crop once, as preprocessing stores them
            store = CropStoreWriter(Path(tmp) / "crops.h5", args.crop_size)
            for index, crop in enumerate(crops):
                store.put(index, crop)
            store.close()
        results["write_crop_store"] = timed(write_all, n)
    return results


def bench_end_to_end(data: Path, args, total_frames: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        prep_args = prepare.get_args_parser().parse_args([
            "--dataset_root", str(data), "--output_root", tmp, "--yolo_weights", str(args.yolo_weights),
            "--yolo_imgsz", str(args.yolo_imgsz), "--device", "cpu", "--crop_size", str(args.crop_size),
            "--window_size", str(args.window_size), "--window_stride", str(args.window_size // 2),
            "--yolo_batch", str(args.yolo_batch)])
        return timed(lambda: prepare.main(prep_args), total_frames)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Benchmark preprocessing stages.", add_help=add_help)
    parser.add_argument("--yolo_weights", default=str(ROOT / "tests" / "fixtures" / "tiny_yolo_pose.pt"))
    parser.add_argument("--yolo_imgsz", type=int, default=320)
    parser.add_argument("--yolo_batch", type=int, default=16)
    parser.add_argument("--crop_size", type=int, default=224)
    parser.add_argument("--pad_ratio", type=float, default=0.2)
    parser.add_argument("--window_size", type=int, default=30)
    parser.add_argument("--videos_per_class", type=int, default=2)
    parser.add_argument("--num_frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None, help="write the medians as JSON here")
    return parser


def main(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        videos = make_class_folder_dataset(data, args.videos_per_class, args.num_frames, seed=123, truth=False)
        total = len(videos) * args.num_frames
        cfg = SimpleNamespace(yolo_conf=0.25, yolo_iou=0.45, yolo_imgsz=args.yolo_imgsz, device="cpu",
                              num_threads=0, yolo_weights=args.yolo_weights, yolo_task="auto")
        detector = build_detector("yolo", cfg)
        set_cpu_threads(0)
        runs = [bench_stages(videos, detector, args) for _ in range(args.repeats)]
        medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        medians["end_to_end"] = statistics.median(bench_end_to_end(data, args, total) for _ in range(args.repeats))
    medians = {k: round(v, 1) for k, v in medians.items()}
    report = {"frames": total, "repeats": args.repeats, "yolo_imgsz": args.yolo_imgsz, "crop_size": args.crop_size,
              "window_size": args.window_size, "frames_per_second_median": medians}
    print(f"{'stage':<22}{'frames/s (median of ' + str(args.repeats) + ')':>28}")
    for k, v in medians.items():
        print(f"{k:<22}{v:>28.1f}")
    print(f"batched detection is {medians['detect_batched'] / medians['detect_one_per_call']:.2f}x one frame per call")
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
