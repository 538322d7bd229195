"""The INT8 detector (--detector_backend openvino_int8) against FP32 and against the original BehaviorScope.

speed: end-to-end frames/s of infer_behavior_lstm.main on one generated 640x480 video, in one run, alternating
repeats (the machine drifts), each run in its own process (nothing warm carried from one to the next): this
project with torch, openvino (FP32) and openvino_int8, and the project as it was when issue 11 measured it at 1.64x
the original BehaviorScope (commit 91fb372^, PyTorch only: --then_commit), extracted from this repository's
history with `git archive`. Each version prepares its own checkpoint with its own scripts on the same clips, same
settings (imgsz 416, crop 128, mobilenet_v3_small, window 30 / stride 15, one epoch: weights do not change the
speed). The clock runs around main() inside the child (model and detector loading, decoding, detection, crops,
backbone, head, every output), not the interpreter's start. The original's frames/s is the then-version's divided
by 1.64 (issue 11 measured both in one session; the original is not in this repository). The INT8 export is made
and checked before the first repeat (a one-off per machine, timed apart). Label agreement: the share of frames whose
label in frames.csv is the same with openvino_int8 as with openvino.

agreement: the accuracy bench's data (bench/bench_accuracy.py: held-out videos with other animals, floors and light,
the tiny YOLO-pose at imgsz 320), one model trained on it (--variant), then benchmark_pipeline.py on the held-out
videos once with openvino (FP32) and once with openvino_int8 (calibrated on the first held-out video): share of
frames with the same label, per-frame macro-F1 of both, and how far boxes and keypoints moved.

Usage:
    YOLO_OFFLINE=1 python bench/bench_int8.py speed --repeats 5 --output bench/results_int8_speed.json
    YOLO_OFFLINE=1 python bench/bench_int8.py agreement --work /tmp/acc --output bench/results_int8_agreement.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ORIGINAL_VS_THEN = 1.64  # issue 11: the then-version ran 1.64x the original BehaviorScope in one session
TIMED_MAIN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import infer_behavior_lstm as infer
args = infer.get_args_parser().parse_args(sys.argv[3:])
start = time.perf_counter()
infer.main(args)
print(json.dumps({"seconds": time.perf_counter() - start}), file=open(sys.argv[2], "w"))
"""


def run(command: list, cwd: Path, log: Path) -> None:
    with open(log, "a") as out:
        done = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, "YOLO_OFFLINE": "1"})
    if done.returncode:
        raise SystemExit(f"{' '.join(map(str, command))} failed in {cwd} (exit {done.returncode}); see {log}")


def extract_commit(repo: Path, commit: str, target: Path) -> Path:
    """The files of git repository `repo` at `commit` (git archive), for running another version side by side."""
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["git", "-C", str(repo), "archive", commit], capture_output=True)
    if done.returncode:
        raise SystemExit(f"cannot extract {commit} from {repo}: {done.stderr.decode().strip()}; pass --repo, a clone "
                         f"of BehaviorScope with its history")
    archive = done.stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def make_checkpoint(tree: Path, clips: Path, work: Path, args, log: Path) -> Path:
    """One version's own preparation and one epoch of training, with its own scripts."""
    prepared, runs = work / "prepared", work / "runs"
    run([sys.executable, "prepare_sequences_from_yolo.py", "--dataset_root", clips, "--output_root", prepared,
         "--yolo_weights", args.yolo_weights, "--yolo_imgsz", str(args.yolo_imgsz), "--crop_size",
         str(args.crop_size), "--device", "cpu", "--window_size", str(args.window_size), "--window_stride",
         str(args.window_stride), "--val_ratio", "0", "--train_ratio", "1", "--test_ratio", "0"], tree, log)
    run([sys.executable, "train_behavior_lstm.py", "--manifest_path", prepared / "sequence_manifest.json",
         "--output_dir", runs, "--run_name", "speed", "--backbone", args.backbone, "--no-pretrained_backbone",
         "--epochs", "1", "--device", "cpu", "--num_workers", "0"], tree, log)
    return next(p for p in (runs / "speed" / "best_model.pt", runs / "speed" / "best_model_macro_f1.pt") if p.is_file())


