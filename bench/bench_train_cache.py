"""Training epoch time with and without the frozen-backbone feature cache, on the same prepared data.

Both runs train the same model (frozen mobilenet_v3_small + LSTM) for --epochs epochs; the figure per run is
the median epoch time (training + validation), and the cache's one-off build time is reported apart.
The ratio is computed within each repeat, then the median over repeats is quoted.

Usage:
    YOLO_OFFLINE=1 python bench/bench_train_cache.py --repeats 3 --output bench/results_train_cache.json
"""
import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import prepare_sequences_from_yolo as prepare  # noqa: E402
from training.engine import train, training_config  # noqa: E402
from utils.synthetic import make_class_folder_dataset  # noqa: E402


def prepare_data(tmp: Path, args) -> Path:
    make_class_folder_dataset(tmp / "clips", args.videos_per_class, args.num_frames, seed=7, truth=False)
    prepare.main(prepare.get_args_parser().parse_args([
        "--dataset_root", str(tmp / "clips"), "--output_root", str(tmp / "prepared"), "--yolo_weights",
        str(args.yolo_weights), "--yolo_imgsz", "320", "--device", "cpu", "--crop_size", str(args.crop_size),
        "--window_size", str(args.window_size), "--window_stride", str(args.window_size // 2)]))
    return tmp / "prepared" / "sequence_manifest.json"


def epoch_seconds(manifest: Path, out: Path, name: str, cache: bool, args) -> tuple:
    """(median epoch seconds, cache build seconds or 0) of one training run."""
    argv = ["--manifest_path", str(manifest), "--output_dir", str(out), "--run_name", name, "--epochs",
            str(args.epochs), "--no_pretrained_backbone", "--device", "cpu", "--num_workers", str(args.num_workers),
            "--batch_size", "8", "--patience", "0", "--feature_cache" if cache else "--no-feature_cache"]
    train(training_config(*argv))
    seconds = pd.read_csv(out / name / "metrics.csv")["seconds"]
    log = (out / name / "train.log").read_text()
    build = re.search(r"feature cache: .* in ([0-9.]+) s", log)
    return float(seconds.median()), float(build.group(1)) if build else 0.0


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Benchmark the frozen-backbone feature cache.", add_help=add_help)
    parser.add_argument("--yolo_weights", default=str(ROOT / "tests" / "fixtures" / "tiny_yolo_pose.pt"))
    parser.add_argument("--videos_per_class", type=int, default=2)
    parser.add_argument("--num_frames", type=int, default=90)
    parser.add_argument("--crop_size", type=int, default=128)
    parser.add_argument("--window_size", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None)
    return parser


def main(args) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        manifest = prepare_data(Path(tmp), args)
        windows = sum(len(v) for v in json.loads(manifest.read_text())["splits"].values())
        for r in range(args.repeats):
            without, _ = epoch_seconds(manifest, Path(tmp) / "runs", f"plain{r}", False, args)
            with_cache, build = epoch_seconds(manifest, Path(tmp) / "runs", f"cache{r}", True, args)
            rows.append({"epoch_s_without_cache": without, "epoch_s_with_cache": with_cache,
                         "cache_build_s": build, "speedup": without / with_cache})
    report = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}
    report.update(windows=windows, crop_size=args.crop_size, window_size=args.window_size, repeats=args.repeats,
                  runs=rows)
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
