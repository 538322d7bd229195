"""Per-frame macro-F1 on held-out videos: feature sets, the box-motion stream and models side by side.

Data, built like a lab's: long generated videos with per-frame labels, every video with its own animal
(size, colours), floor and lighting; the training videos (split by video into train/val) and the held-out
test videos come from different seeds, so no test animal, floor or light was seen in training. Preprocessing
uses the committed tiny YOLO-pose, as a lab would use its own detector. Each variant is trained with the
project's defaults plus its own flags, then evaluated with benchmark_pipeline.py on the test videos
(per-frame macro-F1 over every behaviour, per-class F1). With several --seeds each variant is trained once per
seed (runs/<variant>_s<seed>) and the median macro-F1 over seeds is printed: one training run moves by several
hundredths with its seed alone.

With --pose_files the same generator writes what a DeepLabCut or SLEAP user has instead of videos: each
recording's keypoints with 1.5 px of tracker noise and 2% of points dropped to a low likelihood, as DeepLabCut
CSVs without video, prepared with --detector pose_file (pose-only and gbt variants only).

Usage:
    YOLO_OFFLINE=1 python bench/bench_accuracy.py --work /tmp/acc --output bench/results_accuracy.json
    YOLO_OFFLINE=1 python bench/bench_accuracy.py --work /tmp/acc --variants pose_body_motion pose_crop
    python bench/bench_accuracy.py --work /tmp/acc --variants pose_body_motion --seeds 0 1 2 --train_flags --lr 1e-3
    python bench/bench_accuracy.py --work /tmp/acc_pose --pose_files --variants gbt_body_motion pose_body_motion
The prepared data in --work is reused when it exists (delete the folder to regenerate).
"""
import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import benchmark_pipeline  # noqa: E402
import prepare_sequences_from_yolo as prepare  # noqa: E402
from training.engine import train, training_config  # noqa: E402
from utils.synthetic import FPS, make_long_video_dataset, make_pose_file_dataset  # noqa: E402

POSE = ["--backbone", "none", "--use_pose"]
GBT = ["--classifier", "gbt", "--backbone", "none"]
MSTCN = ["--classifier", "mstcn", "--use_pose"]
VARIANTS = {  # name: training flags on top of the defaults
    "gbt_body_motion": GBT + ["--use_pose"],
    "gbt_body": GBT + ["--use_pose", "--no-use_box_motion"],
    "gbt_crop_motion": GBT + ["--use_pose", "--pose_features", "crop"],
    "gbt_speeds_motion": GBT + ["--use_pose", "--pose_features", "speeds"],  # no posture: for movement behaviours
    "gbt_motion": GBT + ["--no-use_pose"],  # box motion alone: what a detect-only YOLO gives
    "pose_body_motion": POSE,
    "pose_body": POSE + ["--no-use_box_motion"],
    "pose_crop_motion": POSE + ["--pose_features", "crop"],
    "pose_crop": POSE + ["--pose_features", "crop", "--no-use_box_motion"],  # the features before version 2
    "rgb_motion": ["--backbone", "mobilenet_v3_small", "--no_pretrained_backbone", "--train_backbone", "--no-feature_cache"],
    "rgb": ["--backbone", "mobilenet_v3_small", "--no_pretrained_backbone", "--train_backbone", "--no-feature_cache",
            "--no-use_box_motion"],
    "rgb_pose_body_motion": ["--backbone", "mobilenet_v3_small", "--no_pretrained_backbone", "--train_backbone",
                             "--no-feature_cache", "--use_pose"],
    "mstcn_pose_motion": MSTCN,
    # frame features from the backbone the rgb variant trained with seed 0 (run it first)
    "mstcn_frames_rgb": MSTCN + ["--use_frame_features", "--backbone", "mobilenet_v3_small", "--backbone_weights",
                                 "{work}/runs/rgb_s0/best_model_macro_f1.pt"],
    "mstcn_frames_rgb_pose": MSTCN + ["--use_frame_features", "--backbone", "mobilenet_v3_small", "--backbone_weights",
                                      "{work}/runs/rgb_pose_body_motion_s0/best_model_macro_f1.pt"],
    # a random frozen resnet18 (a random mobilenet_v3_small's features all but vanish)
    "mstcn_frames_random": MSTCN + ["--use_frame_features", "--backbone", "resnet18", "--no_pretrained_backbone"],
}


