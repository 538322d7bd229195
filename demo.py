"""BehaviorScope end to end on generated data, offline: generate, detect and window, train, classify, score.

Usage:
    python3 demo.py                        # minutes on a 2-core CPU (README: measured); writes demo_output/
    python3 demo.py --full                 # more videos, and RGB-only vs Pose+RGB models beside the pose ones
    python3 demo.py --output_dir /tmp/bs_demo --device cuda

Steps (the stages a user runs, called in-process: the training engine directly, the other stages as scripts):
  1. generate labelled videos of a mouse-like animal (utils/synthetic.py): training videos, and held-out test
     videos whose animals, floors and lighting no training video has;
  2. detect, crop and window the training videos with the committed tiny YOLO-pose detector
     (tests/fixtures/tiny_yolo_pose.pt, trained by tools/train_tiny_yolo.py) -> prepared/;
  3. train two small models on keypoint and box-motion features (no pretrained weights needed) -> runs/:
     gradient-boosted trees on window statistics (seconds) and a pose-only LSTM (with training curves);
  4. classify the held-out videos and score them against their known labels (benchmark_pipeline.py) ->
     results/: per video the bouts (.behavior.csv), per-frame table (.frames.csv), workbook with kinematics
     (.metrics.xlsx), ethogram, truth-vs-prediction ethogram and review video; overall eval_report.txt,
     eval_results.json and the confusion matrix;
  5. print the per-frame macro-F1 and the command that opens a result in the dashboard's Review tab.
Nothing is downloaded.
"""
import argparse
import json
import os
import time
from pathlib import Path

import benchmark_pipeline
import prepare_sequences_from_yolo as prepare
from training.engine import train, training_config
from training.recipes import RECIPES
from utils.errors import run_cli
from utils.synthetic import make_long_video_dataset

ROOT = Path(__file__).resolve().parent
TINY_YOLO = ROOT / "tests" / "fixtures" / "tiny_yolo_pose.pt"
MODELS = {name: RECIPES.get(name).flags() for name in ("gbt", "pose_lstm", "rgb_only", "pose_rgb")}  # as the guide
SIZES = {  # (training videos, test videos, frames per video, window stride, RGB epochs)
    "quick": (8, 2, 900, 5, 0),
    "full": (12, 4, 900, 15, 6),
}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="demo_output", help="folder for the data, the model and every output")
    parser.add_argument("--full", action="store_true",
                        help="12 training and 4 test videos, and RGB-only and Pose+RGB models (backbone learnt from "
                             "scratch, 6 epochs) beside the pose models (most of an hour on a 2-core CPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of training (the generated videos are fixed)")
    return parser


def generate(data: Path, size: tuple) -> tuple:
    """(training folder, test folder) of long labelled videos; reused when already generated."""
    train_videos, test_videos, frames = size[:3]
    for folder, count, seed in ((data / "train", train_videos, 100), (data / "test", test_videos, 200)):
        if len(list(folder.glob("*.mp4"))) != count:
            make_long_video_dataset(folder, count, frames, seed=seed, truth=False)
    return data / "train", data / "test"


def preprocess(train_dir: Path, prepared: Path, stride: int, device: str) -> Path:
    prepare.main(prepare.get_args_parser().parse_args([
        "--dataset_root", str(train_dir), "--output_root", str(prepared), "--yolo_weights", str(TINY_YOLO),
        "--yolo_imgsz", "320", "--crop_size", "96", "--window_size", "30", "--window_stride", str(stride),
        "--split_strategy", "video", "--train_ratio", "0.75", "--val_ratio", "0.25", "--test_ratio", "0",
        "--device", device, "--save_frame_crops", "--skip_existing"]))
    return prepared / "sequence_manifest.json"


def train_model(name: str, manifest: Path, runs: Path, args, epochs: int) -> Path:
    schedule = {"epochs": epochs, "patience": max(3, epochs // 2)} if epochs else {}
    train(training_config(*MODELS[name], manifest_path=manifest, output_dir=runs, run_name=name, device=args.device,
                          seed=args.seed, num_workers=0, **schedule))
    return runs / name / "best_model_macro_f1.pt"


def evaluate(model: Path, test_dir: Path, results: Path, device: str) -> dict:
    benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
        "--model_path", str(model), "--input_dir", str(test_dir), "--output_root", str(results),
        "--device", device, "--output_review_video"]))
    return json.loads((results / "eval_results.json").read_text())["scores"]


def main(args):
    os.environ.setdefault("YOLO_OFFLINE", "1")
    start = time.perf_counter()
    out = Path(args.output_dir).resolve()
    size = SIZES["full" if args.full else "quick"]
    models = list(MODELS) if args.full else ["gbt", "pose_lstm"]
    print(f"1/4 generating {size[0]} training and {size[1]} held-out test videos ({size[2]} frames each) in "
          f"{out / 'data'}", flush=True)
    train_dir, test_dir = generate(out / "data", size)
    print("2/4 detecting, cropping and windowing the training videos with the tiny YOLO-pose detector", flush=True)
    manifest = preprocess(train_dir, out / "prepared", size[3], args.device)
    scores = {}
    for name in models:
        print(f"3/4 training {name} ({' '.join(MODELS[name])})", flush=True)
        model = train_model(name, manifest, out / "runs", args, 0 if name == "pose_lstm" else size[4])
        print(f"4/4 classifying the held-out videos with {name} and scoring them against their labels", flush=True)
        scores[name] = evaluate(model, test_dir, out / "results" / name, args.device)
    print_summary(out, scores, test_dir, time.perf_counter() - start)
    return scores


def print_summary(out: Path, scores: dict, test_dir: Path, seconds: float) -> None:
    classes = list(next(iter(scores.values()))["per_class"])
    print(f"\nPer-frame F1 on the held-out videos ({seconds / 60:.1f} min in all):")
    print(f"{'model':<12}{'macro-F1':>10}" + "".join(f"{c:>10}" for c in classes))
    for name, s in scores.items():
        print(f"{name:<12}{s['macro_f1']:>10.3f}" + "".join(f"{s['per_class'][c]['f1']:>10.3f}" for c in classes))
    best = max(scores, key=lambda name: scores[name]["macro_f1"])
    first = sorted(test_dir.glob("*.mp4"))[0]
    results, run = out / "results" / best, out / "runs" / best
    print(f"\nEvery output is in {out}:\n"
          f"  results/<model>/  {first.stem}.behavior.csv (bouts), .frames.csv, .metrics.xlsx, .ethogram.png,\n"
          f"                    .truth_vs_prediction.png, .review.mp4; eval_report.txt, confusion_matrix.png\n"
          f"  runs/<model>/     best_model_macro_f1.pt, training_curves.png, metrics.csv, confusion matrices\n"
          f"  prepared/         sequence_manifest.json, windows, tracking tables, qa_crops/\n"
          f"Open the best model's result ({best}) in the dashboard's Review tab:\n"
          f"  python3 behaviorscope_gui.py --review_video {first} --review_frames "
          f"{results / (first.stem + '.frames.csv')} --review_model {run / 'best_model_macro_f1.pt'}")


if __name__ == "__main__":
    run_cli(main, get_args_parser())
