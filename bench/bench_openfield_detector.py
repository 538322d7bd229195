"""A YOLO-pose detector for DeepLabCut's open-field arena from its 116 hand-labelled frames, then tracking a
whole video of that arena beside DeepLabCut's own pose (../shared/data/openfield; never copied into the repo).

1. train_detector.py on labeled-data/m4s1 (a share held out; those frames give the keypoint error), optionally
   with DeepLabCut's predictions on m3v1mp4 as pseudo-labels (--pseudo);
2. track_video.py on m3v1mp4.mp4 with the trained detector (--runs times: frames/s as the median), and on
   m3v1mp4_DLC.csv with --detector pose_file;
3. detection rate, distance travelled by each (positions averaged over 0.3 s), and the keypoint distance between
   the detector's and DeepLabCut's keypoints where DeepLabCut's likelihood is above 0.9.

Usage:
    YOLO_OFFLINE=1 python bench/bench_openfield_detector.py --work /tmp/detexp/b480 --pseudo --epochs 40 --imgsz 480
    YOLO_OFFLINE=1 python bench/bench_openfield_detector.py --work /tmp/detexp/b480 --skip_training   # reuse best.pt
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
import track_video  # noqa: E402
import train_detector  # noqa: E402
from utils.io import report_json  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "openfield"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="train_detector.py output folder (reused with --skip_training)")
    parser.add_argument("--pseudo", action="store_true", help="add DeepLabCut's m3v1mp4 predictions as pseudo-labels")
    parser.add_argument("--pseudo_every", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--imgsz", type=int, default=480)
    parser.add_argument("--skip_training", action="store_true", help="evaluate the existing <work>/best.pt")
    parser.add_argument("--runs", type=int, default=3, help="tracking runs for the frames/s median")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    return parser


def train(args, work: Path) -> dict:
    argv = ["--dlc_labels", str(DATA / "labeled-data" / "m4s1"), "--output_dir", str(work), "--epochs",
            str(args.epochs), "--imgsz", str(args.imgsz), "--device", args.device]
    if args.pseudo:  # DeepLabCut's file is not named <stem>DLC_<scorer>.csv, so it is named here
        argv += ["--pseudo_videos", str(DATA / "m3v1mp4.mp4"), "--pseudo_pose", str(DATA / "m3v1mp4_DLC.csv"),
                 "--pseudo_every", str(args.pseudo_every)]
    start = time.perf_counter()
    report = train_detector.main(train_detector.get_args_parser().parse_args(argv))
    return {**report, "train_seconds": round(time.perf_counter() - start, 1)}


def track(argv: list) -> tuple:
    start = time.perf_counter()
    result, = track_video.main(track_video.get_args_parser().parse_args(argv))
    return result, time.perf_counter() - start


def keypoint_agreement(yolo_csv: Path, dlc_csv: Path) -> dict:
    """Pixel distance between the detector's keypoints and DeepLabCut's, where DeepLabCut is confident."""
    ours = pd.read_csv(yolo_csv)
    theirs = pd.read_csv(dlc_csv, header=[0, 1, 2], index_col=0).to_numpy().reshape(len(ours), -1, 3)
    xy = np.stack([ours[[f"kp{k}_x", f"kp{k}_y"]].to_numpy() for k in range(theirs.shape[1])], 1)
    distance = np.linalg.norm(xy - theirs[..., :2], axis=-1)[theirs[..., 2] > 0.9]
    distance = distance[np.isfinite(distance)]
    return {"keypoints_compared": int(distance.size), "median_px": round(float(np.median(distance)), 1),
            "p90_px": round(float(np.quantile(distance, 0.9)), 1)}


def main(args) -> dict:
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is not there: this bench needs the shared open-field data")
    work = Path(args.work)
    report = json.loads((work / "report.json").read_text()) if args.skip_training else train(args, work)
    tracks = work / "tracks"
    seconds = []
    for _ in range(args.runs):
        yolo, took = track(["--video_path", str(DATA / "m3v1mp4.mp4"), "--yolo_weights", str(work / "best.pt"),
                            "--output_dir", str(tracks / "yolo"), "--device", args.device])
        seconds.append(took)
    dlc_file = tracks / "m3v1mp4DLC_resnet50_openfield.csv"  # DeepLabCut's naming, so it pairs as a pose file
    dlc_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "m3v1mp4_DLC.csv", dlc_file)
    dlc, _ = track(["--video_path", str(dlc_file), "--detector", "pose_file", "--pose_fps", "30",
                    "--output_dir", str(tracks / "dlc")])
    frames = yolo["summary"]["frames"]
    results = {
        "detector": report,
        "m3v1mp4": {"frames": frames, "detection_percent": round(yolo["summary"]["frames_with_animal_percent"], 2),
                    "frames_per_second_median": round(frames / statistics.median(seconds), 1),
                    "seconds_per_run": [round(s, 1) for s in seconds],
                    "distance_px_detector": round(yolo["summary"]["distance_px"], 1),
                    "distance_px_deeplabcut": round(dlc["summary"]["distance_px"], 1),
                    "keypoints_vs_deeplabcut": keypoint_agreement(yolo["paths"]["tracking"], DATA / "m3v1mp4_DLC.csv")}}
    return report_json(results, args.output)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
