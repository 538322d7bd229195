"""Evaluate a trained model end to end on videos with ground-truth labels, and time the pipeline.

Usage:
    python benchmark_pipeline.py --model_path best.pt --input_dir labelled_videos/ --output_root eval/

Every video under --input_dir that has a label file beside it (<stem>.csv `frame,behavior`, or a BORIS
export, as in preprocessing) is classified with infer_behavior_lstm.py's settings; the model and detector
are loaded once. Reported over all frames
whose true label is known: per-frame accuracy, per-class precision/recall/F1, macro-F1 (over the classes that occur in the truth or the
predictions; utils/results/metrics.py), confusion matrix
(CSV and PNG), a truth-vs-prediction ethogram per video (<video>.truth_vs_prediction.png beside its
outputs), segment F1 (bouts matched one-to-one at IoU >= 0.5), and timing: frames/s end to end and
seconds per stage (load, decode, detect, crop, backbone, head, write). Written to eval_results.json and
eval_report.txt in --output_root.
"""
import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

import inference
from utils.errors import UserError, run_cli
from utils.io import atomic_write_csv, atomic_write_json, atomic_write_text
from utils.readers.labels import label_file_of, load_frame_labels
from utils.results.plots import plot_confusion_matrix, plot_ethogram
from utils.results.metrics import classification_scores, segment_f1
from utils.timing import StageTimer
from utils.readers.pose_io import find_recordings

log = logging.getLogger("benchmark")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return inference.get_folder_args_parser(__doc__, "videos with a label file beside each", add_help)


def labelled_videos(root: Path, pose_files: bool = False) -> list:
    """Videos under root with a label file beside them; with pose_files (a model trained on pose files), videos
    with a pose file beside them and pose files alone."""
    videos = [p for p in find_recordings(root, pose_files, []) if label_file_of(p)]
    if not videos:
        raise UserError(f"no {'recording' if pose_files else 'video'} with a label file beside it under {root}; "
                        f"expected <video> (or a pose file) + <stem>.csv")
    return videos


def evaluate(true: list, pred: list, class_names: list) -> dict:
    """Per-frame and bout-level scores over frames with a known true label (definitions: utils/results/metrics.py)."""
    known = [i for i, t in enumerate(true) if t is not None]
    scores = classification_scores([true[i] for i in known], [pred[i] for i in known], class_names)
    return {"frames_evaluated": len(known), **scores, "segment": segment_f1(true, pred, class_names)}


def timing(results: list, load_seconds: float) -> dict:
    """Frames/s end to end (the one-off model and detector loading included) and seconds per stage."""
    frames = sum(r["frames"] for r in results)
    seconds = load_seconds + sum(r["total_seconds"] for r in results)
    stages = {"load": load_seconds}
    for r in results:
        for k, v in r["seconds"].items():
            stages[k] = stages.get(k, 0.0) + v
    return {"frames": frames, "seconds": seconds, "frames_per_second": frames / seconds if seconds else 0.0,
            "stage_seconds": stages, "videos_with_reused_detections": sum(bool(r["detections_reused"]) for r in results)}


def report_text(scores: dict, times: dict, class_names: list) -> str:
    lines = [f"frames evaluated: {scores['frames_evaluated']}", f"per-frame accuracy: {scores['accuracy']:.3f}",
             f"per-frame macro-F1: {scores['macro_f1']:.3f}", f"segment macro-F1 (IoU >= 0.5): "
             f"{scores['segment']['macro_f1']:.3f}", "",
             f"{'class':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}{'segment f1':>12}"]
    for c in class_names:
        s = scores["per_class"][c]
        lines.append(f"{c:<16}{s['precision']:>10.3f}{s['recall']:>10.3f}{s['f1']:>10.3f}{s['support']:>10}"
                     f"{scores['segment'][c]['f1']:>12.3f}")
    lines += ["", f"end to end: {times['frames_per_second']:.1f} frames/s ({times['frames']} frames, "
                  f"{times['seconds']:.1f} s)"]
    lines += [f"  {k:<10}{v:>8.2f} s ({100 * v / times['seconds']:.0f}%)" for k, v in times["stage_seconds"].items()]
    if times["videos_with_reused_detections"]:  # a speed measured without the detector is not the pipeline's
        lines.append(f"  detections of {times['videos_with_reused_detections']} video(s) replayed from an earlier run "
                     f"(--no-reuse_detections to time the detector too)")
    return "\n".join(lines) + "\n"


def main(args) -> dict:
    root, out_root = Path(args.input_dir), Path(args.output_root)
    true_all, pred_all, results, class_names = [], [], [], None
    load_timer = StageTimer()
    cfg, predictor = inference.load_folder_predictor(args, load_timer)  # loaded once for every video
    for video in labelled_videos(root, predictor.detector.reads_pose_files):
        first = inference.classify_in_tree(predictor, cfg, root, out_root, video)
        for result in [first] + first["other_animals"]:  # one per animal of a multi-animal pose file
            class_names = result["class_names"]
            labels = load_frame_labels(label_file_of(video), result["frames"], result["fps"],
                                       result["animal"] or predictor.settings.boris_subject, media=video)
            truth = [labels.label_at(f) for f in range(result["frames"])]
            name = Path(result["paths"]["bouts"]).name.removesuffix(".behavior.csv")
            plot_ethogram(result["labels"], result["frames_table"]["confidence"], class_names, result["fps"],
                          Path(result["paths"]["bouts"]).with_name(f"{name}.truth_vs_prediction.png"), truth=truth)
            true_all += truth
            pred_all += list(result["labels"])
            true_all.append(None)  # a separator frame, so bouts never run across two videos
            pred_all.append("no_window")
            results.append(result)
    scores, times = evaluate(true_all, pred_all, class_names), timing(results, load_timer.seconds["load"])
    out_root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_root / "eval_results.json", {
        "scores": scores, "timing": times, "videos": [str(r["paths"]["bouts"]) for r in results],
        "drift": {Path(r["paths"]["bouts"]).name: r["drift"] for r in results}})
    cm = scores["confusion"]
    atomic_write_csv(out_root / "confusion_matrix.csv",
                     pd.DataFrame(cm["counts"], index=cm["rows"], columns=cm["columns"]).rename_axis("true").reset_index())
    plot_confusion_matrix(np.array(cm["counts"]), cm["rows"], cm["columns"], out_root / "confusion_matrix.png")
    text = report_text(scores, times, class_names)
    atomic_write_text(out_root / "eval_report.txt", text)
    print(text)
    return {"scores": scores, "timing": times}


def score_folder(model_path, input_dir, output_root, device: str = "cpu") -> dict:
    """main() with its defaults on one folder, reduced to what the benches tabulate: per-frame and segment macro-F1 and
    the per-class F1, rounded to 4 places."""
    scores = main(get_args_parser().parse_args(["--model_path", str(model_path), "--input_dir", str(input_dir),
                                                "--output_root", str(output_root), "--device", device]))["scores"]
    return {"macro_f1": round(scores["macro_f1"], 4), "segment_f1": round(scores["segment"]["macro_f1"], 4),
            "per_class_f1": {c: round(s["f1"], 4) for c, s in scores["per_class"].items()}}


if __name__ == "__main__":
    run_cli(main, get_args_parser())
