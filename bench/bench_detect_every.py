"""What --detect_every costs: box and keypoint error against every-frame detection, and per-frame macro-F1.

One trained model classifies the same labelled held-out videos with each detect_every value
(benchmark_pipeline.py, so the model and detector are loaded once per value). Errors are measured against the
detect_every 1 run's own boxes and keypoints (frames.csv), on the frames the sparse run interpolated; macro-F1
against the videos' label files. Speed is in bench_infer.py (speed --detect_every ...).

Usage:
    YOLO_OFFLINE=1 python bench/bench_detect_every.py --model_path /tmp/acc/runs/gbt_body_motion/best_model_macro_f1.pt \
        --input_dir /tmp/acc/test_videos --work /tmp/every --every 1 2 3 4 6
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import benchmark_pipeline  # noqa: E402

BOX = ["box_x1", "box_y1", "box_x2", "box_y2"]


def evaluate(model: str, input_dir: str, out: Path, every: int, backend: str) -> dict:
    args = benchmark_pipeline.get_args_parser().parse_args([
        "--model_path", model, "--input_dir", input_dir, "--output_root", str(out), "--device", "cpu",
        "--detect_every", str(every), "--detector_backend", backend, "--no-reuse_detections"])  # time the detector
    result = benchmark_pipeline.main(args)
    return {"macro_f1": round(result["scores"]["macro_f1"], 4),
            "per_class_f1": {c: round(s["f1"], 3) for c, s in result["scores"]["per_class"].items()},
            "frames_per_second": round(result["timing"]["frames_per_second"], 1)}


def errors_against(reference: Path, sparse: Path) -> dict:
    """Box-corner and keypoint errors (px) of the interpolated frames, against every-frame detection."""
    box, kp = [], []
    for ref_csv in sorted(reference.rglob("*.frames.csv")):
        a, b = pd.read_csv(ref_csv), pd.read_csv(sparse / ref_csv.relative_to(reference))
        rows = (b["detection_status"] == "interpolated") & (a["detection_status"] == "detected")
        box.append(np.abs(a.loc[rows, BOX].to_numpy() - b.loc[rows, BOX].to_numpy()).max(1))
        k = len([c for c in a if c.startswith("kp") and c.endswith("_x")])
        xy = [f"kp{i}_{ax}" for i in range(k) for ax in ("x", "y")]
        d = (a.loc[rows, xy].to_numpy() - b.loc[rows, xy].to_numpy()).reshape(-1, k, 2)
        kp.append(np.linalg.norm(d, axis=2).ravel())
    box, kp = np.concatenate(box), np.concatenate(kp)
    kp = kp[np.isfinite(kp)]
    return {"interpolated_frames": int(len(box)), "box_error_px_median": round(float(np.median(box)), 2),
            "box_error_px_p95": round(float(np.percentile(box, 95)), 2),
            "keypoint_error_px_median": round(float(np.median(kp)), 2),
            "keypoint_error_px_p95": round(float(np.percentile(kp, 95)), 2)}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_path", required=True)
    parser.add_argument("--input_dir", required=True, help="labelled videos (label file beside each)")
    parser.add_argument("--work", required=True, help="folder for the evaluations")
    parser.add_argument("--every", type=int, nargs="+", default=[1, 2, 3, 4, 6], help="detect_every values; 1 first")
    parser.add_argument("--detector_backend", default="torch")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def main(args) -> dict:
    work, results = Path(args.work), {}
    for every in args.every:
        results[every] = evaluate(args.model_path, args.input_dir, work / f"every{every}", every,
                                  args.detector_backend)
        if every != args.every[0]:
            results[every].update(errors_against(work / f"every{args.every[0]}", work / f"every{every}"))
        print(f"detect_every {every}: {json.dumps(results[every])}", flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
