"""Pose, a head-mounted IMU, or both: generated recordings with the generator's IMU (utils.synthetic.simulate_imu)
and its `shake` (still from above, a fast roll of the head: only the IMU sees it) and `tail_rattle` (the tail beaten
at 6 Hz, head still: only the pose sees it), models trained on each input set with the same settings and labels,
scored per frame (benchmark_pipeline.py) on held-out recordings of other animals. A seed draws other recordings and
trains with another seed. Models: gbt, mstcn (the streams side by side in one input), multimodal (an encoder per
stream, cross-attention fusion) and multimodal_pretrained (its cross-modal objective first, pretrain_pose.py on the
labelled recordings without their labels, then the classifier phase with the encoders frozen, --init_lr_scale 0, or
fine-tuned slower; both streams only).

Usage:
    python bench/bench_sensors.py --work /tmp/sensors --output bench/results_sensors.json
"""
import argparse
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import benchmark_pipeline  # noqa: E402
import prepare_sequences_from_yolo  # noqa: E402
import pretrain_pose  # noqa: E402
from training.engine import train, training_config  # noqa: E402
from utils.io import report_json  # noqa: E402
from utils.synthetic import BEHAVIORS, RATTLE, SENSOR_BEHAVIORS, SHAKE, make_pose_file_dataset  # noqa: E402

# what each model reads: pose (keypoint features and the box they span), the IMU alone, or both
INPUTS = {"pose": dict(use_pose=True, use_box_motion=True, use_sensors=False),
          "imu": dict(use_pose=False, use_box_motion=False, use_sensors=True),
          "both": dict(use_pose=True, use_box_motion=True, use_sensors=True)}
MODELS = {"gbt": dict(classifier="gbt"),
          "mstcn": dict(classifier="mstcn", epochs=40),
          "multimodal": dict(classifier="multimodal", epochs=40),
          "multimodal_pretrained": dict(classifier="multimodal", epochs=40)}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for the recordings, runs and scores")
    parser.add_argument("--recordings", type=int, default=8, help="labelled recordings (train + validation)")
    parser.add_argument("--held_out", type=int, default=4, help="recordings of other animals, scored per frame")
    parser.add_argument("--frames", type=int, default=900, help="frames per recording (30 fps)")
    parser.add_argument("--seeds", type=int, default=3, help="draws of recordings and training seeds")
    parser.add_argument("--models", nargs="+", default=["gbt", "mstcn"], choices=list(MODELS), help="model kinds")
    parser.add_argument("--pretrain_epochs", type=int, default=15, help="multimodal_pretrained: epochs of the "
                                                                         "cross-modal objective")
    parser.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=list(INPUTS), help="input sets")
    parser.add_argument("--pose_features", default="body", choices=["body", "speeds"], help="the pose feature set")
    parser.add_argument("--init_lr_scale", type=float, default=0.0,
                        help="multimodal_pretrained: learning rate of the pretrained encoders, times lr (0: frozen, "
                             "the Rats system's classifier phase)")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def prepared_draw(work: Path, seed: int, args) -> Path:
    behaviours = BEHAVIORS + SENSOR_BEHAVIORS
    make_pose_file_dataset(work / "labelled", args.recordings, args.frames, seed=100 + seed, imu=True,
                           behaviors=behaviours)
    make_pose_file_dataset(work / "held_out", args.held_out, args.frames, seed=200 + seed, imu=True,
                           behaviors=behaviours)
    prepare_sequences_from_yolo.main(prepare_sequences_from_yolo.get_args_parser().parse_args([
        "--dataset_root", str(work / "labelled"), "--output_root", str(work / "prepared"), "--detector", "pose_file",
        "--pose_fps", "30", "--window_size", "30", "--window_stride", "10", "--train_ratio", "0.75", "--val_ratio",
        "0.25", "--test_ratio", "0"]))
    return work / "prepared" / "sequence_manifest.json"


def pretrained(manifest: Path, runs: Path, seed: int, args) -> str:
    """The multimodal model's cross-modal pretraining on the labelled recordings, their labels unused."""
    pretrain_pose.main(pretrain_pose.get_args_parser().parse_args([
        "--manifest_path", str(manifest), "--classifier", "multimodal", "--use_pose", "--pose_features",
        args.pose_features, "--output_dir", str(runs), "--run_name", "cross_modal", "--device", "cpu", "--epochs",
        str(args.pretrain_epochs), "--seed", str(seed)]))
    return str(runs / "cross_modal" / "best_model.pt")


def summary(runs: list) -> dict:
    values = [r["macro_f1"] for r in runs]
    shake = [r["per_class_f1"].get(SHAKE, 0.0) for r in runs]
    rattle = [r["per_class_f1"].get(RATTLE, 0.0) for r in runs]
    return {"median_macro_f1": round(statistics.median(values), 4), "min": min(values), "max": max(values),
            "median_shake_f1": round(statistics.median(shake), 4),
            "median_rattle_f1": round(statistics.median(rattle), 4),
            "median_segment_f1": round(statistics.median(r["segment_f1"] for r in runs), 4)}


def main(args) -> dict:
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    results = {"settings": {k: v for k, v in vars(args).items() if k not in ("work", "output")}, "runs": {},
               "summary": {}}
    for seed in range(args.seeds):
        manifest = prepared_draw(work / f"seed{seed}", seed, args)
        for model in args.models:
            extra = {}
            if model == "multimodal_pretrained":
                extra = dict(init_from=pretrained(manifest, work / f"seed{seed}" / "runs", seed, args),
                             init_lr_scale=args.init_lr_scale)
            for inputs in (["both"] if extra else args.inputs):
                name = f"{model}_{inputs}"
                run = train(training_config(manifest_path=str(manifest), **MODELS[model], **INPUTS[inputs], **extra,
                                            pose_features=args.pose_features, seed=seed,
                                            output_dir=str(work / f"seed{seed}" / "runs"), run_name=name,
                                            num_workers=0, device="cpu"))
                scores = benchmark_pipeline.score_folder(Path(run.run_dir) / "best_model_macro_f1.pt",
                                                         work / f"seed{seed}" / "held_out",
                                                         work / f"seed{seed}" / "scores" / name)
                results["runs"].setdefault(name, []).append(scores)
                print(f"seed {seed} {name}", scores, flush=True)
                results["summary"][name] = summary(results["runs"][name])
                report_json(results, args.output)
    return results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
