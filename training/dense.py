"""Training and evaluating dense models (model.DenseSequenceLabeller): per-frame logits over chunks of whole
recordings (utils.data.recordings), every labelled frame in the loss, unlabelled frames left out.

    history = fit_network(net, run, weights, steps=DenseSteps)        # training/loop.py's epochs, best models, resume
    result = evaluate_recordings(net, recordings, dataset, run)

The loss is MS-TCN's: cross-entropy of every stage's logits on the labelled frames, plus `smoothing_loss` x the mean
over neighbouring frames of the squared change of each class's log-probability, truncated at 4 (tau = 4 as in the
paper; the earlier frame's side detached), which discourages labels that flicker within a bout.
Evaluation gives what every classifier's evaluation gives (utils.results.metrics on the split's windows, each window
read at its centre frame, in the split's order), plus `frame_probs`: every recording's stitched per-frame
probabilities, which training/evaluation.frame_scores scores directly.
"""
import logging
import random
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from data import normalise_frames
from utils import distributed
from utils.data.recordings import UNLABELLED, chunk_features, stitch_chunk_probs, stitch_recordings
from utils.errors import UserError
from utils.logging_utils import progress
from utils.results.metrics import classification_scores

log = logging.getLogger("train")
SMOOTHING_TRUNCATION = 4.0
# few labelled chunks (a few labelled stretches) would make an epoch of one or two batches, and early stopping and
# the learning-rate schedule, which count epochs, would stop a network that has hardly learned: an epoch repeats the
# chunks (each repeat with its own augmentation) up to this many batches
MIN_BATCHES_PER_EPOCH = 16  # MS-TCN's tau, on the squared log-probability change


