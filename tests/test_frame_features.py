"""Frame features in dense models (--use_frame_features): a frozen frame backbone's features of every frame join the
pose and box motion; each frame is encoded once, from the crop store in training and from the video at inference."""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from model import DenseSequenceLabeller, ModelConfig
from utils.errors import UserError

SMALL = ["--classifier", "mstcn", "--dense_hidden", "16", "--dense_layers", "4", "--dense_stages", "2",
         "--dense_chunk", "64", "--batch_size", "4"]


def stripes(vertical: bool, size: int, rng) -> torch.Tensor:
    """A normalised crop of stripes (3, size, size), vertical or horizontal, at a random phase and contrast."""
    line = torch.from_numpy(np.sin(np.arange(size) * 0.8 + rng.uniform(0, 6)).astype(np.float32)) * rng.uniform(1, 2)
    image = line[None, :].expand(size, size) if vertical else line[:, None].expand(size, size)
    return image[None].expand(3, size, size).clone()


def striped_chunks(net, count: int, length: int, rng) -> tuple:
    """Chunks whose label is only in the frames (bouts of vertical or horizontal stripes); pose and motion noise."""
    labels = torch.from_numpy(np.repeat(rng.integers(0, 2, (count, length // 8)), 8, axis=1))
    frames = torch.stack([torch.stack([stripes(bool(y), 32, rng) for y in row]) for row in labels])
    cfg = net.cfg
    return (labels, net.encode_frames(frames), torch.randn(count, length, cfg.pose_dim),
            torch.randn(count, length, cfg.box_motion_dim))


@pytest.mark.parametrize("kind", ["mstcn", "dense_transformer", "multimodal"])
def test_a_dense_model_learns_what_only_the_frames_show(kind):
    """Labels carried by the crops alone: each dense kind with frame features learns them (multimodal: joined to the
    camera's stream beside a sensor stream), the same without stays at chance. A random frozen resnet18 tells
    stripes apart (a random mobilenet_v3_small's features all but vanish: spread 3e-9)."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    cfg = ModelConfig(classifier=kind, num_classes=2, pose_dim=6, box_motion_dim=3, sensor_dim=2, use_pose=True,
                      use_frame_features=True, backbone="resnet18", pretrained_backbone=False, crop_size=32, dense_hidden=16,
                      dense_layers=2, dense_stages=1, dropout=0.0, feature_shift=0.0, attention_heads=2)
    accuracy = {}
    for frames_seen in (True, False):
        net = DenseSequenceLabeller(replace(cfg, use_frame_features=frames_seen))
        encoder = net if frames_seen else DenseSequenceLabeller(cfg)
        labels, visual, pose, motion = striped_chunks(encoder, 8, 32, rng)
        optimiser = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
        net.train()
        for _ in range(60):
            stages, _ = net(pose, None, motion, visual=visual if frames_seen else None)
            loss = torch.nn.functional.cross_entropy(stages[-1].flatten(0, 1), labels.flatten())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        net.eval()
        test_labels, test_visual, test_pose, test_motion = striped_chunks(encoder, 8, 32, rng)
        with torch.no_grad():
            probs, _ = net.frame_outputs(test_pose, None, test_motion, test_visual if frames_seen else None)
        accuracy[frames_seen] = (probs.argmax(-1) == test_labels).float().mean().item()
    assert accuracy[True] > 0.9 and accuracy[False] < 0.7, accuracy


def test_frame_features_need_a_frame_backbone_and_are_refused_by_pretraining():
    from utils.schema import ModelSettings
    with pytest.raises(UserError, match="use_frame_features needs a frame backbone"):
        ModelSettings(classifier="mstcn", use_frame_features=True, backbone="none").check()
    with pytest.raises(UserError, match="camera's stream"):
        DenseSequenceLabeller(ModelConfig(classifier="multimodal", num_classes=2, box_motion_dim=4, sensor_dim=4,
                                          use_box_motion=False, use_frame_features=True, backbone="resnet18",
                                          pretrained_backbone=False, crop_size=48))
    with pytest.raises(UserError, match="video backbone"):
        DenseSequenceLabeller(ModelConfig(classifier="mstcn", num_classes=2, pose_dim=4, use_pose=True,
                                          use_frame_features=True, backbone="r3d_18", pretrained_backbone=False,
                                          crop_size=112))


@pytest.fixture(scope="module")
def frame_runs(pose_manifest, tmp_path_factory):
    """A pose-only MS-TCN, and one with frame features (a random frozen resnet18) started from it."""
    import train_behavior_lstm as train
    from conftest import train_args
    out = tmp_path_factory.mktemp("frame_features")
    train.main(train_args(pose_manifest, out, "--run_name", "pose", "--epochs", "2", *SMALL))
    train.main(train_args(pose_manifest, out, "--run_name", "frames", "--epochs", "2", *SMALL, "--use_frame_features",
                          "--backbone", "resnet18", "--no_pretrained_backbone", "--init_from",
                          out / "pose" / "best_model.pt"))
    return out


def test_a_model_pretrained_on_pose_alone_starts_one_with_frame_features_exactly(pose_manifest, frame_runs):
    from classifiers import load_classifier
    from training.dense import init_dense_weights
    from utils.checkpoint import load_checkpoint
    pose_ckpt = load_checkpoint(frame_runs / "pose" / "best_model.pt")
    frames_ckpt = load_checkpoint(frame_runs / "frames" / "best_model.pt")
    assert frames_ckpt["model_args"]["use_frame_features"] and not pose_ckpt["model_args"]["use_frame_features"]
    net = DenseSequenceLabeller(ModelConfig(**{**frames_ckpt["model_args"], "pretrained_backbone": False}))
    init_dense_weights(net, frame_runs / "pose" / "best_model.pt", pose_ckpt["class_names"], pose_ckpt["features"])
    pose_only = load_classifier(pose_ckpt).net
    args = frames_ckpt["model_args"]
    pose, motion = torch.randn(2, 40, args["pose_dim"]), torch.randn(2, 40, args["box_motion_dim"])
    visual = torch.randn(2, 40, net.visual_proj[0].normalized_shape[0])
    net.eval()
    with torch.no_grad():
        started, _ = net.frame_outputs(pose, None, motion, visual)
        expected, _ = pose_only.frame_outputs(pose, None, motion)
    torch.testing.assert_close(started, expected)  # the frame features' projection starts at zero
    log = (frame_runs / "frames" / "train.log").read_text()
    assert "weights initialised from" in log and "left fresh for these classes: the frame features' projection" in log


def test_inference_encodes_each_frame_once_and_agrees_with_training_evaluation(pose_manifest, frame_runs):
    """The per-frame probabilities of a validation clip through the predictor (frames decoded and cropped from the
    video) are those training's evaluation gave it (crops from the crop store, features kept as float16)."""
    from data import WindowDataset
    from predictor import Predictor
    from training.dense import dense_recordings, recording_probs
    from utils.schema import InferenceConfig
    model = frame_runs / "frames" / "best_model.pt"
    predictor = Predictor.from_checkpoint(model, InferenceConfig(device="cpu"))
    assert predictor.model.sees_frames and predictor.model.dense
    dataset = WindowDataset(pose_manifest, "val", use_pose=True, load_frames=False)
    recording = dense_recordings(predictor.model.net, dataset, "cpu")[0]
    assert recording.visual.shape == (len(recording.labels), 512) and recording.visual[recording.covered].any()
    trained = recording_probs(predictor.model.net, dataset, recording, 4, "cpu")
    video = Path(json.loads(pose_manifest.read_text())["meta"]["dataset_root"]) / recording.source
    prediction = predictor.predict_video(video)
    assert prediction.backbone_frames == prediction.frames == 64  # overlapping chunks, every frame encoded once
    predicted = prediction.acc.mean_probs()[0][recording.covered]
    weighted = trained[recording.covered] * predictor.decision_weights  # as inference applies them
    np.testing.assert_allclose(predicted, weighted / weighted.sum(-1, keepdims=True), atol=0.02)


def test_the_backbone_a_run_trained_is_taken_from_its_checkpoint(frame_runs):
    """backbone_weights may name a BehaviorScope model: its backbone (as a neural run with --train_backbone leaves
    it) is loaded, and a model of another backbone or none is refused in one line."""
    from utils.checkpoint import load_checkpoint
    source = frame_runs / "frames" / "best_model.pt"
    weights = load_checkpoint(source)["model"]
    cfg = ModelConfig(classifier="mstcn", num_classes=4, pose_dim=4, use_pose=True, use_frame_features=True,
                      backbone="resnet18", backbone_weights=str(source), crop_size=48)
    net = DenseSequenceLabeller(cfg)
    for key, value in net.backbone.state_dict().items():
        torch.testing.assert_close(value, weights[f"backbone.{key}"])
    with pytest.raises(UserError, match="holds a resnet18 backbone, not mobilenet_v3_small; pass --backbone resnet18"):
        DenseSequenceLabeller(replace(cfg, backbone="mobilenet_v3_small"))
    with pytest.raises(UserError, match="without a frame backbone"):
        DenseSequenceLabeller(replace(cfg, backbone_weights=str(frame_runs / "pose" / "best_model.pt")))
