"""Behaviours found without labels: groups of frames (embed_behavior.py) against the generator's truth.

Generated pose files: labelled recordings whose labels only the supervised reference uses, and held-out recordings
of other animals, grouped and scored per frame (adjusted Rand index, purity per behaviour). Compared:
    raw_kmeans      k-means on the per-frame pose and box-motion features themselves (standardised, PCA to 16),
                    with k the true number of behaviours (given: an advantage) and with k chosen by silhouette
    pretrained      embed_behavior.py on an MS-TCN pretrained by masked modelling (pretrain_pose.py) on every
                    recording's pose (the held-out ones too) without labels: no label is used anywhere
    inputs          embed_behavior.py --embedding inputs: the per-frame features the models are given (B-SOiD's
                    way), standardised and grouped by the tool, no label and no learning
    gbt (reference) embed_behavior.py on gradient-boosted trees trained with the labels: what labels buy
Both embed_behavior.py runs choose k by silhouette (up to --max_groups) and smooth over 0.5 s, as by default; the
raw k-means is scored unsmoothed and smoothed alike. With --hour, the time embed_behavior.py takes (embeddings,
groups, both maps) for one hour of 30 fps pose.

Usage:
    python bench/bench_discovery.py --work /tmp/discovery --output bench/results_discovery.json
    python bench/bench_discovery.py --work /tmp/discovery_hour --hour --output bench/results_discovery_hour.json
"""
import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import embed_behavior  # noqa: E402
import prepare_sequences_from_yolo  # noqa: E402
import pretrain_pose  # noqa: E402
from data import WindowDataset  # noqa: E402
from training.engine import train, training_config  # noqa: E402
from utils.data.recordings import UNLABELLED, chunk_features, stitch_recordings  # noqa: E402
from utils.io import report_json  # noqa: E402
from utils.results.embeddings import choose_kmeans, group_purity, smooth_groups, standardised_pca  # noqa: E402
from utils.synthetic import BEHAVIORS, make_pose_file_dataset  # noqa: E402

PREPARE = ["--detector", "pose_file", "--pose_fps", "30", "--window_size", "30", "--window_stride", "10"]


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for the recordings, models and groups")
    parser.add_argument("--recordings", type=int, default=8, help="recordings to learn from (pretraining, trees)")
    parser.add_argument("--held_out", type=int, default=4, help="recordings of other animals, grouped and scored")
    parser.add_argument("--frames", type=int, default=900, help="frames per recording (30 fps)")
    parser.add_argument("--pretrain_epochs", type=int, default=15, help="epochs of masked modelling")
    parser.add_argument("--max_groups", type=int, default=12, help="embed_behavior.py --max_groups")
    parser.add_argument("--hour", action="store_true", help="time embed_behavior.py on one hour of pose instead")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def prepared(folder: Path, out: Path, *split) -> Path:
    prepare_sequences_from_yolo.main(prepare_sequences_from_yolo.get_args_parser().parse_args(
        ["--dataset_root", str(folder), "--output_root", str(out), *PREPARE, *split]))
    return out / "sequence_manifest.json"


def models(work: Path, manifest: Path, epochs: int, pose_dir: Path = None) -> dict:
    """{name: checkpoint}: the MS-TCN pretrained without labels (on the manifest's recordings and those of
    `pose_dir`) and the trees trained with the labels."""
    pretrain_pose.main(pretrain_pose.get_args_parser().parse_args([
        "--manifest_path", str(manifest), "--classifier", "mstcn", "--use_pose", "--output_dir", str(work / "runs"),
        "--run_name", "pretrained", "--device", "cpu", "--epochs", str(epochs)]
        + (["--pose_dir", str(pose_dir)] if pose_dir else [])))
    run = train(training_config(manifest_path=str(manifest), classifier="gbt", use_pose=True,
                                output_dir=str(work / "runs"), run_name="gbt", num_workers=0, device="cpu"))
    return {"pretrained": work / "runs" / "pretrained" / "best_model.pt",
            "gbt": Path(run.run_dir) / "best_model_macro_f1.pt"}


