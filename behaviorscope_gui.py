"""BehaviorScope dashboard: every stage in one window, and a review loop that turns predictions into labels.

Usage:
    python behaviorscope_gui.py                      # tabs Preprocess, Train, Inference, Evaluate, Track,
                                                     # Detector, Review
    python behaviorscope_gui.py --config my_lab.yaml # forms start from your YAML
    python behaviorscope_gui.py --review_video v.mp4 --review_frames results/v.frames.csv  # Review tab on a result

Forms are generated from the settings schema (utils/schema.py) and the registries: the widget follows the
type, ranges and choices are checked as you type (a wrong value turns red; its reason is in the status line),
each setting's help is its tooltip. Run writes the tab's settings into the run folder and starts the stage
script as a subprocess (`python -u script --config file`); its output streams into the log pane, progress
lines drive the bar, elapsed time and ETA. Cancel stops gracefully (stop file / Ctrl-C, then terminate, then
kill); every stage writes its files atomically. One job runs at a time.
Review: open a video with its predictions (<video>.frames.csv), play and seek, correct bouts (confirm,
relabel, split, move boundaries, merge, delete; undo/redo; saved after every edit), export the labels as the
per-frame CSV preprocessing reads, see how well the model agreed, and retrain from the current model on the
corrected videos.
"""
import argparse
import sys
from pathlib import Path

from gui.app import BehaviorScopeApp
from utils.config import read_yaml_layer
from utils.errors import UserError, run_cli


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, metavar="PATH", help="YAML whose sections fill the forms")
    parser.add_argument("--review_video", default=None, metavar="VIDEO",
                        help="open the Review tab on this video (its labels beside it are shown as truth)")
    parser.add_argument("--review_frames", default=None, metavar="CSV",
                        help="with --review_video: its predictions; default <video stem>.frames.csv beside it")
    parser.add_argument("--review_model", default=None, metavar="PT",
                        help="with --review_video: the checkpoint that made the predictions (for Retrain)")
    return parser


def main(args):
    if args.config:
        read_yaml_layer(args.config)  # a bad file is a one-line error before any window opens
    review = review_paths(args) if args.review_video else None  # checked before any window opens
    app = BehaviorScopeApp(args.config)
    if review:
        app.notebook.select(app.tabs["Review"])
        app.tabs["Review"].open(*review, model_path=args.review_model)
    app.mainloop()


def review_paths(args) -> tuple:
    """(video, predictions CSV) for --review_video: the Review tab opens on them (what demo.py prints at its end)."""
    video = Path(args.review_video)
    frames_csv = Path(args.review_frames) if args.review_frames else video.with_name(f"{video.stem}.frames.csv")
    for path in (video, frames_csv):
        if not path.is_file():
            raise UserError(f"{path} does not exist; --review_video needs the video and its <stem>.frames.csv from "
                            f"inference (--review_frames)")
    return video, frames_csv


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    run_cli(main, get_args_parser())
