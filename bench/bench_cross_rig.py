"""Train on one rig, test on others: how much per-frame macro-F1 a pose model loses when the camera, frame rate,
tracker or keypoint names change (generated pose files, the truth known).

Rigs (each its own animals: recordings of other seeds than the training ones):
  base        30 fps, the generator's scale, tracker noise 1.5 px, the generator's keypoint names
  fps50       the same animals' behaviour timing filmed at 50 fps
  fps15       15 fps (a cheap camera)
  far         the camera twice as high: every coordinate halved (tracker noise stays 1.5 px, so relatively doubled)
  near        the camera closer: coordinates x1.6
  jitter      a noisier tracker: 4 px of noise, 8% of points dropped
  renamed     another tracker's keypoint names in another order, plus one the model never saw; read with
              --keypoint_map (the names a plain-name match cannot find)
  rest_heavy  the base rig, but two thirds of the time resting (behaviour shares 8:1:1:1:1): what per-recording
              normalisation (--feature_normalisation recording) assumes away
  walk_heavy  the same with walking
  variant     another generator (utils.synthetic_variant, never used to train): 3D mice and rats of their own
              proportions through a perspective camera 60-200 cm high with lens distortion, other rearing,
              grooming, walking and turning kinematics, a noisier tracker
The model is trained on `--train_rig` (4 recordings, 2 validate) with the given classifier flags, through
prepare_sequences_from_yolo.py --detector pose_file, train_behavior_lstm.py and benchmark_pipeline.py. Each rig is
scored on 3 held-out recordings: per-frame macro-F1 and segment macro-F1, `lost` = the training rig's own held-out
score - the rig's, and `unfamiliar_share` (frames farther from the training data than the drift limit: what the
drift warning sees). Beside each rig, `simple_forest`: a SimBA-style random forest (bench/baselines.py) trained on
all 6 training recordings, coordinates calibrated in cm as a lab would (the generator's scale is known).
`shift` lists the features that moved most between the training rig and each rig (utils.results.drift.feature_shift:
how far a behaviour's median moved relative to how far the behaviours lie apart, per-frame body features of the
current version, truth labels) beyond how far they move between the training rig's own animals (its held-out
recordings: heading and side are signed, so other animals turning the other way move them too): {feature: [shift on
the rig, shift on the training rig's held-out recordings]}. Above about 0.5, a threshold learned on one rig fails on
the other.

`--body_length_cm L`: the model's features measured in units of L cm at each rig's known scale (preparation with
--pixels_per_cm and --body_length_cm, every rig scored with its own --pixels_per_cm) instead of each animal's body
length; the variant rig is then left out, as each of its recordings has a scale of its own.

Usage:
    python bench/bench_cross_rig.py --work /tmp/rig --output bench/results_cross_rig.json
    python bench/bench_cross_rig.py --work /tmp/rig_cm --body_length_cm 9 --output out.json
    python bench/bench_cross_rig.py --work /tmp/rig_lstm --train_flags --classifier neural --backbone none --use_pose
"""
import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import benchmark_pipeline  # noqa: E402
import prepare_sequences_from_yolo  # noqa: E402
from training.engine import train, training_config  # noqa: E402
from utils.features.motion import (body_axis, body_feature_names, body_pose_features,  # noqa: E402
                                   track_scale_references)
from utils.io import report_json  # noqa: E402
from utils.readers.pose_io import conform_keypoints, parse_keypoint_map, read_pose_file, write_pose_file  # noqa: E402
from utils.results.drift import feature_shift  # noqa: E402
from utils.results.metrics import classification_scores, segment_f1  # noqa: E402
from utils.synthetic import (BEHAVIORS, KEYPOINT_NAMES, sample_label_sequence, simulate_pose,  # noqa: E402
                             write_label_csv)
from utils.synthetic_variant import simulate_variant_pose  # noqa: E402
from baselines import SimpleForest, simple_features  # noqa: E402