def make_data(work: Path, args) -> tuple:
    """(train manifest, folder of held-out labelled test videos); reused when already there."""
    manifest, test_dir = work / f"prepared_s{args.stride}" / "sequence_manifest.json", work / "test_videos"
    if manifest.is_file() and test_dir.is_dir():
        return manifest, test_dir
    if not test_dir.is_dir() and args.pose_files:
        make_pose_file_dataset(work / "train_videos", args.train_videos, args.num_frames, seed=100)
        make_pose_file_dataset(test_dir, args.test_videos, args.num_frames, seed=200)
    elif not test_dir.is_dir():
        make_long_video_dataset(work / "train_videos", args.train_videos, args.num_frames, seed=100, truth=False)
        make_long_video_dataset(test_dir, args.test_videos, args.num_frames, seed=200, truth=False)
    detector = (["--detector", "pose_file", "--pose_fps", str(FPS)] if args.pose_files else
                ["--yolo_weights", str(args.yolo_weights), "--yolo_imgsz", "320"])
    prepare.main(prepare.get_args_parser().parse_args([
        "--dataset_root", str(work / "train_videos"), "--output_root", str(manifest.parent), *detector,
        "--device", "cpu", "--crop_size", str(args.crop_size), "--window_size", str(args.window_size),
        "--window_stride", str(args.stride), "--split_strategy", "video",
        "--train_ratio", "0.75", "--val_ratio", "0.25", "--test_ratio", "0"]))
    return manifest, test_dir


def run_variant(name: str, seed: int, run: str, manifest: Path, test_dir: Path, work: Path, args) -> dict:
    """Train variant `name` with `seed` as runs/<run>, then score it on the held-out videos."""
    start = time.perf_counter()
    argv = ["--manifest_path", str(manifest), "--output_dir", str(work / "runs"), "--run_name", run,
            "--device", "cpu", "--num_workers", "0", "--seed", str(seed),
            *[flag.format(work=work, seed=seed) for flag in VARIANTS[name]], *args.train_flags]
    train(training_config(*argv))
    train_seconds = time.perf_counter() - start
    out = work / "eval" / run
    benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
        "--model_path", str(work / "runs" / run / "best_model_macro_f1.pt"), "--input_dir", str(test_dir),
        "--output_root", str(out), "--device", "cpu"]))
    scores = json.loads((out / "eval_results.json").read_text())["scores"]
    return {"macro_f1": round(scores["macro_f1"], 4), "train_seconds": round(train_seconds, 1),
            "per_class_f1": {c: round(s["f1"], 3) for c, s in scores["per_class"].items()},
            "segment_macro_f1": round(scores["segment"]["macro_f1"], 4)}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for data, runs and evaluations (reused)")
    parser.add_argument("--variants", nargs="+", default=["pose_body_motion", "pose_body", "pose_crop_motion",
                                                          "pose_crop"], choices=sorted(VARIANTS))
    parser.add_argument("--train_videos", type=int, default=8)
    parser.add_argument("--test_videos", type=int, default=4)
    parser.add_argument("--num_frames", type=int, default=900)
    parser.add_argument("--crop_size", type=int, default=96)
    parser.add_argument("--window_size", type=int, default=30)
    parser.add_argument("--stride", type=int, default=5, help="training window stride (inference: its default)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="training seeds: each variant is trained once per seed, and the median is reported")
    parser.add_argument("--yolo_weights", default=str(ROOT / "tests" / "fixtures" / "tiny_yolo_pose.pt"))
    parser.add_argument("--pose_files", action="store_true",
                        help="generate DeepLabCut pose files without video instead of videos (module docstring)")
    parser.add_argument("--train_flags", nargs=argparse.REMAINDER, default=[],
                        help="extra training flags for every variant (last on the line)")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def main(args) -> dict:
    logging.basicConfig(level=logging.WARNING)
    work = Path(args.work)
    manifest, test_dir = make_data(work, args)
    results = {}
    for name in args.variants:
        for seed in args.seeds:
            key = name if len(args.seeds) == 1 else f"{name}_s{seed}"
            results[key] = run_variant(name, seed, f"{name}_s{seed}", manifest, test_dir, work, args)
            print(f"{key:24s} macro-F1 {results[key]['macro_f1']:.3f}  per class {results[key]['per_class_f1']}  "
                  f"segment {results[key]['segment_macro_f1']:.3f}  train {results[key]['train_seconds']:.0f} s",
                  flush=True)
        if len(args.seeds) > 1:
            runs = [results[f"{name}_s{seed}"] for seed in args.seeds]
            results[name] = {k: statistics.median(r[k] for r in runs)
                             for k in ("macro_f1", "segment_macro_f1", "train_seconds")}
            print(f"{name:24s} median over seeds {args.seeds}: macro-F1 {results[name]['macro_f1']:.3f}  "
                  f"segment {results[name]['segment_macro_f1']:.3f}  train {results[name]['train_seconds']:.0f} s",
                  flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps({"args": {k: v for k, v in vars(args).items()}, "results": results},
                                                indent=2))
    return results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
