"""How much of the pose-only accuracy is lost to the keypoint detector: the same features and classifier on
true keypoints, on true keypoints with added noise, and on the detector's keypoints.

The accuracy bench's data (generated long videos, training and held-out test videos from different seeds, so
other animals, floors and lighting) is generated again here with its ground truth. For each keypoint source the
per-frame scale references (utils.features.motion.ScaleTracker), body-pose and box-motion features (FeatureSpec) and the
gradient-boosted window classifier (classifiers.WindowStatsGBT) are exactly the product's; windows of 30 frames,
stride 5, per-frame probabilities centre-weighted as at inference (utils.data.windows.frame_weights). Boxes are the
true ones for the truth sources, the detector's for the detector source. Only the keypoints change, so the
differences are the detector's.

Usage:
    YOLO_OFFLINE=1 python bench/bench_keypoint_quality.py --work /tmp/kpq --noise_px 2 4 8 --output /tmp/kpq.json
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from classifiers import WindowStatsGBT  # noqa: E402
from detectors import build_detector  # noqa: E402
from frame_pipeline import iter_frame_records  # noqa: E402
from model import ModelConfig  # noqa: E402
from utils.results.metrics import classification_scores  # noqa: E402
from utils.features.motion import FeatureSpec, ScaleTracker, body_axis  # noqa: E402
from utils.schema import PreprocessingConfig  # noqa: E402
from utils.synthetic import BEHAVIORS, KEYPOINT_NAMES, make_long_video_dataset  # noqa: E402
from utils.data.windows import frame_weights, window_starts  # noqa: E402

FPS, WINDOW, STRIDE = 30.0, 30, 5


def dataset(root: Path, count: int, frames: int, seed: int) -> list:
    """[(labels, true keypoints [N,K,2], true boxes [N,4], video path)] of the generated videos (made once)."""
    if not (root / "session_00.truth.npz").is_file():
        make_long_video_dataset(root, count, frames, seed=seed, truth=True)
    out = []
    for truth in sorted(root.glob("*.truth.npz")):
        data = np.load(truth)
        out.append((list(data["labels"]), data["keypoints"], data["bboxes"], truth.with_name(
            truth.name.replace(".truth.npz", ".mp4"))))
    return out


def detected(video: Path, detector, settings) -> tuple:
    """The detector's keypoints [N,K,3] (NaN where missed) and boxes [N,4] on every frame of a video."""
    keypoints, boxes = [], []
    for records in iter_frame_records(video, detector, settings):
        for r in records:
            keypoints.append(r.keypoints if r.keypoints is not None else np.full((len(KEYPOINT_NAMES), 3), np.nan))
            boxes.append(r.box)
    return np.stack(keypoints).astype(np.float32), np.stack(boxes).astype(np.float32)


def per_frame_arrays(keypoints: np.ndarray, boxes: np.ndarray) -> dict:
    """Frame-pixel arrays as the npz stores them, with the causal scale references of the frame pipeline."""
    tracker, refs = ScaleTracker(body_axis(KEYPOINT_NAMES, len(KEYPOINT_NAMES))), []
    for kp, box in zip(keypoints, boxes):
        ok = bool(np.isfinite(box).all())
        refs.append(tracker.update(box, kp if ok else None, ok))
    return {"keypoints_xy_raw": keypoints[..., :2], "keypoints_conf_raw": keypoints[..., 2],
            "bbox_xyxy": boxes, "scale_ref": np.stack(refs)}


