"""Which bouts to review: suggested (suggest_review.py's ranking) against bouts picked at random, with a simulated
reviewer who labels every frame of a chosen bout with the generator's truth.

A gradient-boosted model is trained on 2 labelled pose recordings (--train_recordings); it classifies a pool of
6 unlabelled recordings; K bouts of the pool (K = 5, 10, 20, 40) are reviewed, suggested (suggest_review.py's
queue; with --committee also the queue that adds other models' disagreement) or random (--repeats draws), and
retrain_behavior_model.py adds them to the training data; `in_use_f1` is the model a user who follows the
retrain's recommendation keeps (the new one only when its comparison says better). --shares gives the behaviours
a lab's common and rare frequencies (the same in every recording). Every model, the first included, is scored per
frame (macro-F1) on held-out recordings the corrections never saw. Pose files without video (the generator's
DeepLabCut CSVs), so one retrain takes seconds.

Usage:
    python bench/bench_active_learning.py --work /tmp/al --output bench/results_active_learning.json
    python bench/bench_active_learning.py --work /tmp/al_rare --shares rest=4,walk=4,turn=3,groom=1,rear=1 --committee 2
"""
import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import infer_behavior_lstm  # noqa: E402
import prepare_sequences_from_yolo  # noqa: E402
import retrain_behavior_model  # noqa: E402
from training.engine import train, training_config  # noqa: E402
from utils.results.metrics import classification_scores  # noqa: E402
from utils.results.review import suggest_bouts  # noqa: E402
from utils.synthetic import BEHAVIORS, make_pose_file_dataset  # noqa: E402
from utils.io import report_json  # noqa: E402

SUFFIX = "DLC_synthetic.csv"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="folder for the recordings, runs and corrections")
    parser.add_argument("--budgets", default="5,10,20,40", help="numbers of bouts reviewed")
    parser.add_argument("--repeats", type=int, default=2, help="random draws per budget")
    parser.add_argument("--frames", type=int, default=600, help="frames per generated recording")
    parser.add_argument("--train_recordings", type=int, default=2,
                        help="labelled recordings the first model is trained on (fewer: a weaker first model)")
    parser.add_argument("--shares", default=None,
                        help="how often each behaviour occurs in every recording, relative, e.g. "
                             "rest=4,walk=4,turn=3,groom=1,rear=1 (a lab's common and rare behaviours; default: "
                             "all equally often)")
    parser.add_argument("--committee", type=int, default=0,
                        help="also rank with disagreement: this many more models (trees with --gbt_max_features 0.5, "
                             "seeds 1..N) classify the pool, and the strategy 'committee' is suggest_bouts with "
                             "their tables as other models (suggest_review.py --other_results)")
    parser.add_argument("--oracle", action="store_true",
                        help="also the ceiling of any ranking: the bouts with the most wrong frames (the simulated "
                             "reviewer's truth), which no tool can know")
    parser.add_argument("--ensemble_members", type=int, default=1,
                        help="the first model's --ensemble_members (tree models on bootstraps, averaged); every "
                             "retrain keeps the model's settings")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def parse_shares(text) -> object:
    """{behaviour: relative share} from "rest=4,walk=4,...", or the generator's behaviours, equally often."""
    if not text:
        return BEHAVIORS
    shares = {name.strip(): float(value) for name, value in (part.split("=") for part in text.split(","))}
    if set(shares) != set(BEHAVIORS):
        raise SystemExit(f"--shares {text}: give a share for each of {', '.join(BEHAVIORS)}")
    return shares


def classify(model: Path, recordings: list, out: Path) -> dict:
    """{recording stem: its frames.csv table}."""
    tables = {}
    for path in recordings:
        infer_behavior_lstm.main(infer_behavior_lstm.get_args_parser().parse_args([
            "--model_path", str(model), "--video_path", str(path), "--output_dir", str(out), "--device", "cpu"]))
        stem = path.name[:-len(SUFFIX)]
        tables[stem] = pd.read_csv(out / f"{stem}.frames.csv")
    return tables


def held_out_f1(model: Path, held: list, out: Path) -> float:
    """Per-frame macro-F1 of the model over every frame of the held-out recordings."""
    truth, predicted = [], []
    for stem, table in classify(model, held, out).items():
        labels = pd.read_csv(held[0].parent / f"{stem}.csv")["behavior"].astype(str).tolist()
        truth += labels
        predicted += table["label"].astype(str).tolist()[:len(labels)]
    return classification_scores(truth, predicted, sorted(BEHAVIORS))["macro_f1"]


def most_wrong_bouts(bouts: pd.DataFrame, tables: dict, pool_dir: Path, count: int) -> pd.DataFrame:
    """The `count` bouts with the most frames the model got wrong, by the generator's truth."""
    wrong = []
    for stem, start, end in zip(bouts["recording"], bouts["start_frame"], bouts["end_frame"]):
        truth = pd.read_csv(pool_dir / f"{stem}.csv")["behavior"].astype(str).to_numpy()[start:end + 1]
        wrong.append(int((truth != tables[stem]["label"].astype(str).to_numpy()[start:end + 1]).sum()))
    return bouts.assign(wrong=wrong).sort_values("wrong", ascending=False, kind="stable").head(count)