def dense_loss(stages: list, labels: torch.Tensor, weights, smoothing: float, padding: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on labelled frames plus the truncated smoothing loss on real (not padded) neighbours, summed over
    the stages. stages: [(B, T, C)]; labels (B, T) with UNLABELLED; padding (B, T) True on padded frames."""
    total = 0.0
    labelled = labels != UNLABELLED
    neighbours = ~(padding[:, 1:] | padding[:, :-1])
    for logits in stages:
        if labelled.any():
            total = total + F.cross_entropy(logits[labelled], labels[labelled], weight=weights)
        if smoothing and neighbours.any():
            logp = F.log_softmax(logits, -1)
            change = (logp[:, 1:] - logp[:, :-1].detach()).pow(2).clamp(max=SMOOTHING_TRUNCATION ** 2)
            total = total + smoothing * change[neighbours].mean()
    return total


def span_mask(padding: torch.Tensor, ratio: float, span: int, rng: random.Random) -> torch.Tensor:
    """(B, T) True on hidden frames: spans of `span` frames at random starts until about `ratio` of each chunk's real
    (not padded) frames are hidden (BehavERT's span masking)."""
    mask = torch.zeros_like(padding)
    for row, pad in enumerate(padding.cpu()):
        length = int((~pad).sum())
        spans = max(1, int(round(ratio * length / span)))
        for _ in range(spans):
            start = rng.randrange(max(length - span, 0) + 1)
            mask[row, start:start + span] = True
    return mask & ~padding


def masked_feature_loss(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the predicted inputs on the hidden frames (inputs on their scaled, unit-spread scale)."""
    return (predicted.float()[mask] - target.float()[mask]).pow(2).mean()


FRAME_FEATURE_WEIGHTS = ("backbone.", "visual_proj.")  # model.DenseSequenceLabeller with use_frame_features


def init_dense_weights(net, path, class_names: list, recorded_features: dict) -> None:
    """Start a dense model from a checkpoint: a pretraining one (training/pretrain.py: every weight but the class
    outputs, and its input scaling) or a trained dense model of the same classes (every weight). The features and
    the model settings must match, checked before anything is loaded."""
    from training.pretrain import PRETRAINED
    from utils.checkpoint import load_checkpoint
    ckpt = load_checkpoint(path)
    pretrained = str(ckpt.get("selection", "")).startswith(PRETRAINED)
    if not pretrained and list(ckpt["class_names"]) != list(class_names):
        raise UserError(f"init_from {path} was trained on classes {ckpt['class_names']}, the manifest has "
                        f"{class_names}; label windows of every class of the model (or train without init_from)")
    if ckpt.get("features") != recorded_features:
        raise UserError(f"init_from {path} was trained on features {ckpt.get('features')}, these settings give "
                        f"{recorded_features}; use the pose features, keypoint confidence, track smoothing and "
                        f"feature normalisation it was trained with")
    mine = net.state_dict()
    # these settings with the checkpoint's number of classes must give its very shapes, frame features aside: a model
    # pretrained on pose alone starts one that adds them (their projection starts at zero)
    twin = type(net)(replace(net.cfg, num_classes=ckpt["model_args"]["num_classes"], use_frame_features=False))
    twin = twin.state_dict()
    body = {k: v for k, v in ckpt["model"].items() if not k.startswith(FRAME_FEATURE_WEIGHTS)}
    differ = sorted(k for k in set(twin) | set(body) if k not in twin or k not in body or twin[k].shape != body[k].shape)
    if differ or ckpt["model_args"].get("classifier") != net.cfg.classifier:
        raise UserError(f"init_from {path} is a {ckpt['model_args'].get('classifier')} model of another architecture "
                        f"than these settings ({', '.join(differ[:3]) or 'classifier'} differ); use the model "
                        f"settings it was trained with (its config.yaml)")
    theirs = {k: v for k, v in ckpt["model"].items() if k in mine and v.shape == mine[k].shape}
    if pretrained and getattr(net.body, "pairs_streams", False):  # only what its cross-modal objective trained
        trained = tuple(f"body.{prefix}" for prefix in net.body.self_supervised_parameters())
        theirs = {k: v for k, v in theirs.items() if not k.startswith("body.") or k.startswith(trained)}
    fresh = sorted(k for k in set(mine) - set(theirs) if not k.startswith(FRAME_FEATURE_WEIGHTS))
    if net.sees_frames and not any(k.startswith(FRAME_FEATURE_WEIGHTS) for k in theirs):
        fresh.append("the frame features' projection (from zero)")
    net.load_state_dict({**mine, **theirs})
    net.initialised = set(theirs)  # training.loop.build_optimizer: their learning rate is lr * init_lr_scale
    log.info("weights initialised from %s (%s)%s", path, ckpt.get("selection"),
             f"; left fresh for these classes: {', '.join(fresh)}" if fresh else "")


def dense_recordings(net, dataset, device) -> list:
    """The recordings of a split (utils.data.recordings.stitch_recordings), stitched once per dataset and kept with
    it; for a model with frame features each covered frame encoded once by its frozen backbone (which does not
    change within a run)."""
    key = (net.cfg.num_classes, net.cfg.backbone if net.sees_frames else None)
    kept = getattr(dataset, "dense_recordings", None)
    if kept is None or kept[0] != key:
        recordings = stitch_recordings(dataset, net.cfg.num_classes)
        if net.sees_frames:
            encode_recording_frames(net, dataset, recordings, device)
        dataset.dense_recordings = kept = (key, recordings)
    return kept[1]


@torch.no_grad()
def encode_recording_frames(net, dataset, recordings: list, device, batch_frames: int = 64) -> None:
    """Each recording's frame features (Recording.visual [N, Dv] float16, zeros where no window covers a frame): the
    crop of every covered frame read from the first window holding it (data.WindowDataset.load: the video's crop
    store) and encoded by the model's frozen backbone, batch_frames at a time (memory flat in recording length).
    Unaugmented: augmentation of the frames does not reach them (as the window models' feature cache with
    cache_augmented_views 0)."""
    was_training = net.training
    net.eval()
    with progress(total=sum(len(r.windows) for r in recordings), desc="frame features") as bar:
        for recording in recordings:
            seen = np.zeros(len(recording.labels), bool)
            crops, rows = [], []
            for index, _, _ in recording.windows:
                frame_rows = dataset.small_arrays(index)["frame_index"]
                new = np.flatnonzero(~seen[frame_rows])
                if len(new):
                    crops += list(dataset.load(index)[0][new])
                    rows += frame_rows[new].tolist()
                    seen[frame_rows[new]] = True
                while len(crops) >= batch_frames:
                    _encode_into(net, recording, crops[:batch_frames], rows[:batch_frames], device)
                    crops, rows = crops[batch_frames:], rows[batch_frames:]
                bar.update(1)
            if crops:
                _encode_into(net, recording, crops, rows, device)
    net.train(was_training)


def _encode_into(net, recording, crops: list, rows: list, device) -> None:
    """Frame features of crops (uint8 [3, S, S] each) into recording.visual at rows (made on the first call)."""
    features = net.encode_frames(normalise_frames(torch.stack(crops))[None].to(device))[0].to("cpu", torch.float16)
    if recording.visual is None:
        recording.visual = np.zeros((len(recording.labels), features.shape[1]), np.float16)
    recording.visual[rows] = features.numpy()


def chunk_batch(dataset, items: list, rng: random.Random = None) -> dict:
    """Padded tensors of chunks [(recording, start, end)]: pose (B, T, Dp), motion (B, T, Dm), pose_present (B),
    labels (B, T) (UNLABELLED on padding), padding (B, T) and, where the recordings have frame features, visual
    (B, T, Dv). With rng each chunk gets its own augmentation draw."""
    length = max(end - start for _, start, end in items)
    b = len(items)
    pose = torch.zeros(b, length, dataset.pose_dim)
    motion = torch.zeros(b, length, dataset.motion_dim)
    visual_dim = items[0][0].visual.shape[1] if items[0][0].visual is not None else 0
    visual = torch.zeros(b, length, visual_dim)
    labels = torch.full((b, length), UNLABELLED, dtype=torch.long)
    padding = torch.ones(b, length, dtype=torch.bool)
    present = torch.zeros(b, dtype=torch.bool)
    for i, (recording, start, end) in enumerate(items):
        chunk_rng = random.Random(rng.getrandbits(62)) if rng is not None else None
        p, m = chunk_features(dataset, recording, start, end, chunk_rng)
        n = end - start
        if p is not None:
            pose[i, :n], present[i] = torch.from_numpy(p), True
        if m is not None:
            motion[i, :n] = torch.from_numpy(m)
        if visual_dim:
            visual[i, :n] = torch.from_numpy(recording.visual[start:end].astype(np.float32))
        labels[i, :n] = torch.from_numpy(recording.labels[start:end])
        padding[i, :n] = False
    return {"pose": pose, "motion": motion, "pose_present": present, "labels": labels, "padding": padding,
            "visual": visual}


def net_inputs(net, batch: dict, device) -> dict:
    return {"pose": batch["pose"].to(device) if net.uses_pose else None,
            "pose_present": batch["pose_present"].to(device),
            "motion": batch["motion"].to(device) if net.uses_motion else None,
            "visual": batch["visual"].to(device) if net.sees_frames else None}


def frame_class_counts(recordings: list, num_classes: int) -> np.ndarray:
    labels = np.concatenate([r.labels for r in recordings])
    return np.bincount(labels[labels != UNLABELLED], minlength=num_classes)


class DenseSteps:
    """One epoch over every training chunk (chunks overlap by half, shuffled by seed and epoch, each with its own
    augmentation draw; repeated up to MIN_BATCHES_PER_EPOCH batches) and one validation (evaluate_recordings): training/loop.py's fit runs them."""

    def __init__(self, net, run, opt):
        self.net, self.run, self.opt = net, run, opt
        self.step = distributed.synced(net, run.device)
        self.train = run.datasets["train"]
        self.recordings = dense_recordings(net, self.train, run.device)
        self.val_recordings = dense_recordings(net, run.datasets["val"], run.device)
        if not frame_class_counts(self.recordings, net.cfg.num_classes).sum():
            raise UserError(f"{run.cfg.training.manifest_path}: no labelled training frame for "
                            f"classifier {net.cfg.classifier}")

    def chunks(self, recordings: list) -> list:
        size = self.net.cfg.dense_chunk
        return [(r, start, end) for r in recordings for start, end in r.chunks(size, max(size // 2, 1))]

    def train_epoch(self, epoch: int, desc: str) -> tuple:
        cfg, device, opt = self.run.cfg, self.run.device, self.opt
        rng = random.Random(hash((cfg.training.seed, epoch)))
        size = cfg.training.batch_size
        chunks = self.chunks(self.recordings)
        items = chunks * -(-MIN_BATCHES_PER_EPOCH * size // len(chunks))  # each repeat its own augmentation draw
        rng.shuffle(items)
        batches = [items[i:i + size] for i in range(0, len(items), size)]
        amp = device.startswith("cuda") and cfg.training.amp
        self.net.train()
        total, count, done = 0.0, 0, 0
        with progress(total=len(batches), desc=desc) as bar:
            for items in batches:
                if distributed.any_process(self.run.stop):
                    break
                items = distributed.shard(items)  # each of torchrun's processes its share of the batch
                batch = chunk_batch(self.train, items, rng)
                labels, padding = batch["labels"].to(device), batch["padding"].to(device)
                with torch.autocast("cuda", enabled=amp):
                    loss = self.loss(batch, labels, padding, rng)
                if not torch.isfinite(loss):
                    raise UserError(f"loss became {loss.item()} at {desc}; lower --lr or check the data")
                opt.optimizer.zero_grad(set_to_none=True)
                opt.scaler.scale(loss).backward()
                opt.scaler.step(opt.optimizer)
                opt.scaler.update()
                total += loss.item() * len(items)
                count += len(items)
                done += 1
                bar.update(1)
        return distributed.average(total / max(count, 1)), done == len(batches)

    def loss(self, batch: dict, labels, padding, rng: random.Random) -> torch.Tensor:
        """The dense loss, plus with masked_feature_loss the prediction of the inputs hidden in spans of frames (the
        behaviour is then learned from the masked inputs too)."""
        t = self.run.cfg.training
        inputs = net_inputs(self.net, batch, self.run.device)
        if not t.masked_feature_loss:
            stages, _ = self.step(lambda net: net(**inputs, padding=padding))
            return dense_loss([s.float() for s in stages], labels, self.opt.weights, t.smoothing_loss, padding)
        mask = span_mask(padding, t.mask_ratio, t.mask_span, rng)
        stages, predicted, target = self.step(lambda net: net.masked_forward(mask, **inputs, padding=padding))
        return (dense_loss([s.float() for s in stages], labels, self.opt.weights, t.smoothing_loss, padding)
                + t.masked_feature_loss * masked_feature_loss(predicted, target, mask))

    def validate(self) -> dict:
        return evaluate_recordings(self.net, self.val_recordings, self.run.datasets["val"], self.run)


@torch.no_grad()
def recording_probs(net, dataset, recording, batch_size: int, device) -> np.ndarray:
    """Per-frame probabilities [N, C] of one recording, chunk by chunk as inference runs them (dense_chunk frames
    overlapping by half, stitched centre-weighted); zeros where no chunk covers a frame."""
    size = net.cfg.dense_chunk
    chunks = recording.chunks(size, max(size // 2, 1))
    probs = []
    for i in range(0, len(chunks), batch_size):
        items = [(recording, s, e) for s, e in chunks[i:i + batch_size]]
        batch = chunk_batch(dataset, items)
        p, _ = net.frame_outputs(**net_inputs(net, batch, device))
        probs += [row[:e - s] for row, (_, s, e) in zip(p.float().cpu().numpy(), items)]
    return stitch_chunk_probs(len(recording.labels), chunks, probs)[0]


@torch.no_grad()
def evaluate_recordings(net, recordings: list, dataset, run) -> dict:
    """Loss (unweighted cross-entropy over every labelled frame), accuracy, macro-F1 and scores of the split's windows (each read
    at its centre frame) and their probabilities in the split's order, plus frame_probs {source video: [N, C]}."""
    net.eval()
    window_probs = np.zeros((len(dataset), net.cfg.num_classes))
    frame_probs, losses, frames = {}, 0.0, 0
    for recording in recordings:
        probs = recording_probs(net, dataset, recording, run.cfg.training.batch_size, run.device)
        frame_probs[recording.source] = probs
        labelled = np.flatnonzero(recording.labels != UNLABELLED)
        losses -= np.log(np.clip(probs[labelled, recording.labels[labelled]], 1e-12, 1)).sum()
        frames += len(labelled)
        for index, start, size in recording.windows:
            window_probs[index] = probs[start + size // 2]
    labels = np.asarray(dataset.labels)
    scores = classification_scores(labels.tolist(), window_probs.argmax(-1).tolist(),
                                   list(range(net.cfg.num_classes)))
    return {"loss": losses / max(frames, 1), "acc": scores["accuracy"], "macro_f1": scores["macro_f1"],
            "scores": scores, "probs": window_probs, "frame_probs": frame_probs}
