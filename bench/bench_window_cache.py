"""Training time with and without the window cache (data.PLAIN_CACHE_BYTES): a window without augmentation or
frames is computed once per dataset instead of at every read (each epoch's validation, the trees' fit, the drift
reference, decision weights).

Generated pose files (8 recordings of 1800 frames, 30 fps; window 30, stride 10; half train, half validation),
prepared once; then, in one process, a pose-only LSTM for `--epochs` epochs and gradient-boosted trees, each with the
cache off (PLAIN_CACHE_BYTES = 0) and on, the order alternating between repeats. Wall seconds per run and the
median ratio. The trained models' validation scores are compared too: the cache must not change them.

Usage:
    python bench/bench_window_cache.py --work /tmp/window_cache --repeats 3 --output bench/results_window_cache.json
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import prepare_sequences_from_yolo  # noqa: E402
from training.engine import train, training_config  # noqa: E402
from utils.io import report_json  # noqa: E402
from utils.synthetic import make_pose_file_dataset  # noqa: E402

MODELS = {"pose_lstm": ["--backbone", "none", "--use_pose", "--patience", "0"],
          "gbt": ["--classifier", "gbt", "--use_pose"]}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for the recordings, windows and runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20, help="the LSTM's epochs (no early stop)")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def prepared_manifest(work: Path) -> Path:
    manifest = work / "prepared" / "sequence_manifest.json"
    if not manifest.is_file():
        make_pose_file_dataset(work / "recordings", 8, 1800, seed=1)
        prepare_sequences_from_yolo.main(prepare_sequences_from_yolo.get_args_parser().parse_args([
            "--dataset_root", str(work / "recordings"), "--output_root", str(work / "prepared"), "--detector",
            "pose_file", "--pose_fps", "30", "--window_size", "30", "--window_stride", "10", "--train_ratio", "0.5",
            "--val_ratio", "0.5", "--test_ratio", "0"]))
    return manifest


def timed_run(manifest: Path, work: Path, name: str, flags: list, run_name: str) -> tuple:
    start = time.perf_counter()
    result = train(training_config(*flags, manifest_path=str(manifest), output_dir=str(work / "runs"),
                                   run_name=run_name, num_workers=0, device="cpu"))
    return time.perf_counter() - start, max(row["val_macro_f1"] for row in result.history)


def main(args) -> dict:
    work = Path(args.work)
    manifest = prepared_manifest(work)
    on_bytes = data.PLAIN_CACHE_BYTES
    runs = {name: {"off": [], "on": [], "val_macro_f1": {"off": [], "on": []}} for name in MODELS}
    for repeat in range(args.repeats):
        for mode in (("off", "on") if repeat % 2 == 0 else ("on", "off")):
            data.PLAIN_CACHE_BYTES = on_bytes if mode == "on" else 0
            for name, flags in MODELS.items():
                flags = flags + (["--epochs", str(args.epochs)] if name == "pose_lstm" else [])
                seconds, f1 = timed_run(manifest, work, name, flags, f"{name}_{mode}_{repeat}")
                runs[name][mode].append(round(seconds, 1))
                runs[name]["val_macro_f1"][mode].append(round(f1, 4))
                print(f"repeat {repeat} {name} cache {mode}: {seconds:.1f} s, validation macro-F1 {f1:.4f}", flush=True)
    data.PLAIN_CACHE_BYTES = on_bytes
    for name, r in runs.items():
        r["median_off_s"], r["median_on_s"] = (round(statistics.median(r[mode]), 2) for mode in ("off", "on"))
        r["median_ratio_off_on"] = round(statistics.median(a / b for a, b in zip(r["off"], r["on"])), 2)
    return report_json({"epochs": args.epochs, "runs": runs}, args.output)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
