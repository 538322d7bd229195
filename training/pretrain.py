"""Self-supervised pretraining of a dense model: masked modelling of pose and box-motion features (BehavERT's recipe:
spans of frames hidden, their values predicted) on recordings whose labels are not used; the multimodal kind with
two streams (pose, sensors) learns its cross-modal objective instead (model.MultimodalTCN.self_supervised_loss).

    result = pretrain(cfg)           # cfg: augmentation, model, training and pretraining sections (pretrain_pose.py)

Recordings: every window of the manifest (all splits, stitched back into recordings: utils.data.recordings) and
every pose file under `pose_dir`, read through the frame pipeline with the manifest's own preprocessing settings, so
their features are exactly those of training and inference. A tenth of the chunks (every tenth) is held out with
fixed masks: the held-out loss picks best_model.pt and is the curve to watch. Features, input scaling and the model
settings are recorded in the checkpoint; a dense model fine-tuned with --init_from it must match them
(training.dense.init_dense_weights).
"""
import copy
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model import DenseSequenceLabeller, ModelConfig, model_args, quantile_knots
from training.dense import chunk_batch, masked_feature_loss, net_inputs, span_mask
from training.run import StopFlag, dataset_of, open_run_folder
from utils.checkpoint import load_checkpoint, save_checkpoint
from utils.config import settings_dict
from utils.data.recordings import UNLABELLED, Recording, stitch_recordings
from utils.errors import UserError
from utils.io import atomic_write_csv
from utils.logging_utils import progress
from utils.results.plots import TrainingCurves
from utils.features.sensors import sensor_feature_dim
from utils.schema import DENSE_KINDS

log = logging.getLogger("train")
PRETRAINED = "masked modelling (pretrain_pose.py)"  # a pretraining checkpoint's `selection` starts with this
HELD_OUT_EVERY = 10  # every tenth chunk is held out


@dataclass
class PretrainResult:
    run_dir: str
    history: list
    recordings: int
    frames: int
    stopped: str = None


def pose_file_recordings(folder, dataset) -> list:
    """Every pose file under `folder` (each animal of a multi-animal file its own recording), read through the frame
    pipeline with the manifest's preprocessing settings; frames the tracker missed are left uncovered."""
    from detectors import build_detector
    from frame_pipeline import iter_frame_records, prepare_source, window_arrays
    from utils.readers.pose_io import is_pose_file, recording_animals
    from utils.readers.sensors import frame_sensors
    from utils.schema import PreprocessingConfig
    from utils.config import from_recorded
    meta = dataset.manifest["meta"]
    if meta.get("detector") != "pose_file":
        raise UserError(f"--pose_dir needs a manifest prepared from pose files (--detector pose_file), but "
                        f"{dataset.manifest_path} was prepared with detector {meta.get('detector')}; prepare the "
                        f"labelled recordings with --detector pose_file")
    settings = from_recorded(PreprocessingConfig, meta, str(dataset.manifest_path))
    detector = build_detector(settings.detector, settings)
    # every pose file read in the labelled data's layout: its keypoints by name, and 2D or 3D as it is
    detector.expect_keypoints(meta.get("keypoint_names") or [], str(dataset.manifest_path), meta.get("spatial_dims", 2))
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_pose_file(p))
    if not files:
        raise UserError(f"--pose_dir {folder}: no pose file (DeepLabCut, SLEAP, Anipose, NWB) found; give the folder "
                        f"that holds them")
    recordings = []
    for path in files:
        for animal in recording_animals(path, True):
            info = prepare_source(path, detector, settings, animal)
            sensors = None
            if dataset.spec.sensor_channels:  # the streams the labelled data has, beside each pose file too
                sensors = frame_sensors(path, info.frame_count, info.fps, settings.sensor_rate,
                                        settings.sensor_offset_s, list(dataset.spec.sensor_channels),
                                        str(dataset.manifest_path))
            records = [r for batch in iter_frame_records(path, detector, settings, sensors=sensors) for r in batch
                       if not r.missed]
            if not records:
                log.warning("%s%s: the animal is never found; left out", path, f" ({animal})" if animal else "")
                continue
            length = records[-1].index + 1
            arrays = {}
            rows = np.array([r.index for r in records])
            for key, values in window_arrays(records, detector.num_keypoints).items():
                arrays[key] = np.full((length,) + values.shape[1:], np.nan, np.float32)
                arrays[key][rows] = values
            covered = np.zeros(length, bool)
            covered[rows] = True
            recordings.append(Recording(path.name, str(path), info.fps, arrays, np.full(length, UNLABELLED),
                                        covered, dataset.use_pose and detector.num_keypoints > 0))
    return recordings


