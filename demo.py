"""BehaviorScope demo on built-in data: generate a small synthetic dataset and preprocess it.

Usage:
    python3 demo.py                      # writes demo_output/
    python3 demo.py --output_dir /tmp/bs_demo --videos_per_class 4

Uses only what ships with the project: the synthetic video generator and the committed tiny YOLO-pose
detector (tests/fixtures/tiny_yolo_pose.pt, trained by tools/train_tiny_yolo.py). Nothing is downloaded.
"""
import argparse
import os
from pathlib import Path

import prepare_sequences_from_yolo as prepare
from utils.errors import run_cli
from utils.synthetic import make_class_folder_dataset

ROOT = Path(__file__).resolve().parent
TINY_YOLO = ROOT / "tests" / "fixtures" / "tiny_yolo_pose.pt"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run BehaviorScope on generated demo data.", add_help=add_help)
    parser.add_argument("--output_dir", default="demo_output", help="folder for the demo data and outputs")
    parser.add_argument("--videos_per_class", type=int, default=3, help="generated clips per behaviour")
    parser.add_argument("--num_frames", type=int, default=90, help="frames per generated clip")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated videos")
    return parser


def main(args):
    os.environ.setdefault("YOLO_OFFLINE", "1")
    out = Path(args.output_dir)
    data = out / "data"
    print(f"1/2 generating {args.videos_per_class} clips per behaviour in {data}")
    make_class_folder_dataset(data, args.videos_per_class, args.num_frames, args.seed)
    print("2/2 detecting, cropping and windowing with the tiny YOLO-pose detector")
    prep_args = prepare.get_args_parser().parse_args([
        "--dataset_root", str(data), "--output_root", str(out / "prepared"), "--yolo_weights", str(TINY_YOLO),
        "--yolo_imgsz", "320", "--device", args.device, "--save_frame_crops"])
    manifest = prepare.main(prep_args)
    print(f"\nDone: {sum(len(v) for v in manifest['splits'].values())} windows indexed in "
          f"{out / 'prepared' / 'sequence_manifest.json'}; QA crops in {out / 'prepared' / 'qa_crops'}")
    return manifest


if __name__ == "__main__":
    run_cli(main, get_args_parser())