def windows(arrays: dict, spec: FeatureSpec, labels, stride: int) -> tuple:
    """(pose [W,T,Dp], motion [W,T,Dm], centre labels [W], starts) of a video's complete windows."""
    pose, motion, centre, starts = [], [], [], []
    for start in window_starts(len(labels), WINDOW, stride):
        part = {k: v[start:start + WINDOW] for k, v in arrays.items()}
        if not np.isfinite(part["bbox_xyxy"]).all():
            continue
        p, m = spec.window_inputs(part, FPS, True)
        pose.append(p)
        motion.append(m)
        centre.append(BEHAVIORS.index(labels[start + WINDOW // 2]))
        starts.append(start)
    return np.stack(pose), np.stack(motion), np.array(centre), starts


def frame_macro_f1(model: WindowStatsGBT, test: list, spec: FeatureSpec) -> dict:
    truth, predicted = [], []
    for arrays, labels in test:
        pose, motion, _, starts = windows(arrays, spec, labels, STRIDE)
        probs = model.predict_proba(pose, motion)
        total = np.zeros((len(labels), len(BEHAVIORS)))
        for start, p in zip(starts, probs):
            total[start:start + WINDOW] += frame_weights(WINDOW)[:, None] * p
        covered = total.sum(1) > 0
        truth += [BEHAVIORS.index(label) for label, c in zip(labels, covered) if c]
        predicted += list(total[covered].argmax(1))
    scores = classification_scores(truth, predicted, list(range(len(BEHAVIORS))))
    return {"macro_f1": round(scores["macro_f1"], 4),
            "per_class_f1": {BEHAVIORS[i]: round(s["f1"], 3) for i, s in scores["per_class"].items()}}


def evaluate_source(train: list, test: list) -> dict:
    spec = FeatureSpec("body", len(KEYPOINT_NAMES), body_axis(KEYPOINT_NAMES, len(KEYPOINT_NAMES)), 0.0, 0, True)
    parts = [windows(arrays, spec, labels, STRIDE) for arrays, labels in train]
    pose, motion, labels = (np.concatenate([p[i] for p in parts]) for i in range(3))
    cfg = ModelConfig(classifier="gbt", backbone="none", use_pose=True, num_classes=len(BEHAVIORS),
                      pose_dim=spec.pose_dim, box_motion_dim=spec.motion_dim)
    model = WindowStatsGBT(cfg).fit_arrays(pose, motion, labels)
    return frame_macro_f1(model, test, spec)


def with_conf(xy: np.ndarray) -> np.ndarray:
    return np.concatenate([xy, np.ones(xy.shape[:2] + (1,), np.float32)], -1).astype(np.float32)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for the generated videos (reused)")
    parser.add_argument("--train_videos", type=int, default=8)
    parser.add_argument("--test_videos", type=int, default=4)
    parser.add_argument("--num_frames", type=int, default=900)
    parser.add_argument("--noise_px", type=float, nargs="+", default=[2.0, 4.0, 8.0],
                        help="standard deviation of the noise added to the true keypoints, px")
    parser.add_argument("--yolo_weights", default=str(ROOT / "tests" / "fixtures" / "tiny_yolo_pose.pt"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the keypoint noise")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def main(args) -> dict:
    work = Path(args.work)
    splits = {"train": dataset(work / "train", args.train_videos, args.num_frames, 100),
              "test": dataset(work / "test", args.test_videos, args.num_frames, 200)}
    rng, results = np.random.default_rng(args.seed), {}
    sources = {"true keypoints": lambda kp, box, video: (with_conf(kp), box)}
    for sigma in args.noise_px:
        sources[f"true + {sigma:g} px noise"] = (lambda s: lambda kp, box, video: (
            with_conf(kp + rng.normal(0, s, kp.shape).astype(np.float32)), box))(sigma)
    settings = PreprocessingConfig(yolo_weights=args.yolo_weights, device="cpu", detector_backend="torch")
    detector = build_detector("yolo", settings)
    sources["detector keypoints"] = lambda kp, box, video: detected(video, detector, settings)
    for name, source in sources.items():
        data = {split: [(per_frame_arrays(*source(kp, box, video)), labels) for labels, kp, box, video in videos]
                for split, videos in splits.items()}
        results[name] = evaluate_source(data["train"], data["test"])
        if name == "detector keypoints":  # how far the detector's keypoints are from the truth
            errors = [np.linalg.norm(arrays["keypoints_xy_raw"] - kp, axis=-1)
                      for (arrays, _), (_, kp, _, _) in zip(data["test"], splits["test"])]
            results[name]["keypoint_error_px_median"] = round(float(np.nanmedian(np.concatenate(errors))), 2)
        print(f"{name:24s} per-frame macro-F1 {results[name]['macro_f1']:.3f}  {results[name]['per_class_f1']}",
              flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