def embedded(model: Path, folder: Path, out: Path, max_groups: int, embedding: str = "model") -> dict:
    started = time.monotonic()
    report = embed_behavior.main(embed_behavior.get_args_parser().parse_args([
        "--model_path", str(model), "--input_dir", str(folder), "--output_root", str(out), "--device", "cpu",
        "--max_groups", str(max_groups), "--clips_per_group", "0", "--embedding", embedding]))
    return {"groups": report["groups"], "seconds": round(time.monotonic() - started, 1),
            "adjusted_rand_index": round(report.get("against_labels", {}).get("adjusted_rand_index", float("nan")), 4),
            "purity": {b: round(s["purity"], 4) for b, s in report.get("against_labels", {}).get("per_behaviour",
                                                                                                  {}).items()},
            "silhouette": report.get("silhouette"), "timing": report["timing"], "frames": report["frames"]}


def raw_kmeans(manifest: Path, max_groups: int) -> dict:
    """k-means on the held-out recordings' own per-frame features (the gbt's inputs, before its statistics)."""
    dataset = WindowDataset(manifest, "train", use_pose=True)  # every held-out recording, not augmented
    names = {i: c for c, i in dataset.manifest["class_to_idx"].items()}
    features, truth, lengths = [], [], []
    for rec in stitch_recordings(dataset, len(names)):
        pose, motion = chunk_features(dataset, rec, 0, len(rec.labels))
        features.append(np.concatenate([pose, motion], 1))
        truth += [names.get(int(y)) if y != UNLABELLED else None for y in rec.labels]
        lengths.append(len(rec.labels))
    z, _, _ = standardised_pca(np.concatenate(features))
    out = {}
    for name, k in (("true_k", len(names)), ("silhouette_k", None)):
        if k is None:
            labels, k, _ = choose_kmeans(z, max_groups)
        else:
            from sklearn.cluster import KMeans
            labels = KMeans(k, n_init=4, random_state=0).fit_predict(z)
        parts = np.split(labels, np.cumsum(lengths)[:-1])
        smoothed = np.concatenate([smooth_groups(p, 30.0, 0.5)[0] for p in parts])
        out[name] = {"k": int(k), "adjusted_rand_index": round(group_purity(truth, labels)["adjusted_rand_index"], 4),
                     "smoothed_adjusted_rand_index": round(group_purity(truth, smoothed)["adjusted_rand_index"], 4),
                     "purity": {b: round(s["purity"], 4) for b, s in group_purity(truth, smoothed)["per_behaviour"]
                                .items()}}
    return out


def hour_timing(work: Path, args) -> dict:
    """embed_behavior.py's time on one hour of pose (one 108 000-frame recording), with each model."""
    manifest = prepared(work / "labelled", work / "prepared", "--train_ratio", "0.75", "--val_ratio", "0.25",
                        "--test_ratio", "0")
    found = models(work, manifest, args.pretrain_epochs)
    make_pose_file_dataset(work / "hour", 1, 108_000, seed=303)
    return {name: embedded(model, work / "hour", work / f"hour_{name}", args.max_groups)
            for name, model in found.items()}


def main(args) -> dict:
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    make_pose_file_dataset(work / "labelled", args.recordings, args.frames, seed=301)
    results = {"settings": {k: v for k, v in vars(args).items() if k not in ("work", "output")},
               "behaviours": list(BEHAVIORS)}
    if args.hour:
        results["one_hour"] = hour_timing(work, args)
        return report_json(results, args.output)
    make_pose_file_dataset(work / "held_out", args.held_out, args.frames, seed=302)
    manifest = prepared(work / "labelled", work / "prepared", "--train_ratio", "0.75", "--val_ratio", "0.25",
                        "--test_ratio", "0")
    held = prepared(work / "held_out", work / "held_prepared", "--train_ratio", "1", "--val_ratio", "0",
                    "--test_ratio", "0")
    results["raw_kmeans"] = raw_kmeans(held, args.max_groups)
    print("raw_kmeans", results["raw_kmeans"], flush=True)
    found = models(work, manifest, args.pretrain_epochs, work / "held_out")
    runs = {"pretrained": (found["pretrained"], "model"), "inputs": (found["pretrained"], "inputs"),
            "gbt": (found["gbt"], "model")}
    for name, (model, embedding) in runs.items():
        results[name] = embedded(model, work / "held_out", work / f"groups_{name}", args.max_groups, embedding)
        print(name, results[name], flush=True)
        report_json(results, args.output)
    return report_json(results, args.output)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
