"""Inference speed and memory on generated 640x480 videos.

speed: for each yolo_imgsz x crop_size, end-to-end frames/s of infer_behavior_lstm.main (model and detector
loading, decoding, detection, crop, backbone, head, all outputs) next to the compute floor: the detector and
the backbone forward alone, in the same batches, on frames already decoded and cropped. Overhead is
1 - floor/end-to-end time, computed within each repeat; the median over repeats is quoted. It is also given
without the per-video fixed costs (loading the model and detector, writing the outputs), which long videos
amortise.

memory: infer_behavior_lstm.py as a child process on videos of each --memory_frames length; its resident
memory is sampled at every progress line (so growth with the frame count is visible) and its peak RSS is
read from the kernel (wait4) when it exits.

writer: a folder of videos through batch_process_videos.py with outputs written in the background and in turn.

reuse: one video classified twice with --reuse_detections (utils/detection/detection_cache.py): the first run detects
and keeps the detections, the second replays them; wall seconds of each and their ratio, per repeat.

The checkpoints are real ones: a small generated dataset is prepared at each (yolo_imgsz, crop_size) and a
mobilenet_v3_small + LSTM model is trained for one epoch (random init: weights do not change the speed).

Usage:
    YOLO_OFFLINE=1 python bench/bench_infer.py speed --repeats 3 --output bench/results_infer_speed.json
    YOLO_OFFLINE=1 python bench/bench_infer.py memory --memory_frames 5000 50000 --output bench/results_infer_memory.json
    YOLO_OFFLINE=1 python bench/bench_infer.py reuse --yolo_imgsz 416 --crop_size 128 --repeats 3
    YOLO_OFFLINE=1 python bench/bench_infer.py writer --yolo_imgsz 416 --crop_size 128 --num_frames 600 --repeats 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import infer_behavior_lstm as infer  # noqa: E402
import prepare_sequences_from_yolo as prepare  # noqa: E402
from training.engine import train, training_config  # noqa: E402
from cropping import crop_detection  # noqa: E402
from data import normalise_frames  # noqa: E402
from predictor import Predictor  # noqa: E402
from utils.schema import InferenceConfig  # noqa: E402
from utils.synthetic import make_class_folder_dataset, make_long_video_dataset  # noqa: E402
from utils.data.video_io import iter_frame_batches  # noqa: E402


def make_checkpoint(work: Path, yolo_imgsz: int, crop_size: int, args) -> Path:
    """Prepare a small generated dataset at these settings and train one epoch; returns the checkpoint."""
    clips = work / "clips"
    if not clips.is_dir():
        make_class_folder_dataset(clips, videos_per_class=1, num_frames=60, seed=5, truth=False,
                                  behaviors=("walk", "groom", "rear"))
    tag = f"imgsz{yolo_imgsz}_crop{crop_size}"
    prepare.main(prepare.get_args_parser().parse_args([
        "--dataset_root", str(clips), "--output_root", str(work / f"prep_{tag}"), "--yolo_weights",
        str(args.yolo_weights), "--yolo_imgsz", str(yolo_imgsz), "--crop_size", str(crop_size), "--device", "cpu",
        "--window_size", str(args.window_size), "--window_stride", str(args.window_stride), "--val_ratio", "0",
        "--train_ratio", "1", "--test_ratio", "0"]))
    train(training_config(*[
        "--manifest_path", str(work / f"prep_{tag}" / "sequence_manifest.json"), "--output_dir", str(work / "runs"),
        "--run_name", tag, "--backbone", args.backbone, "--no_pretrained_backbone", "--epochs", "1",
        "--device", "cpu", "--num_workers", "0"]))
    return work / "runs" / tag / "best_model.pt"


def infer_args(checkpoint: Path, video: Path, out: Path, backend: str = "torch", every: int = 1,
               reuse: bool = False) -> argparse.Namespace:
    """reuse False: the detector is timed, never replayed from an earlier run (utils.detection.detection_cache)."""
    return infer.get_args_parser().parse_args([
        "--model_path", str(checkpoint), "--video_path", str(video), "--output_dir", str(out), "--device", "cpu",
        "--detector_backend", backend, "--detect_every", str(every),
        "--reuse_detections" if reuse else "--no-reuse_detections"])


def end_to_end_seconds(checkpoint: Path, video: Path, out: Path, backend: str = "torch", every: int = 1,
                       reuse: bool = False) -> tuple:
    """Wall seconds of one whole inference run (loading included), the run's own stage seconds, its frame count
    and the detector backend it ended up using."""
    start = time.perf_counter()
    result = infer.main(infer_args(checkpoint, video, out, backend, every, reuse))
    metadata = result["sheets"]["metadata"].set_index("key")["value"]
    return time.perf_counter() - start, dict(result["seconds"]), result["frames"], metadata["detector_backend"]


@torch.no_grad()
def floor_seconds(checkpoint: Path, frames: list, backend: str = "torch", every: int = 1) -> dict:
    """Detector (on the frames it would see: every `every`-th) and backbone forward alone, with the predictor's
    own settings, detector backend and batches, on decoded frames (after a warm-up)."""
    predictor = Predictor.from_checkpoint(checkpoint, InferenceConfig(device="cpu", detector_backend=backend))
    settings, detector = predictor.settings, predictor.detector
    size = settings.yolo_batch
    seen = frames[::every]
    batches = [frames[i:i + size] for i in range(0, len(frames), size)]
    detector.detect(batches[0])  # warm-up (and the backend's agreement check)
    start = time.perf_counter()
    for i in range(0, len(seen), size):
        detector.detect(seen[i:i + size])
    detect = time.perf_counter() - start
    detections = [detector.detect(b) for b in batches]  # every frame, only for the crops below
    crops = [[crop_detection(f, d, settings.crop_size, settings.pad_ratio)[0] for f, d in zip(b, ds)]
             for b, ds in zip(batches, detections)]
    tensors = [normalise_frames(torch.from_numpy(np.stack([c for c in cs if c is not None])).permute(0, 3, 1, 2))
               for cs in crops if any(c is not None for c in cs)]  # as inference: missed frames are not encoded
    predictor.model.encode_frames(tensors[0][None])  # warm-up
    start = time.perf_counter()
    for x in tensors:
        predictor.model.encode_frames(x[None])
    return {"detect": detect, "backbone": time.perf_counter() - start}


def decode_all(video: Path) -> list:
    return [f for _, batch in iter_frame_batches(video, 64) for f in batch]


def bench_speed(args) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = make_long_video_dataset(work / "video", num_videos=1, num_frames=args.num_frames, seed=17,
                                        truth=False)[0]
        frames = decode_all(video)
        for imgsz in args.yolo_imgsz:
            for crop in args.crop_size:
                checkpoint = make_checkpoint(work, imgsz, crop, args)
                settings = [(b, e) for b in args.detector_backends for e in args.detect_every]
                runs = {s: [] for s in settings}
                for repeat in range(args.repeats):  # settings alternate within each repeat: drift hits all alike
                    for backend, every in settings:
                        out = work / f"out_{imgsz}_{crop}_{backend}_{every}_{repeat}"
                        total, stages, n, used = end_to_end_seconds(checkpoint, video, out, backend, every)
                        floor = floor_seconds(checkpoint, frames, backend, every)
                        runs[(backend, every)].append({
                            "total": total, "floor": floor["detect"] + floor["backbone"], **floor,
                            **{f"stage_{k}": v for k, v in stages.items()}, "frames": n, "backend_used": used})
                for (backend, every), setting_runs in runs.items():
                    rows.append({**summarise(imgsz, crop, setting_runs), "detector_backend": backend,
                                 "backend_used": setting_runs[0]["backend_used"], "detect_every": every,
                                 "speedup_vs_first_setting": round(statistics.median(
                                     first["total"] / r["total"] for first, r in zip(runs[settings[0]], setting_runs)), 2)})
                    print_row(rows[-1])  # at once: a long run that fails later keeps what it measured
    return {"frames": args.num_frames, "repeats": args.repeats, "window_size": args.window_size,
            "window_stride": args.window_stride, "backbone": args.backbone, "results": rows}


def summarise(imgsz: int, crop: int, runs: list) -> dict:
    n = runs[0]["frames"]
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    stage_keys = sorted(k for k in runs[0] if k.startswith("stage_"))
    return {"yolo_imgsz": imgsz, "crop_size": crop,
            "end_to_end_fps": round(n / med("total"), 2), "floor_fps": round(n / med("floor"), 2),
            "detector_fps": round(n / med("detect"), 1), "backbone_fps": round(n / med("backbone"), 1),
            "overhead_percent": round(100 * statistics.median(1 - r["floor"] / r["total"] for r in runs), 1),
            "overhead_without_load_and_write_percent": round(100 * statistics.median(
                1 - r["floor"] / (r["total"] - r["stage_load"] - r["stage_write"]) for r in runs), 1),
            "stage_seconds": {k[len("stage_"):]: round(med(k), 2) for k in stage_keys},
            "total_seconds": round(med("total"), 2)}


def print_speed(report: dict) -> None:
    print(f"{report['frames']} frames 640x480, {report['backbone']}, window {report['window_size']} / stride "
          f"{report['window_stride']}, medians of {report['repeats']}")
    print(f"{'imgsz':>6}{'crop':>6}{'backend':>15}{'every':>7}{'end-to-end f/s':>16}{'floor f/s':>11}{'detector f/s':>14}{'backbone f/s':>14}"
          f"{'overhead':>10}{'without load+write':>20}")
    for r in report["results"]:
        print_row(r)


def print_row(r: dict) -> None:
    print(f"{r['yolo_imgsz']:>6}{r['crop_size']:>6}{r['backend_used']:>15}{r['detect_every']:>7}"
          f"{r['end_to_end_fps']:>16.2f}{r['floor_fps']:>11.2f}"
          f"{r['detector_fps']:>14.1f}{r['backbone_fps']:>14.1f}{r['overhead_percent']:>9.1f}%"
          f"{r['overhead_without_load_and_write_percent']:>19.1f}%")
    print(f"      {r['speedup_vs_first_setting']}x the first setting (median of per-repeat ratios); stage seconds: "
          + ", ".join(f"{k} {v}" for k, v in r["stage_seconds"].items()))


def rss_trace(command: list) -> dict:
    """Run a child; sample its VmRSS at each PROGRESS line; its exact peak RSS comes from wait4."""
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT,
                            env={**os.environ, "YOLO_OFFLINE": "1"})
    samples, tail = [], []
    for line in proc.stderr:
        tail = (tail + [line.rstrip()])[-5:]
        if line.startswith("PROGRESS frames:"):
            samples.append((int(line.split()[2].split("/")[0]), vm_rss_mb(proc.pid)))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"inference failed ({proc.returncode}): " + " | ".join(tail))
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "samples": samples}


def vm_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except FileNotFoundError:
        pass
    return float("nan")


def bench_memory(args) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoint = Path(args.checkpoint) if args.checkpoint else make_checkpoint(
            work, args.yolo_imgsz[0], args.crop_size[0], args)
        for n in args.memory_frames:
            video = Path(args.video_dir) / f"frames_{n}" / "session_00.mp4" if args.video_dir else None
            if video is None or not video.is_file():
                root = (Path(args.video_dir) if args.video_dir else work) / f"frames_{n}"
                video = make_long_video_dataset(root, num_videos=1, num_frames=n, seed=7, truth=False)[0]
            start = time.perf_counter()
            trace = rss_trace([sys.executable, str(ROOT / "infer_behavior_lstm.py"), "--model_path", str(checkpoint),
                               "--video_path", str(video), "--output_dir", str(work / f"out_{n}"), "--device", "cpu",
                               "--no-reuse_detections"])
            seconds = time.perf_counter() - start
            samples = trace["samples"]
            rows.append({"frames": n, "peak_rss_mb": trace["peak_rss_mb"], "seconds": round(seconds, 1),
                         "rss_mb_at_10_50_100_percent": [rss_at(samples, n, q) for q in (0.1, 0.5, 1.0)],
                         "samples": samples})
    return {"checkpoint_settings": {"yolo_imgsz": args.yolo_imgsz[0], "crop_size": args.crop_size[0],
                                    "backbone": args.backbone}, "results": rows}


def rss_at(samples: list, total: int, fraction: float) -> float:
    """RSS of the first sample at or past fraction of the frames (the last one for 1.0)."""
    for frames, rss in samples:
        if frames >= fraction * total:
            return rss
    return samples[-1][1] if samples else float("nan")


def print_memory(report: dict) -> None:
    print(f"{'frames':>8}{'peak RSS MB':>13}{'RSS MB at 10% / 50% / 100% of frames':>40}{'seconds':>9}")
    for r in report["results"]:
        print(f"{r['frames']:>8}{r['peak_rss_mb']:>13.1f}{' / '.join(str(v) for v in r['rss_mb_at_10_50_100_percent']):>40}"
              f"{r['seconds']:>9.1f}")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Benchmark inference speed and memory.", add_help=add_help)
    parser.add_argument("check", choices=["speed", "memory", "reuse", "writer"])
    parser.add_argument("--yolo_weights", default=str(ROOT / "tests" / "fixtures" / "tiny_yolo_pose.pt"))
    parser.add_argument("--yolo_imgsz", type=int, nargs="+", default=[416, 640],
                        help="speed: every value; memory: the first")
    parser.add_argument("--crop_size", type=int, nargs="+", default=[128, 224], help="speed: every value; memory: the first")
    parser.add_argument("--backbone", default="mobilenet_v3_small")
    parser.add_argument("--detector_backends", nargs="+", default=["torch", "openvino", "onnx"],
                        help="speed: detector runtimes compared (the first is the reference of the speed-up)")
    parser.add_argument("--detect_every", type=int, nargs="+", default=[1], help="speed: detect_every values")
    parser.add_argument("--window_size", type=int, default=30)
    parser.add_argument("--window_stride", type=int, default=15)
    parser.add_argument("--num_frames", type=int, default=1800, help="speed: frames of the generated video")
    parser.add_argument("--repeats", type=int, default=3, help="speed: runs per setting")
    parser.add_argument("--folder_videos", type=int, default=4, help="writer: videos in the folder")
    parser.add_argument("--memory_frames", type=int, nargs="+", default=[5000, 50000],
                        help="memory: one generated video of each length")
    parser.add_argument("--video_dir", default=None,
                        help="memory: keep (and reuse) the generated videos here, as frames_<N>/session_00.mp4")
    parser.add_argument("--checkpoint", default=None, help="memory: use this checkpoint instead of training one")
    parser.add_argument("--output", default=None, help="write the report as JSON here")
    return parser


def bench_reuse(args) -> dict:
    """The same video classified twice with --reuse_detections: the first run detects (and keeps the detections),
    the second replays them. Per repeat the kept detections are deleted first; medians and per-repeat ratios."""
    from predictor import Predictor
    from utils.detection.detection_cache import cache_file
    from utils.schema import InferenceConfig
    work = Path(tempfile.mkdtemp(prefix="bench_reuse_"))
    checkpoint = make_checkpoint(work, args.yolo_imgsz[0], args.crop_size[0], args)
    video = make_long_video_dataset(work / "video", num_videos=1, num_frames=args.num_frames, seed=7, truth=False)[0]
    predictor = Predictor.from_checkpoint(checkpoint, InferenceConfig(device="cpu"))
    kept = cache_file(video, predictor.detector, predictor.settings)
    runs = []
    for r in range(args.repeats):
        kept.unlink(missing_ok=True)
        first = end_to_end_seconds(checkpoint, video, work / f"first_{r}", reuse=True)
        again = end_to_end_seconds(checkpoint, video, work / f"again_{r}", reuse=True)
        runs.append({"first_s": round(first[0], 2), "again_s": round(again[0], 2),
                     "first_detect_s": round(first[1]["detect"], 2), "again_detect_s": round(again[1]["detect"], 2),
                     "speedup": round(first[0] / again[0], 2)})
    return {"frames": args.num_frames, "yolo_imgsz": args.yolo_imgsz[0], "crop_size": args.crop_size[0],
            "backbone": args.backbone, "runs": runs,
            "median": {k: statistics.median(run[k] for run in runs) for k in runs[0]}}


def bench_writer(args) -> dict:
    """A folder of --folder_videos videos through batch_process_videos.py with the review video, outputs written in
    the background (--write_in_background) and in turn (the default), each first in every other repeat: wall
    seconds of each and their ratio. Beside it, the stage times of one video's run (infer_behavior_lstm.py), where
    the write stage is what the background takes off the loop. Detections are not replayed."""
    import shutil

    import batch_process_videos as batch
    work = Path(tempfile.mkdtemp(prefix="bench_writer_"))
    checkpoint = make_checkpoint(work, args.yolo_imgsz[0], args.crop_size[0], args)
    videos = make_long_video_dataset(work / "videos", num_videos=args.folder_videos, num_frames=args.num_frames,
                                     seed=7, truth=False)
    folder = work / "folder"
    folder.mkdir()
    for video in videos:
        shutil.copy(video, folder / video.name)
    flags = ["--model_path", str(checkpoint), "--input_dir", str(folder), "--device", "cpu", "--detector_backend",
             args.detector_backends[0], "--no-reuse_detections", "--output_review_video"]
    runs = []
    for r in range(args.repeats):
        row = {}
        modes = (("background", ["--write_in_background"]), ("in_turn", ["--no-write_in_background"]))
        for mode, extra in modes if r % 2 == 0 else modes[::-1]:  # each goes first in half the repeats
            start = time.perf_counter()
            batch.main(batch.get_args_parser().parse_args(flags + ["--output_root", str(work / f"{mode}_{r}"), *extra]))
            row[f"{mode}_s"] = round(time.perf_counter() - start, 2)
        row["speedup"] = round(row["in_turn_s"] / row["background_s"], 3)
        one = infer.main(infer.get_args_parser().parse_args(
            ["--model_path", str(checkpoint), "--video_path", str(videos[0]), "--output_dir", str(work / f"one_{r}"),
             "--device", "cpu", "--detector_backend", args.detector_backends[0], "--no-reuse_detections",
             "--output_review_video"]))
        row["one_video_stages_s"] = {k: round(v, 2) for k, v in one["seconds"].items()}
        row["one_video_total_s"] = round(one["total_seconds"], 2)
        print(json.dumps(row), flush=True)
        runs.append(row)
    return {"frames_per_video": args.num_frames, "videos": args.folder_videos, "yolo_imgsz": args.yolo_imgsz[0],
            "crop_size": args.crop_size[0], "detector_backend": args.detector_backends[0], "runs": runs,
            "median": {k: statistics.median(run[k] for run in runs)
                       for k in ("background_s", "in_turn_s", "speedup", "one_video_total_s")}}


def main(args) -> dict:
    checks = {"speed": bench_speed, "memory": bench_memory, "reuse": bench_reuse, "writer": bench_writer}
    report = checks[args.check](args)
    if args.check in ("reuse", "writer"):
        print(json.dumps(report["median"]))
    else:
        (print_speed if args.check == "speed" else print_memory)(report)
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