# the renamed rig's tracker: its names for the generator's keypoints, listed in its own order, plus an implant
RENAMED = {"nose": "Snout", "left_ear": "Ear L", "right_ear": "Ear R", "neck": "Neck", "tail_base": "Tail Base",
           "tail_tip": "Tail End"}
RENAMED_MAP = ["Snout=nose", "Ear L=left_ear", "Ear R=right_ear", "Tail End=tail_tip"]  # Neck, Tail Base match plainly


@dataclass
class Rig:
    fps: float = 30.0
    scale: float = 1.0
    noise_px: float = 1.5
    dropout: float = 0.02
    renamed: bool = False
    generator: str = "project"  # or "variant": utils.synthetic_variant
    shares: tuple = ()  # (behaviour, relative share) pairs; () = every behaviour equally often


# the project generator's calibration: a 9 cm mouse (utils.synthetic.METRES_PER_BODY_LENGTH) is 63 px long on
# average at scale 1 (sample_style draws 48-78 px)
PROJECT_PX_PER_CM = 63 / 9


RIGS = {"base": Rig(), "fps50": Rig(fps=50.0), "fps15": Rig(fps=15.0), "far": Rig(scale=0.5),
        "near": Rig(scale=1.6), "jitter": Rig(noise_px=4.0, dropout=0.08), "renamed": Rig(renamed=True),
        "rest_heavy": Rig(shares=tuple({"rest": 8, "walk": 1, "turn": 1, "groom": 1, "rear": 1}.items())),
        "walk_heavy": Rig(shares=tuple({"rest": 1, "walk": 8, "turn": 1, "groom": 1, "rear": 1}.items())),
        "variant": Rig(generator="variant", noise_px=0.0, dropout=0.0)}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for the recordings, runs and scores")
    parser.add_argument("--train_rig", default="base", choices=sorted(RIGS))
    parser.add_argument("--rigs", default=",".join(RIGS), help="rigs to test on, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each recording")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    parser.add_argument("--body_length_cm", type=float, default=None,
                        help="features in units of this many cm at each rig's scale (module docstring)")
    parser.add_argument("--train_flags", nargs=argparse.REMAINDER, default=[],
                        help="classifier flags as train_behavior_lstm.py takes them (default: --classifier gbt "
                             "--use_pose); must come last")
    return parser


def make_rig_recordings(folder: Path, rig: Rig, count: int, seconds: float, seed: int) -> None:
    """`count` pose files (DeepLabCut CSV) with their `frame,behavior` labels, as this rig records them. Bout
    lengths are drawn in seconds, so a behaviour lasts as long at any frame rate."""
    frames = int(round(seconds * rig.fps))
    short, long = int(round(0.67 * rig.fps)), int(round(2.5 * rig.fps))  # 20 and 75 frames at 30 fps
    px_per_cm = {}
    for i in range(count):
        rng = np.random.default_rng(seed * 7919 + i * 31)
        labels = sample_label_sequence(frames, rng, short, long, dict(rig.shares) if rig.shares else BEHAVIORS)
        if rig.generator == "variant":  # its own camera, lens and tracker noise
            xy, conf, animal = simulate_variant_pose(labels, seed * 7919 + i * 31 + 500_000, rig.fps)
            px_per_cm[f"rec_{i:02d}"] = animal.focal / animal.camera_height
        else:
            xy, conf = simulate_pose(labels, seed * 7919 + i * 31 + 500_000, rig.fps, noise_px=0.0,
                                     dropout=rig.dropout)
            xy = xy * rig.scale + np.random.default_rng(seed + i).normal(0, rig.noise_px, xy.shape)
            px_per_cm[f"rec_{i:02d}"] = PROJECT_PX_PER_CM * rig.scale
        names = list(KEYPOINT_NAMES)
        if rig.renamed:  # another order and an extra keypoint (an implant above the neck)
            order = [5, 4, 3, 2, 1, 0]
            implant = xy[:, [3]] + [0.0, -4.0 * rig.scale]
            xy, conf = np.concatenate([xy[:, order], implant], 1), np.concatenate([conf[:, order], conf[:, [3]]], 1)
            names = [RENAMED[names[k]] for k in order] + ["Implant"]
        write_pose_file(folder / f"rec_{i:02d}DLC_rig.csv", xy[:, None].astype(np.float32),
                        conf[:, None].astype(np.float32), names)
        write_label_csv(folder / f"rec_{i:02d}.csv", labels)
    (folder / "px_per_cm.json").write_text(json.dumps(px_per_cm))