def timed_inference(tree: Path, checkpoint: Path, video: Path, out: Path, extra: list, log: Path) -> float:
    """Seconds of infer_behavior_lstm.main in a child process of this interpreter, run from `tree`."""
    result = out / "timing.json"
    out.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-c", TIMED_MAIN, str(tree), result, "--model_path", checkpoint, "--video_path", video,
         "--output_dir", out, "--device", "cpu", *extra], tree, log)
    return json.loads(result.read_text())["seconds"]


def frame_labels(out: Path) -> np.ndarray:
    return pd.read_csv(next(out.glob("*.frames.csv")))["label"].astype(str).to_numpy()


def bench_speed(args) -> dict:
    from utils.synthetic import make_class_folder_dataset, make_long_video_dataset
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log = work / "children.log"
        os.environ["BEHAVIORSCOPE_CACHE"] = str(work / "prepare_cache")  # the clips' detector choices stay apart
        clips = work / "clips"
        make_class_folder_dataset(clips, videos_per_class=1, num_frames=60, seed=5, truth=False,
                                  behaviors=("walk", "groom", "rear"))
        video = make_long_video_dataset(work / "video", num_videos=1, num_frames=args.num_frames, seed=17,
                                        truth=False)[0]
        then = extract_commit(Path(args.repo), args.then_commit, work / "then")
        checkpoints = {"then": make_checkpoint(then, clips, work / "then_ckpt", args, log),
                       "now": make_checkpoint(ROOT, clips, work / "now_ckpt", args, log)}
        os.environ["BEHAVIORSCOPE_CACHE"] = str(work / "cache")  # exports of this run: INT8 calibrated on the video
        settings = [("then", "torch")] + [("now", b) for b in args.detector_backends]
        now_flags = ["--no-reuse_detections", "--detector_backend"]
        first_use = {}
        for backend in args.detector_backends:  # exports made and checked once, before the timed repeats
            first_use[backend] = timed_inference(ROOT, checkpoints["now"], video, work / f"first_{backend}",
                                                 now_flags + [backend], log)
        seconds = {s: [] for s in settings}
        for repeat in range(args.repeats):
            for version, backend in settings:
                out = work / f"out_{version}_{backend}_{repeat}"
                tree, extra = (then, []) if version == "then" else (ROOT, now_flags + [backend])
                seconds[(version, backend)].append(timed_inference(tree, checkpoints[version], video, out, extra,
                                                                   log))
                print(f"repeat {repeat} {version} {backend}: {seconds[(version, backend)][-1]:.2f} s", flush=True)
        labels = {b: frame_labels(work / f"out_now_{b}_0") for b in args.detector_backends}
    rows = []
    for version, backend in settings:
        runs = seconds[(version, backend)]
        vs_then = statistics.median(t / s for t, s in zip(seconds[("then", "torch")], runs))
        rows.append({"version": version, "detector_backend": backend,
                     "frames_per_s": round(args.num_frames / statistics.median(runs), 1),
                     "frames_per_s_each": [round(args.num_frames / s, 1) for s in runs],
                     "vs_then": round(vs_then, 2), "vs_original": round(vs_then * ORIGINAL_VS_THEN, 2),
                     "first_use_s": round(first_use.get(backend, 0), 1) if version == "now" else None})
        if "openvino" in labels and version == "now":
            rows[-1]["labels_same_as_openvino"] = round(float(np.mean(labels[backend] == labels["openvino"])), 4)
        print(rows[-1], flush=True)
    return {"frames": args.num_frames, "repeats": args.repeats, "yolo_imgsz": args.yolo_imgsz,
            "crop_size": args.crop_size, "backbone": args.backbone, "window_size": args.window_size,
            "window_stride": args.window_stride, "then_commit": args.then_commit,
            "original_vs_then": ORIGINAL_VS_THEN, "results": rows}


