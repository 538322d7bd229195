"""Label efficiency: a dense model trained with 5-100% of the frames labelled, from scratch and after self-supervised
pretraining on every frame without its label (generated pose files, the truth known).

Recordings (utils.synthetic.make_pose_file_dataset, 30 fps): `--recordings` labelled ones (split by recording into
train and validation by prepare_sequences_from_yolo.py), `--unlabelled` more without labels, and 3 held-out recordings
of other animals scored per frame (benchmark_pipeline.py: macro-F1 and segment macro-F1). A labelled share keeps the
labels of random stretches of `--block_s` seconds in every labelled recording (a labeller marks stretches, not single
frames) and drops the rest; the classes must all appear, else another draw is made. Pretraining (pretrain_pose.py)
sees every labelled and unlabelled recording's pose file, once per seed; fine-tuning starts from its best_model.pt
(--init_from). `gbt` (gradient-boosted trees on the windows whose centre frame is labelled) is today's reference.
Each configuration runs `--seeds` times (training seed and label draw); medians and the spread are reported, with
`pretrain_seconds` per seed and the frames pretrained on. With `--label_draw D` every seed keeps the same labelled
stretches (draw D) and only the training and pretraining seeds vary: the spread is then the training's own, apart
from which frames a labeller happened to mark.

Usage:
    python bench/bench_label_efficiency.py --work /tmp/label_eff --output bench/results_label_efficiency.json
"""
import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import benchmark_pipeline  # noqa: E402
import prepare_sequences_from_yolo  # noqa: E402
from training.engine import train, training_config  # noqa: E402
from training.pretrain import pretrain  # noqa: E402
from pretrain_pose import SECTIONS as PRETRAIN_SECTIONS  # noqa: E402
from utils.config import add_config_arguments, resolve_config  # noqa: E402
from utils.errors import UserError  # noqa: E402
from utils.io import report_json  # noqa: E402
from utils.readers.labels import keep_label_stretches  # noqa: E402
from utils.synthetic import make_pose_file_dataset  # noqa: E402


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for the recordings, runs and scores")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.05, 0.1, 0.25, 1.0],
                        help="shares of the labelled recordings' frames that keep their labels")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--label_draw", type=int, default=None,
                        help="the same labelled stretches (this draw) for every seed; default: each seed its own draw")
    parser.add_argument("--recordings", type=int, default=8, help="labelled recordings (train + validation)")
    parser.add_argument("--unlabelled", type=int, default=8, help="more recordings without labels, for pretraining")
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each recording")
    parser.add_argument("--block_s", type=float, default=2.0, help="length of each labelled stretch")
    parser.add_argument("--pretrain_epochs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=60, help="fine-tuning and training from scratch: at most")
    parser.add_argument("--models", nargs="+", default=["scratch", "pretrained", "gbt"],
                        choices=["scratch", "pretrained", "gbt"])
    parser.add_argument("--init_lr_scales", type=float, nargs="+", default=[1.0],
                        help="fine-tuning: the pretrained weights' learning rate is lr times each of these (0 freezes "
                             "them), one model per value: pretrained (1) and pretrained_lr<value>")
    parser.add_argument("--masked_feature_losses", type=float, nargs="+", default=[0.0],
                        help="dense models (scratch and pretrained*): the weight of the auxiliary task of predicting "
                             "masked inputs beside the behaviour (--masked_feature_loss), one model per value: 0 is "
                             "the model as named, a weight w adds <name>_aux<w>")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def write_labels(folder: Path, source: Path, share: float, block: int, rng) -> None:
    """source's pose files, with label files that keep `share` of the frames, into folder."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for pose in sorted(source.glob("*DLC_synthetic.csv")):
        shutil.copy(pose, folder / pose.name)
        truth = pd.read_csv(source / pose.name.replace("DLC_synthetic", ""))["behavior"].tolist()
        kept = {f: label for f, label in enumerate(keep_label_stretches(truth, share, block, rng)) if label is not None}
        pd.DataFrame({"frame": list(kept), "behavior": list(kept.values())}).to_csv(
            folder / pose.name.replace("DLC_synthetic", ""), index=False)


def prepare(folder: Path, out: Path) -> dict:
    return prepare_sequences_from_yolo.main(prepare_sequences_from_yolo.get_args_parser().parse_args([
        "--dataset_root", str(folder), "--output_root", str(out), "--detector", "pose_file", "--pose_fps", "30",
        "--window_size", "30", "--window_stride", "10", "--train_ratio", "0.75", "--val_ratio", "0.25",
        "--test_ratio", "0"]))


def labelled_manifest(work: Path, share: float, block: int, seed: int, classes: set) -> Path:
    """A manifest of the labelled recordings keeping `share` of their labels; another draw until the training split
    holds every class (a labeller who marks too few stretches of a behaviour cannot train on it)."""
    for attempt in range(20):
        folder, out = work / f"labels_{share:g}_seed{seed}", work / f"prepared_{share:g}_seed{seed}"
        write_labels(folder, work / "labelled", share, block, np.random.default_rng(seed * 1000 + attempt))
        manifest = prepare(folder, out)
        if {e["class_name"] for e in manifest["splits"]["train"]} >= classes:
            return out / "sequence_manifest.json"
    raise UserError(f"share {share}: no draw of labelled stretches gives the training split every class")


def score(model: Path, test: Path, out: Path) -> dict:
    result = benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
        "--model_path", str(model), "--input_dir", str(test), "--output_root", str(out), "--device", "cpu"]))
    return {"macro_f1": round(result["scores"]["macro_f1"], 4),
            "segment_f1": round(result["scores"]["segment"]["macro_f1"], 4)}


def run_pretraining(work: Path, manifest: Path, pose_dir: Path, seed: int, epochs: int) -> tuple:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, PRETRAIN_SECTIONS)
    args = parser.parse_args(["--manifest_path", str(manifest), "--pose_dir", str(pose_dir), "--classifier", "mstcn",
                              "--use_pose", "--epochs", str(epochs), "--seed", str(seed), "--output_dir",
                              str(work / "pretrain"), "--run_name", f"seed{seed}", "--device", "cpu"])
    start = time.time()
    result = pretrain(resolve_config(args, PRETRAIN_SECTIONS))
    return Path(result.run_dir) / "best_model.pt", round(time.time() - start, 1), result.frames


def train_model(manifest: Path, work: Path, name: str, seed: int, epochs: int, init_from: Path = None,
                init_lr_scale: float = 1.0, masked_loss: float = 0.0) -> Path:
    """name: gbt, scratch* or pretrained* (with init_from)."""
    flags = (["--classifier", "gbt", "--use_pose"] if name == "gbt" else
             ["--classifier", "mstcn", "--use_pose", "--epochs", str(epochs), "--masked_feature_loss", str(masked_loss)])
    if init_from:
        flags += ["--init_from", str(init_from), "--init_lr_scale", str(init_lr_scale)]
    result = train(training_config(*flags, manifest_path=str(manifest), output_dir=str(work / "runs"),
                                   run_name=f"{name}_{manifest.parent.name}_s{seed}", num_workers=0, device="cpu",
                                   seed=seed))
    return Path(result.run_dir) / "best_model_macro_f1.pt"


def model_variants(models: list, scales: list, masked_losses: list = (0.0,)) -> list:
    """[(name, init_lr_scale, masked_feature_loss)]: each pretrained fine-tuning learning-rate scale, and for the
    dense models each auxiliary-task weight, is a model of its own."""
    out = []
    for name in models:
        if name == "pretrained":
            out += [("pretrained" if scale == 1 else f"pretrained_lr{scale:g}", scale) for scale in scales]
        else:
            out.append((name, 1.0))
    return [(f"{name}_aux{weight:g}" if weight else name, scale, weight) for name, scale in out
            for weight in (masked_losses if name != "gbt" else [0.0])]


def summary(values: list) -> dict:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4), "runs": values}


def main(args) -> dict:
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    frames = int(round(args.seconds * 30))
    make_pose_file_dataset(work / "labelled", args.recordings, frames, seed=21)
    make_pose_file_dataset(work / "test", 3, frames, seed=22)
    pool = work / "pretrain_pool"
    make_pose_file_dataset(pool, args.unlabelled, frames, seed=23, suffix="DLC_pool.csv")
    for labels in pool.glob("session_??.csv"):  # the pool is unlabelled
        labels.unlink()
    for pose in (work / "labelled").glob("*DLC_synthetic.csv"):
        shutil.copy(pose, pool / pose.name)
    classes = set(pd.concat([pd.read_csv(p) for p in (work / "labelled").glob("session_??.csv")])["behavior"])
    prepare(work / "labelled", work / "prepared_full")
    full = work / "prepared_full" / "sequence_manifest.json"
    results = {"settings": {k: v for k, v in vars(args).items() if k not in ("work", "output")}, "pretraining": {},
               "shares": {}}
    runs = {}
    for seed in range(args.seeds):
        checkpoint = None
        if "pretrained" in args.models:
            checkpoint, seconds, pretrained_frames = run_pretraining(work, full, pool, seed, args.pretrain_epochs)
            results["pretraining"][seed] = {"seconds": seconds, "frames": pretrained_frames}
        for share in args.shares:
            draw = seed if args.label_draw is None else args.label_draw
            manifest = labelled_manifest(work, share, int(args.block_s * 30), draw, classes)
            for name, scale, masked_loss in model_variants(args.models, args.init_lr_scales,
                                                           args.masked_feature_losses):
                model = train_model(manifest, work, name, seed, args.epochs,
                                    checkpoint if name.startswith("pretrained") else None, scale, masked_loss)
                scores = score(model, work / "test", work / "scores" / f"{name}_{share:g}_seed{seed}")
                runs.setdefault((share, name), []).append(scores)
                print(json.dumps({"share": share, "model": name, "seed": seed, "label_draw": draw, **scores}),
                      flush=True)
    for (share, name), scores in sorted(runs.items()):
        results["shares"].setdefault(f"{share:g}", {})[name] = {
            metric: summary([s[metric] for s in scores]) for metric in ("macro_f1", "segment_f1")}
    return report_json(results, args.output)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
