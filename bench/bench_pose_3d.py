"""What the height adds: the same generated animals as 2D DeepLabCut files and as 3D Anipose files (identical x and
y, plus heights consistent with the behaviour: utils.synthetic.keypoint_heights), a gradient-boosted model trained on
each with the same settings, scored per frame (benchmark_pipeline.py) on held-out recordings of other animals.

Usage:
    python bench/bench_pose_3d.py --work /tmp/pose3d --output bench/results_pose_3d.json
"""
import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import benchmark_pipeline  # noqa: E402
import prepare_sequences_from_yolo  # noqa: E402
from training.engine import train, training_config  # noqa: E402
from utils.io import report_json  # noqa: E402
from utils.synthetic import make_pose_file_dataset  # noqa: E402

KINDS = {"2d": "DLC_synthetic.csv", "3d": ".anipose.csv"}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for the recordings, runs and scores")
    parser.add_argument("--recordings", type=int, default=8, help="labelled recordings (train + validation)")
    parser.add_argument("--held_out", type=int, default=4, help="recordings of other animals, scored per frame")
    parser.add_argument("--frames", type=int, default=900, help="frames per recording (30 fps)")
    parser.add_argument("--feature_sets", nargs="+", default=["body", "speeds"], choices=["body", "speeds"],
                        help="--pose_features of the models compared")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def main(args) -> dict:
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    results = {"settings": {k: v for k, v in vars(args).items() if k not in ("work", "output")}, "models": {}}
    for kind, suffix in KINDS.items():
        make_pose_file_dataset(work / kind / "labelled", args.recordings, args.frames, seed=31, suffix=suffix,
                               three_d=kind == "3d")
        make_pose_file_dataset(work / kind / "held_out", args.held_out, args.frames, seed=32, suffix=suffix,
                               three_d=kind == "3d")
        prepare_sequences_from_yolo.main(prepare_sequences_from_yolo.get_args_parser().parse_args([
            "--dataset_root", str(work / kind / "labelled"), "--output_root", str(work / kind / "prepared"),
            "--detector", "pose_file", "--pose_fps", "30", "--window_size", "30", "--window_stride", "10",
            "--train_ratio", "0.75", "--val_ratio", "0.25", "--test_ratio", "0"]))
        for features in args.feature_sets:
            name = f"{kind}_{features}"
            run = train(training_config(manifest_path=str(work / kind / "prepared" / "sequence_manifest.json"),
                                        classifier="gbt", use_pose=True, pose_features=features,
                                        output_dir=str(work / "runs"), run_name=name, num_workers=0, device="cpu"))
            results["models"][name] = benchmark_pipeline.score_folder(
                Path(run.run_dir) / "best_model_macro_f1.pt", work / kind / "held_out", work / "scores" / name)
            print(name, results["models"][name], flush=True)
    return report_json(results, args.output)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