def rig_scale(folder: Path) -> float:
    """The px/cm of a rig's recordings (all alike on the project generator's rigs), or None where each has its own."""
    scales = set(json.loads((folder / "px_per_cm.json").read_text()).values())
    return scales.pop() if len(scales) == 1 else None


def score_rig(model: Path, work: Path, name: str, rig: Rig) -> dict:
    scale = rig_scale(work / "test" / name)
    flags = ["--pose_fps", str(rig.fps)] + (["--pixels_per_cm", str(scale)] if scale else [])
    flags += ["--keypoint_map", *RENAMED_MAP] if rig.renamed else []
    result = benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
        "--model_path", str(model), "--input_dir", str(work / "test" / name), "--output_root",
        str(work / "scores" / name), "--device", "cpu", *flags]))
    frames = pd.concat([pd.read_csv(p) for p in (work / "scores" / name).rglob("*.frames.csv")])
    return {"macro_f1": round(result["scores"]["macro_f1"], 4),
            "segment_f1": round(result["scores"]["segment"]["macro_f1"], 4),
            # what the drift check sees: frames in a window beyond the drift limit (formats.md, frames.csv)
            "unfamiliar_share": round(float((frames["unfamiliar"] > 1).mean()), 3),
            "per_class": {c: round(v["f1"], 3) for c, v in result["scores"]["per_class"].items()}}


def rig_features(folder: Path, rig: Rig) -> tuple:
    """Per-frame body features (current version, scale references as the pipeline keeps them) and truth labels of
    every recording of a rig's folder, in the generator's keypoint order."""
    features, labels = [], []
    axis = body_axis(KEYPOINT_NAMES, len(KEYPOINT_NAMES))
    for path in sorted(folder.glob("*DLC_rig.csv")):
        recording, _ = conform_keypoints(read_pose_file(path), list(KEYPOINT_NAMES),
                                         parse_keypoint_map(RENAMED_MAP if rig.renamed else []), "the generator")
        xy, conf = recording.xy[:, 0], recording.conf[:, 0]
        features.append(body_pose_features(xy, conf, track_scale_references(xy, conf, axis), rig.fps, axis))
        labels.append(pd.read_csv(path.with_name(path.name.replace("DLC_rig.csv", ".csv")))["behavior"].to_numpy())
    return np.concatenate(features), np.concatenate(labels)


def forest_inputs(folder: Path, rig: Rig) -> tuple:
    """Per recording of a rig's folder: the simple forest's features and the truth labels."""
    px_per_cm = json.loads((folder / "px_per_cm.json").read_text())
    features, labels = [], []
    for path in sorted(folder.glob("*DLC_rig.csv")):
        recording, _ = conform_keypoints(read_pose_file(path), list(KEYPOINT_NAMES),
                                         parse_keypoint_map(RENAMED_MAP if rig.renamed else []), "the generator")
        stem = path.name.replace("DLC_rig.csv", "")
        features.append(simple_features(recording.xy[:, 0], recording.conf[:, 0], list(KEYPOINT_NAMES),
                                        px_per_cm[stem], rig.fps))
        labels.append(pd.read_csv(folder / f"{stem}.csv")["behavior"].to_numpy())
    return features, labels


