"""Dense-model speed on this CPU: classifying an hour of pose, and pretraining on it.

A default MS-TCN (`--classifier mstcn --use_pose`, trained briefly: the weights do not change the speed) and, for
comparison in the same run, the gradient-boosted trees classify one generated pose file of `--minutes` minutes at 30
fps through benchmark_pipeline.py (reading the file, features, model, every output), alternating, `--repeats` times:
end-to-end frames/s (medians) and the classifier stage's seconds. Then pretrain_pose.py pretrains a default MS-TCN on
that recording for `--pretrain_epochs` epochs: total seconds, seconds per epoch and the held-out loss per epoch.

Usage:
    python bench/bench_dense_speed.py --work /tmp/dense_speed --output bench/results_dense_speed.json
"""
import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import benchmark_pipeline  # noqa: E402
import prepare_sequences_from_yolo  # noqa: E402
import pretrain_pose  # noqa: E402
from training.engine import train, training_config  # noqa: E402
from utils.io import report_json  # noqa: E402
from utils.synthetic import make_pose_file_dataset  # noqa: E402


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for the recordings, runs and outputs")
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the recording classified and pretrained on")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pretrain_epochs", type=int, default=12)
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def trained_models(work: Path) -> dict:
    make_pose_file_dataset(work / "train", 4, 1200, seed=31)
    prepare_sequences_from_yolo.main(prepare_sequences_from_yolo.get_args_parser().parse_args([
        "--dataset_root", str(work / "train"), "--output_root", str(work / "prepared"), "--detector", "pose_file",
        "--pose_fps", "30", "--window_size", "30", "--window_stride", "10", "--train_ratio", "0.75", "--val_ratio",
        "0.25", "--test_ratio", "0"]))
    manifest = str(work / "prepared" / "sequence_manifest.json")
    models = {}
    for name, flags in (("mstcn", ["--classifier", "mstcn", "--use_pose", "--epochs", "5"]),
                        ("gbt", ["--classifier", "gbt", "--use_pose"])):
        result = train(training_config(*flags, manifest_path=manifest, output_dir=str(work / "runs"), run_name=name,
                                       num_workers=0, device="cpu"))
        models[name] = Path(result.run_dir) / "best_model_macro_f1.pt"
    return models


def classify(model: Path, folder: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    result = benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
        "--model_path", str(model), "--input_dir", str(folder), "--output_root", str(out), "--device", "cpu"]))
    timing = result["timing"]
    return {"frames_per_second": timing["frames_per_second"], "head_seconds": timing["stage_seconds"].get("head"),
            "frames": timing["frames"]}


def main(args) -> dict:
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    models = trained_models(work)
    make_pose_file_dataset(work / "long", 1, int(round(args.minutes * 60 * 30)), seed=32)
    runs = {name: [] for name in models}
    for repeat in range(args.repeats):
        for name, model in models.items():  # alternating, so both see the same machine
            runs[name].append(classify(model, work / "long", work / "out" / name))
    results = {"minutes": args.minutes, "classify": {
        name: {"frames_per_second_median": round(statistics.median(r["frames_per_second"] for r in rows), 1),
               "head_seconds_median": round(statistics.median(r["head_seconds"] for r in rows), 2),
               "frames": rows[0]["frames"], "runs": rows} for name, rows in runs.items()}}
    start = time.time()
    pretrained = pretrain_pose.main(pretrain_pose.get_args_parser().parse_args([
        "--manifest_path", str(work / "prepared" / "sequence_manifest.json"), "--pose_dir", str(work / "long"),
        "--classifier", "mstcn", "--use_pose", "--epochs", str(args.pretrain_epochs), "--output_dir",
        str(work / "pretrain"), "--run_name", "p", "--device", "cpu"]))
    results["pretrain"] = {"seconds": round(time.time() - start, 1), "frames": pretrained.frames,
                           "epochs": [{k: round(v, 4) for k, v in row.items()} for row in pretrained.history]}
    return report_json(results, args.output)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