def unlabelled_recordings(cfg) -> tuple:
    """(the manifest's train split as a dataset: its feature settings and augmentation, every recording)."""
    dataset = dataset_of(cfg, "train", copy.deepcopy(cfg.augmentation))
    recordings = stitch_recordings(dataset, 0)  # no class: every label is left out
    for split in ("val", "test"):
        recordings += stitch_recordings(dataset_of(cfg, split), 0)
    if cfg.pretraining.pose_dir:
        recordings += pose_file_recordings(cfg.pretraining.pose_dir, dataset)
    return dataset, recordings


def chunk_statistics(dataset, chunks: list, limit: int = 2000) -> dict:
    """Mean, spread and quantile knots of the pose and box-motion inputs over (up to `limit`) clean chunks: the
    scaling every model fine-tuned from this one keeps."""
    picks = [chunks[i] for i in np.linspace(0, len(chunks) - 1, min(len(chunks), limit)).astype(int)]
    stats = {}
    for start in range(0, len(picks), 64):
        batch = chunk_batch(dataset, picks[start:start + 64])
        real = ~batch["padding"]
        for name in ("pose", "motion"):
            rows = batch[name][real & batch["pose_present"][:, None]] if name == "pose" else batch[name][real]
            stats.setdefault(name, []).append(rows)
    out = {}
    for name, parts in stats.items():
        rows = torch.cat(parts)
        if len(rows) > 1 and rows.shape[1]:
            out[f"{name}_mean"], out[f"{name}_std"] = rows.mean(0), rows.std(0).clamp(min=1e-3)
            out[f"{name}_knots"] = quantile_knots(rows)
    return out