def score_forest(forest: SimpleForest, folder: Path, rig: Rig) -> dict:
    features, labels = forest_inputs(folder, rig)
    predicted = [forest.predict(f) for f in features]
    classes = sorted(set(np.concatenate(labels)))
    scores = classification_scores(np.concatenate(labels), np.concatenate(predicted), classes)
    # over the recordings joined, as benchmark_pipeline scores
    segments = segment_f1(list(np.concatenate(labels)), list(np.concatenate(predicted)), classes)
    return {"macro_f1": round(scores["macro_f1"], 4), "segment_f1": round(segments["macro_f1"], 4),
            "per_class": {c: round(v["f1"], 3) for c, v in scores["per_class"].items()}}


def largest_shifts(shift: np.ndarray, same_rig: np.ndarray, count: int = 5) -> dict:
    """{feature name: [shift, shift between the training rig's own animals]} of the `count` features whose shift
    (feature_shift) exceeds the training rig's own the most."""
    names = body_feature_names(KEYPOINT_NAMES)
    return {names[i]: [round(float(shift[i]), 2), round(float(same_rig[i]), 2)]
            for i in np.argsort(-(shift - same_rig))[:count]}


def main(args) -> dict:
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    rig = RIGS[args.train_rig]
    make_rig_recordings(work / "train", rig, 6, args.seconds, seed=1)
    flags = ["--pose_fps", str(rig.fps)] + (["--keypoint_map", *RENAMED_MAP] if rig.renamed else [])
    if args.body_length_cm:
        if rig_scale(work / "train") is None:
            raise SystemExit(f"--body_length_cm: the {args.train_rig} rig's recordings have scales of their own")
        flags += ["--pixels_per_cm", str(rig_scale(work / "train")), "--body_length_cm", str(args.body_length_cm)]
    prepare_sequences_from_yolo.main(prepare_sequences_from_yolo.get_args_parser().parse_args([
        "--dataset_root", str(work / "train"), "--output_root", str(work / "prepared"), "--detector", "pose_file",
        "--window_size", "30", "--window_stride", "10", "--train_ratio", "0.67", "--val_ratio", "0.33",
        "--test_ratio", "0", *flags]))
    model_flags = args.train_flags or ["--classifier", "gbt", "--use_pose"]
    train(training_config(*model_flags, manifest_path=str(work / "prepared" / "sequence_manifest.json"),
                          output_dir=str(work / "runs"), run_name="model", num_workers=0, device="cpu"))
    model = work / "runs" / "model" / "best_model_macro_f1.pt"
    results = {"train_rig": args.train_rig, "train_flags": model_flags, "rigs": {}}
    trained_on, same_rig = rig_features(work / "train", rig), None
    forest = SimpleForest().fit(*forest_inputs(work / "train", rig))
    for name in [args.train_rig] + [r for r in args.rigs.split(",") if r != args.train_rig]:
        make_rig_recordings(work / "test" / name, RIGS[name], 3, args.seconds, seed=2)
        if args.body_length_cm and rig_scale(work / "test" / name) is None:
            print(f"{name}: left out, each recording has a scale of its own", flush=True)
            continue
        results["rigs"][name] = score_rig(model, work, name, RIGS[name])
        shift = feature_shift(*trained_on, *rig_features(work / "test" / name, RIGS[name]))
        same_rig = shift if same_rig is None else same_rig
        results["rigs"][name]["shift"] = largest_shifts(shift, same_rig)
        results["rigs"][name]["simple_forest"] = score_forest(forest, work / "test" / name, RIGS[name])
        scores = results["rigs"][name]
        print(json.dumps({name: [scores["macro_f1"], scores["simple_forest"]["macro_f1"]]}), flush=True)
    in_rig = results["rigs"][args.train_rig]["macro_f1"]
    for name, scores in results["rigs"].items():
        scores["lost"] = round(in_rig - scores["macro_f1"], 4)
    return report_json(results, args.output)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