def review(bouts: pd.DataFrame, pool_dir: Path, folder: Path) -> int:
    """The simulated reviewer: every frame of each chosen bout gets its true label; one label file per recording
    (reviewed frames only) with its pose file beside it. Returns the frames reviewed."""
    folder.mkdir(parents=True)
    reviewed = 0
    for stem, chosen in bouts.groupby("recording"):
        truth = pd.read_csv(pool_dir / f"{stem}.csv")
        frames = sorted({f for s, e in zip(chosen["start_frame"], chosen["end_frame"]) for f in range(s, e + 1)})
        truth.iloc[frames].to_csv(folder / f"{stem}.csv", index=False)
        shutil.copy(pool_dir / f"{stem}{SUFFIX}", folder / f"{stem}{SUFFIX}")
        reviewed += len(frames)
    return reviewed


def model_in_use(comparison: Path, new_f1: float, first_f1: float) -> dict:
    """The retrain's verdict (comparison.json) and the held-out score of the model a user following its
    recommendation ends up with: the new one only when it was judged better, else the first."""
    result = json.loads(comparison.read_text())
    return {"verdict": result["verdict"], "in_use_f1": new_f1 if result["recommended"] == "new" else first_f1}


def main(args) -> dict:
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    behaviors = parse_shares(args.shares)
    make_pose_file_dataset(work / "train", args.train_recordings, args.frames, seed=1, behaviors=behaviors)
    pool = make_pose_file_dataset(work / "pool", 6, args.frames, seed=2, behaviors=behaviors)
    held = make_pose_file_dataset(work / "held", 3, args.frames, seed=3, behaviors=behaviors)
    prepare_sequences_from_yolo.main(prepare_sequences_from_yolo.get_args_parser().parse_args([
        "--dataset_root", str(work / "train"), "--output_root", str(work / "prepared"), "--detector", "pose_file",
        "--pose_fps", "30", "--window_size", "20", "--window_stride", "10", "--split_strategy", "window"]))
    manifest = str(work / "prepared" / "sequence_manifest.json")
    train(training_config(manifest_path=manifest, classifier="gbt", use_pose=True, output_dir=str(work / "runs"),
                          run_name="first", num_workers=0, ensemble_members=args.ensemble_members))
    first = work / "runs" / "first" / "best_model_macro_f1.pt"
    results = {"first_model_f1": held_out_f1(first, held, work / "eval" / "first"), "budgets": {}}
    tables = classify(first, pool, work / "pool_predictions")
    others = []
    for seed in range(1, args.committee + 1):
        train(training_config(manifest_path=manifest, classifier="gbt", use_pose=True, output_dir=str(work / "runs"),
                              run_name=f"member_{seed}", num_workers=0, gbt_max_features=0.5, seed=seed))
        others.append(classify(work / "runs" / f"member_{seed}" / "best_model_macro_f1.pt", pool,
                               work / f"pool_predictions_member_{seed}"))
    every_bout = suggest_bouts(tables)
    for budget in [int(b) for b in args.budgets.split(",")]:
        picks = {"suggested": [suggest_bouts(tables, budget)]}
        if others:
            picks["committee"] = [suggest_bouts(tables, budget, others)]
        if args.oracle:
            picks["oracle"] = [most_wrong_bouts(every_bout, tables, work / "pool", budget)]
        picks["random"] = [every_bout.sample(budget, random_state=r) for r in range(args.repeats)]
        results["budgets"][budget] = {}
        for strategy, draws in picks.items():
            scores = []
            for r, bouts in enumerate(draws):
                name = f"{strategy}_{budget}_{r}"
                frames = review(bouts, work / "pool", work / name / "corrected")
                retrain_behavior_model.main(retrain_behavior_model.get_args_parser().parse_args([
                    "--model_path", str(first), "--review_dir", str(work / name / "corrected"), "--run_name", name,
                    "--device", "cpu"]))
                new = work / name / "retrain" / "runs" / name / "best_model_macro_f1.pt"
                f1 = held_out_f1(new, held, work / "eval" / name)
                scores.append({"frames_reviewed": frames, "f1": f1,
                               **model_in_use(new.parent / "comparison.json", f1, results["first_model_f1"])})
            results["budgets"][budget][strategy] = {
                "runs": scores, "median_f1": statistics.median(s["f1"] for s in scores),
                "median_in_use_f1": statistics.median(s["in_use_f1"] for s in scores),
                "median_frames_reviewed": statistics.median(s["frames_reviewed"] for s in scores)}
        print(json.dumps({budget: {k: round(v["median_f1"], 4) for k, v in results["budgets"][budget].items()}}))
    runs = [s for b in results["budgets"].values() for v in b.values() for s in v["runs"]]
    results["worst_change_from_first"] = float(min(s["f1"] for s in runs) - results["first_model_f1"])
    results["worst_in_use_change_from_first"] = float(min(s["in_use_f1"] for s in runs) - results["first_model_f1"])
    return report_json(results, args.output)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