class Pretraining:
    """The network, its optimiser and the chunks: training ones shuffled by (seed, epoch), held-out ones with
    masks fixed by their position."""

    def __init__(self, cfg, dataset, recordings: list, device: str):
        self.cfg, self.dataset, self.device = cfg, dataset, device
        if cfg.model.classifier not in DENSE_KINDS:
            raise UserError(f"pretrain_pose.py pretrains a dense model ({', '.join(DENSE_KINDS)}), not classifier "
                            f"{cfg.model.classifier}; pass --classifier mstcn, dense_transformer or multimodal")
        if cfg.model.use_frame_features:
            raise UserError("pretrain_pose.py learns from pose, box motion and sensor streams, not frames; drop "
                            "--use_frame_features here and pass it when fine-tuning (--init_from this checkpoint): "
                            "the frame features join the pretrained model then")
        self.mcfg = ModelConfig(**settings_dict(cfg.model), num_classes=1, pose_dim=dataset.pose_dim,
                                box_motion_dim=dataset.motion_dim,
                                sensor_dim=sensor_feature_dim(dataset.spec.sensor_channels), input_stats=True,
                                crop_size=dataset.crop_size, window_size=dataset.manifest["meta"]["window_size"])
        self.net = DenseSequenceLabeller(self.mcfg)
        size = self.mcfg.dense_chunk
        chunks = [(r, a, b) for r in recordings for a, b in r.chunks(size, max(size // 2, 1))]
        self.held_out = chunks[HELD_OUT_EVERY - 1::HELD_OUT_EVERY]
        self.train = [c for i, c in enumerate(chunks) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1] or chunks
        self.net.set_input_stats(**chunk_statistics(dataset, self.train))
        self.net = self.net.to(device)
        t = cfg.training
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=t.lr, weight_decay=t.weight_decay)

    def loss(self, items: list, rng: random.Random, augment: bool) -> torch.Tensor:
        batch = chunk_batch(self.dataset, items, rng if augment else None)
        padding = batch["padding"].to(self.device)
        t = self.cfg.training
        mask = span_mask(padding, t.mask_ratio, t.mask_span, rng)
        inputs = net_inputs(self.net, batch, self.device)
        if getattr(self.net.body, "pairs_streams", False):  # multimodal with two streams: its cross-modal objective
            generator = torch.Generator().manual_seed(rng.getrandbits(62))
            x, target = self.net.inputs_and_target(inputs["pose"], inputs["pose_present"], inputs["motion"])
            return self.net.body.self_supervised_loss(x, target, mask, padding, generator)
        _, predicted, target = self.net.masked_forward(mask, **inputs, padding=padding)
        return masked_feature_loss(predicted, target, mask)

    def train_epoch(self, epoch: int, stop) -> tuple:
        """(mean loss, completed)."""
        t = self.cfg.training
        rng = random.Random(hash((t.seed, epoch)))
        items = list(self.train)
        rng.shuffle(items)
        batches = [items[i:i + t.batch_size] for i in range(0, len(items), t.batch_size)]
        self.net.train()
        total, done = 0.0, 0
        with progress(total=len(batches), desc=f"pretraining epoch {epoch}") as bar:
            for batch in batches:
                if stop:
                    break
                loss = self.loss(batch, rng, augment=True)
                if not torch.isfinite(loss):
                    raise UserError(f"pretraining loss became {loss.item()} at epoch {epoch}; lower --lr")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += loss.item()
                done += 1
                bar.update(1)
        return total / max(done, 1), done == len(batches)

    @torch.no_grad()
    def held_out_loss(self) -> float:
        self.net.eval()
        rng = random.Random(0)  # the same masks every epoch
        size = self.cfg.training.batch_size
        losses = [self.loss(self.held_out[i:i + size], rng, augment=False).item()
                  for i in range(0, len(self.held_out), size)]
        return float(np.mean(losses)) if losses else float("nan")

    def fields(self, epoch: int, best: float, recordings: int, frames: int) -> dict:
        return dict(model=self.net.state_dict(), optimizer=self.optimizer.state_dict(), epoch=epoch,
                    best_metric={"held_out_loss": best}, model_args=model_args(self.mcfg),
                    config={section: settings_dict(values) for section, values in vars(self.cfg).items()},
                    features=self.dataset.spec.recorded(), preprocessing=self.dataset.manifest["meta"],
                    class_names=[], pretraining={"recordings": recordings, "frames": frames},
                    rng={"torch": torch.get_rng_state(), "python": list(random.getstate()[1])})


def pretrain(cfg, resume=None, command: str = None) -> PretrainResult:
    """Pretrain in <output_dir>/<run_name>/: best_model.pt (lowest held-out loss), last_checkpoint.pt (resume),
    metrics.csv, training_curves.png, pretrain.log."""
    run_dir, device = open_run_folder(cfg, resume, command, "pretrain.log")
    dataset, recordings = unlabelled_recordings(cfg)
    frames = int(sum(r.covered.sum() for r in recordings))
    job = Pretraining(cfg, dataset, recordings, device)
    log.info("pretraining %s on %d recordings (%d frames, %.2f h at their frame rates): %d chunks of %d frames, %d "
             "held out", cfg.model.classifier, len(recordings), frames,
             sum(r.covered.sum() / r.fps for r in recordings) / 3600, len(job.train), job.mcfg.dense_chunk,
             len(job.held_out))
    start, best, history = 0, float("inf"), []
    if resume:
        ckpt = load_checkpoint(resume)
        job.net.load_state_dict(ckpt["model"])
        job.optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        random.setstate((3, tuple(ckpt["rng"]["python"]), None))
        start, best = ckpt["epoch"] + 1, ckpt["best_metric"]["held_out_loss"]
        history = [h for h in pd.read_csv(run_dir / "metrics.csv").to_dict("records") if h["epoch"] < start]
        log.info("resumed from %s at epoch %d", resume, start)
    stop = StopFlag(run_dir / cfg.training.stop_file)
    curves = TrainingCurves(run_dir / "training_curves.png")
    try:
        for epoch in range(start, cfg.training.epochs):
            began = time.time()
            train_loss, completed = job.train_epoch(epoch, stop)
            if not completed:
                log.warning("stopping (%s) during epoch %d: that epoch is not counted", stop.reason, epoch)
                break
            row = {"epoch": epoch, "train_loss": train_loss, "val_loss": job.held_out_loss(),
                   "seconds": round(time.time() - began, 2)}
            history.append(row)
            atomic_write_csv(run_dir / "metrics.csv", pd.DataFrame(history))
            curves.update(history)
            if row["val_loss"] < best:
                best = row["val_loss"]
                save_checkpoint(run_dir / "best_model.pt", selection=f"{PRETRAINED}: lowest held-out loss (epoch "
                                f"{epoch})", **job.fields(epoch, best, len(recordings), frames))
            save_checkpoint(run_dir / "last_checkpoint.pt", selection=f"{PRETRAINED}: last epoch",
                            **job.fields(epoch, best, len(recordings), frames))
            log.info("epoch %d: self-supervised loss %.4f, held out %.4f (%.1f s)", epoch, train_loss,
                     row["val_loss"], row["seconds"])
            if stop:
                log.warning("stopping (%s) after epoch %d", stop.reason, epoch)
                break
    finally:
        curves.finish()
        stop.restore()
    return PretrainResult(str(run_dir), history, len(recordings), frames, stop.reason)