def bench_agreement(args) -> dict:
    import benchmark_pipeline
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_accuracy
    from training.engine import train, training_config
    work = Path(args.work)
    acc_args = bench_accuracy.get_args_parser().parse_args(["--work", str(work)])
    manifest, test_dir = bench_accuracy.make_data(work, acc_args)
    run_name = f"int8_{args.variant}"
    checkpoint = work / "runs" / run_name / "best_model_macro_f1.pt"
    if not checkpoint.is_file():
        train(training_config("--manifest_path", str(manifest), "--output_dir", str(work / "runs"), "--run_name",
                              run_name, "--device", "cpu", "--num_workers", "0", "--seed", "0",
                              *bench_accuracy.VARIANTS[args.variant]))
    os.environ["BEHAVIORSCOPE_CACHE"] = str(work / "int8_cache")  # the INT8 export calibrated in this run
    scores, outputs = {}, {}
    for backend in ("openvino", "openvino_int8"):
        outputs[backend] = work / f"eval_{run_name}_{backend}"
        benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
            "--model_path", str(checkpoint), "--input_dir", str(test_dir), "--output_root", str(outputs[backend]),
            "--device", "cpu", "--detector_backend", backend, "--no-reuse_detections"]))
        scores[backend] = json.loads((outputs[backend] / "eval_results.json").read_text())["scores"]
    same, moved, frames = 0, [], 0
    for fp32_csv in sorted(outputs["openvino"].rglob("*.frames.csv")):
        a, b = pd.read_csv(fp32_csv), pd.read_csv(outputs["openvino_int8"] / fp32_csv.relative_to(outputs["openvino"]))
        same += int((a["label"].astype(str) == b["label"].astype(str)).sum())
        frames += len(a)
        xy = [c for c in a.columns if c.startswith(("box_", "kp")) and not c.endswith("_conf")]
        found = a[xy].notna().all(axis=1) & b[xy].notna().all(axis=1)
        moved.append(np.abs(a.loc[found, xy].to_numpy() - b.loc[found, xy].to_numpy()).max(1))
    moved = np.concatenate(moved)
    report = {"variant": args.variant, "frames": frames, "videos": len(list(test_dir.rglob("*.mp4"))),
              "labels_same": round(same / max(frames, 1), 4),
              "macro_f1": {b: round(s["macro_f1"], 4) for b, s in scores.items()},
              "segment_macro_f1": {b: round(s["segment"]["macro_f1"], 4) for b, s in scores.items()},
              "largest_move_px_per_frame": {"median": round(float(np.median(moved)), 2),
                                            "p95": round(float(np.percentile(moved, 95)), 2),
                                            "max": round(float(moved.max()), 2)}}
    print(report, flush=True)
    return report


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["speed", "agreement"])
    parser.add_argument("--yolo_weights", default=str(ROOT / "tests" / "fixtures" / "tiny_yolo_pose.pt"))
    parser.add_argument("--yolo_imgsz", type=int, default=416)
    parser.add_argument("--crop_size", type=int, default=128)
    parser.add_argument("--backbone", default="mobilenet_v3_small")
    parser.add_argument("--window_size", type=int, default=30)
    parser.add_argument("--window_stride", type=int, default=15)
    parser.add_argument("--num_frames", type=int, default=1800, help="speed: frames of the generated video")
    parser.add_argument("--repeats", type=int, default=5, help="speed: runs per setting, alternating")
    parser.add_argument("--detector_backends", nargs="+", default=["torch", "openvino", "openvino_int8"],
                        help="speed: this project's runtimes timed beside the then-version")
    parser.add_argument("--then_commit", default="91fb372^",
                        help="speed: the version issue 11 measured at 1.64x the original BehaviorScope")
    parser.add_argument("--repo", default=str(ROOT), help="speed: the git clone --then_commit is taken from")
    parser.add_argument("--work", default="/tmp/acc", help="agreement: the accuracy bench's folder (reused)")
    parser.add_argument("--variant", default="gbt_body_motion", help="agreement: the bench_accuracy variant trained")
    parser.add_argument("--output", default=None, help="write the report as JSON here")
    return parser


def main(args) -> dict:
    report = bench_speed(args) if args.check == "speed" else bench_agreement(args)
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main(get_args_parser().parse_args())
