"""Embeddings of recordings, maps of them, and behaviour groups found without labels, to review and name.

Usage:
    python embed_behavior.py --model_path runs/gbt/best_model_macro_f1.pt --input_dir recordings/ --output_root emb/
    python embed_behavior.py --model_path runs/pretrained/best_model.pt --input_dir pose/ --output_root emb/ --groups hdbscan

Any trained model (window networks, dense models, gbt) or a pretrained one (pretrain_pose.py) reads every recording
under --input_dir (videos, or pose files with --detector pose_file models) with its own settings, as inference
does; each frame is described by the model's representation (--embedding model) or by the features it is given
(--embedding inputs). Written to --output_root (utils/results/embeddings.py has the rules; docs/formats.md the layouts):
    <name>.embeddings.npz      per-frame and per-window embeddings, the model's labels, the groups
    embedding_pca.png, embedding_umap.png   maps coloured by group, the model's label, recording, time, and the
                               known behaviour where a label file lies beside a recording
    groups.csv                 per group: frames, bouts, typical bout, the model's most common label, the known one
    groups/<name>.frames.csv   the groups as a result the dashboard's Review tab opens: name each group's bouts
                               (add a behaviour, relabel, export) and they become a label file
    clips/group_XX/<name>_fNNNNNNN.mp4   the longest bouts of each group (recordings with video)
    embedding_report.json      the grouping chosen (silhouette per number of groups), agreement with known labels
                               (adjusted Rand index, purity per behaviour), timing
"""
import argparse
import logging
import time
from pathlib import Path

from predictor import Predictor
from utils.config import add_config_arguments, resolve_config
from utils.errors import UserError, run_cli
from utils.logging_utils import setup_logging
from utils.readers.labels import label_file_of, load_frame_labels
from utils.readers.pose_io import find_recordings
from utils.results import embeddings as emb
from utils.schema import EmbeddingConfig, InferenceConfig

log = logging.getLogger("embed")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, (InferenceConfig, EmbeddingConfig), required=("model_path",),
                         exclude=("video_path", "output_dir"))
    parser.add_argument("--input_dir", required=True, help="folder of recordings (videos, or pose files), searched "
                                                           "recursively")
    parser.add_argument("--output_root", required=True, help="folder for the embeddings, maps, groups and clips")
    return parser


def embed_recordings(predictor: Predictor, root: Path) -> list:
    """One emb.RecordingEmbedding per recording (and animal) under root."""
    recordings = find_recordings(root, predictor.detector.reads_pose_files, [])
    if not recordings:
        raise UserError(f"no recording under {root}; give a folder of videos (or of pose files for a model "
                            f"trained on them)")
    out = []
    for path in recordings:
        for animal in predictor.animals(path):
            prediction = predictor.predict_video(path, animal=animal)
            label_file = label_file_of(path)
            truth = None
            if label_file is not None:
                labels = load_frame_labels(label_file, prediction.frames, prediction.fps,
                                           animal or predictor.settings.boris_subject, media=path)
                truth = [labels.label_at(f) for f in range(prediction.frames)]
            out.append(emb.recording_embedding(path, root, animal, prediction, predictor.class_names, truth))
            log.info("%s%s: %d frames, %d windows", path, f" ({animal})" if animal else "", prediction.frames,
                     prediction.windows)
    return out


def main(args):
    started = time.monotonic()
    sections = resolve_config(args, (InferenceConfig, EmbeddingConfig), required=("model_path",))
    cfg, options = sections.embedding, sections.inference
    out_root = Path(args.output_root)
    out_root.mkdir(parents=True, exist_ok=True)
    setup_logging(out_root / "embed.log")
    emb.check_umap(cfg.umap)  # before any recording is read
    predictor = Predictor.from_checkpoint(options.model_path, options)
    predictor.keep_embeddings, predictor.embed_inputs = True, cfg.embedding == "inputs"
    recordings = embed_recordings(predictor, Path(args.input_dir))
    embedded = time.monotonic()
    report = emb.find_groups(recordings, cfg)
    report["timing"] = {"embed_seconds": round(embedded - started, 2)}
    emb.write_recordings(recordings, out_root, report)
    emb.write_groups(recordings, out_root, report)
    emb.write_maps(recordings, out_root, cfg, report)
    emb.write_clips(recordings, out_root, cfg.clips_per_group)
    report["timing"]["total_seconds"] = round(time.monotonic() - started, 2)
    emb.write_report(out_root, report, options.model_path)
    return report


if __name__ == "__main__":
    run_cli(main, get_args_parser())
