"""Shape contract over every registered backbone, head and fusion; frozen backbones; pose-missing paths."""
import re

import numpy as np
import pytest
import torch

from model import BACKBONES, FUSIONS, TEMPORAL_HEADS, ModelConfig, build_model, model_args
from utils.checkpoint import migrate_checkpoint
from utils.errors import UserError
from utils.schema import ModelSettings

FAST_BACKBONES = [b for b in BACKBONES.names() if b != "vit_b_16"]


def config(**kw):
    base = dict(num_classes=3, pretrained_backbone=False, crop_size=32, hidden_dim=16, pose_dim=10,
                pose_fusion_dim=8, attention_heads=2, dropout=0.0)
    return ModelConfig(**{**base, **kw})


def format_1_model_args(model_args: dict) -> dict:
    """model_args of a format 1 checkpoint as loading brings them to the current format (utils.checkpoint)."""
    old = {"format_version": 1, "model_args": model_args, "config": {}, "preprocessing": {},
           "features": {"pose_features": "body", "pose_features_version": 3}}
    return migrate_checkpoint(old, "old.pt")["model_args"]


def clip(b=2, t=4, size=32):
    torch.manual_seed(0)
    return torch.randn(b, t, 3, size, size), torch.randn(b, t, 10)


@pytest.mark.parametrize("backbone", FAST_BACKBONES)
@pytest.mark.parametrize("use_pose", [False, True])
def test_every_backbone_gives_logits(backbone, use_pose):
    model = build_model(config(backbone=backbone, use_pose=use_pose)).eval()
    frames, pose = clip()
    assert model(frames, pose if use_pose else None).shape == (2, 3)


@pytest.mark.slow
def test_vit_b_16_at_its_size():
    model = build_model(config(backbone="vit_b_16", crop_size=224, attention_heads=4)).eval()
    frames, _ = clip(b=1, t=2, size=224)
    assert model(frames).shape == (1, 3)
    with pytest.raises(UserError, match="takes 224x224 crops, the data has 96"):
        build_model(config(backbone="vit_b_16", crop_size=96))


@pytest.mark.parametrize("head,extra", [("lstm", {}), ("lstm", {"bidirectional": True}),
                                        ("lstm", {"attention_pool": True, "bidirectional": True}),
                                        ("attention", {}), ("tcn", {"num_layers": 2}),
                                        ("lstm", {"temporal_attention_layers": 2, "positional_encoding": "sinusoidal"}),
                                        ("attention", {"temporal_attention_layers": 1, "positional_encoding": "learned"})])
@pytest.mark.parametrize("backbone,fusion", [("mobilenet_v3_small", f) for f in [None] + FUSIONS.names()]
                         + [("none", None)])  # none = pose only
def test_every_head_and_fusion(head, extra, fusion, backbone):
    cfg = config(backbone=backbone, sequence_model=head, use_pose=fusion is not None or backbone == "none",
                 pose_fusion_strategy=fusion or "gated_attention", **extra)
    model = build_model(cfg).eval()
    frames, pose = clip()
    logits = model(frames if backbone != "none" else None, pose if cfg.use_pose else None)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    assert build_model(ModelConfig(**model_args(cfg))).state_dict().keys() == model.state_dict().keys()


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_clip_without_pose_does_not_depend_on_pose_values(fusion):
    model = build_model(config(use_pose=True, pose_fusion_strategy=fusion)).eval()
    frames, pose = clip()
    present = torch.tensor([True, False])
    a = model(frames, pose, present)
    b = model(frames, pose * 100 + 5, present)
    assert torch.allclose(a[1], b[1], atol=1e-5)  # the pose-less clip ignores its (garbage) pose
    assert not torch.allclose(a[0], b[0], atol=1e-3)  # the clip with pose uses it


def test_frozen_backbone_keeps_eval_mode_and_weights():
    model = build_model(config(use_pose=False))
    model.train()
    assert not model.backbone.training and model.classifier.training
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    frames, _ = clip()
    for _ in range(2):
        opt.zero_grad()
        model(frames).sum().backward()
        opt.step()
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BatchNorm running stats
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_encode_once_then_classify_from_features_matches_full_forward():
    model = build_model(config(use_pose=True)).eval()
    frames, pose = clip()
    feats = model.encode_frames(frames)
    assert feats.shape == (2, 4, 576)
    torch.testing.assert_close(model.forward_head(model.forward_from_features(feats, pose)), model(frames, pose))


@pytest.mark.parametrize("kw,message", [
    (dict(sequence_model="attention", hidden_dim=16, attention_heads=5), "attention head: embedding dimension 576"),
    (dict(attention_pool=True, hidden_dim=15, attention_heads=2), "LSTM attention pool: embedding dimension 15"),
    (dict(use_pose=True, pose_fusion_strategy="cross_modal_transformer", attention_heads=5),
     "cross_modal_transformer fusion: embedding dimension 576"),
    (dict(backbone="none"), "needs --use_pose"),
    (dict(use_pose=True, pose_dim=0), "data has no keypoints"),
    (dict(backbone="resnet50"), "unknown backbone 'resnet50'; valid: "),
    (dict(sequence_model="gru"), "unknown sequence_model 'gru'"),
])
def test_config_errors_name_module_and_fix(kw, message):
    with pytest.raises(UserError, match=message):
        build_model(config(**kw))


def test_pretrained_offline_or_bad_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="backbone_weights file not found"):
        build_model(config(pretrained_backbone=True, backbone_weights=str(tmp_path / "none.pth")))
    import torchvision
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(UserError, match="does not match mobilenet_v3_small"):
        build_model(config(pretrained_backbone=True, backbone_weights=str(tmp_path / "r18.pth")))
    model = build_model(config(backbone="resnet18", pretrained_backbone=True, backbone_weights=str(tmp_path / "r18.pth")))
    assert model(clip()[0]).shape == (2, 3)


def test_registry_names_feed_choices():
    assert BACKBONES.names() == sorted(["mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "resnet18",
                                        "vit_b_16", "r3d_18", "r2plus1d_18", "slowfast_r50"])
    assert TEMPORAL_HEADS.names() == ["attention", "lstm", "tcn"]
    with pytest.raises(ValueError, match="already registered"):
        BACKBONES.register("resnet18")(lambda cfg: None)


def published_slowfast_state():
    """{name: shape} of the published Kinetics-400 SlowFast-R50 (tools/dump_slowfast_keys.py made the list)."""
    import json
    from conftest import ROOT
    entries = json.loads((ROOT / "tests" / "fixtures" / "slowfast_r50_keys.json").read_text())["state_dict"]
    return {k: tuple(shape) for k, shape in entries}


def test_slowfast_r50_matches_the_published_checkpoint_layout():
    from model import SlowFastR50
    published = published_slowfast_state()
    ours = {k: tuple(v.shape) for k, v in SlowFastR50(alpha=4).state_dict().items()}
    backbone = {k: v for k, v in published.items() if not k.startswith("blocks.6.")}  # classifier left out
    assert ours == backbone and len(ours) == 660


def test_slowfast_r50_loads_a_published_style_checkpoint(tmp_path):
    torch.manual_seed(0)
    state = {k: (torch.randn(shape) if shape else torch.tensor(7)) for k, shape in published_slowfast_state().items()}
    torch.save({"model_state": state}, tmp_path / "SLOWFAST_8x8_R50.pyth")
    model = build_model(config(backbone="slowfast_r50", pretrained_backbone=True, window_size=8,
                               backbone_weights=str(tmp_path / "SLOWFAST_8x8_R50.pyth")))
    key = "blocks.3.multipathway_blocks.0.res_blocks.2.branch2.conv_b.weight"
    assert torch.equal(model.backbone.state_dict()[key], state[key])
    with pytest.raises(UserError, match="no weights that can be fetched"):
        build_model(config(backbone="slowfast_r50", pretrained_backbone=True))
    with pytest.raises(UserError, match="at least slowfast_alpha=4 frames, the windows have 3"):
        build_model(config(backbone="slowfast_r50", window_size=3))


def test_slowfast_at_its_minimum_clip_length_with_pose():
    model = build_model(config(backbone="slowfast_r50", window_size=4, use_pose=True,
                               pose_fusion_strategy="cross_modal_transformer")).eval()
    frames, pose = clip(b=2, t=4)
    assert model(frames, pose, torch.tensor([True, False])).shape == (2, 3)


def test_imagenet_weights_come_from_a_local_file_never_a_download(monkeypatch, tmp_path):
    import model as model_module
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # torchvision's cache, empty
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    expected = (r"nothing is downloaded.*download https://download.pytorch.org/models/resnet18-f37072fd.pth.*"
                + re.escape(str(cached)) + r".*--no_pretrained_backbone")
    with pytest.raises(UserError, match=expected):
        build_model(config(backbone="resnet18", pretrained_backbone=True))
    reference = model_module.tvm.resnet18(weights=None)
    cached.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cached)  # what a download on another machine leaves in the cache
    built = build_model(config(backbone="resnet18", pretrained_backbone=True))
    first = next(v for k, v in built.state_dict().items() if k.endswith("conv1.weight"))
    assert torch.equal(first, reference.conv1.weight)

def test_quantile_scaling_maps_training_quantiles_onto_a_normal_scale():
    from scipy.stats import norm
    from model import quantile_knots, quantile_scale
    g = torch.Generator().manual_seed(0)
    often_zero = torch.cat([torch.zeros(6000), torch.rand(4000, generator=g)])  # 60% exactly 0, then uniform
    heavy = torch.distributions.StudentT(1.5).sample((10000,))  # heavy tails: mean/std would squash the middle
    knots = quantile_knots(torch.stack([often_zero, heavy], 1))
    out = quantile_scale(torch.tensor([[0.0, 0.0], [0.5, float(heavy.quantile(0.9))], [7.0, 1e6], [-1.0, -1e6]]),
                         knots)
    assert out[0, 0] == pytest.approx(norm.ppf(0.3), abs=0.02)  # the tie at 0 gets the middle of its 60%
    assert out[1, 0] == pytest.approx(norm.ppf(0.8), abs=0.03)  # 0.5 lies at the 80th percentile
    assert out[0, 1] == pytest.approx(0.0, abs=0.02) and out[1, 1] == pytest.approx(norm.ppf(0.9), abs=0.03)
    end = float(norm.ppf(0.5 / knots.shape[1]))  # beyond the training range: the end levels, never more
    torch.testing.assert_close(out[2:], torch.tensor([[-end, -end], [end, end]]), atol=1e-4, rtol=0)
    ordered = heavy.sort().values
    assert torch.all(torch.diff(quantile_scale(torch.stack([ordered, ordered], 1), knots)[:, 1]) >= 0)  # monotone
    batch = torch.stack([often_zero[::100], heavy[::100]], 1).reshape(5, 20, 2)  # any leading shape
    assert quantile_scale(batch, knots).shape == (5, 20, 2)


def test_a_model_scales_its_inputs_as_its_checkpoint_says():
    """New models scale pose and box motion by training quantiles; checkpoints from before, which lack the setting
    and the knots, keep mean and spread."""
    from model import QUANTILE_KNOTS
    new = build_model(ModelConfig(backbone="none", use_pose=True, num_classes=3, pose_dim=4, box_motion_dim=2,
                                  input_stats=True, input_scaling="quantile"))
    assert new.pose_knots.shape == (4, QUANTILE_KNOTS) and new.motion_knots.shape == (2, QUANTILE_KNOTS)
    old_args = {k: v for k, v in model_args(new.cfg).items() if k != "input_scaling"}
    old = build_model(ModelConfig(**format_1_model_args(old_args)))
    assert old.cfg.input_scaling == "standard" and not hasattr(old, "pose_knots")
    x = torch.full((1, 30, 4), 5.0)
    old.set_input_stats(pose_mean=torch.ones(4), pose_std=torch.full((4,), 2.0), pose_knots=torch.zeros(4, 9))
    torch.testing.assert_close(old._standardise(x, "pose"), torch.full((1, 30, 4), 2.0))


def test_an_ensemble_shares_one_frozen_backbone_and_averages_its_members():
    """Members start from their own random weights, read the features of the one backbone (encoded once, held by
    the first member), and the model's probabilities are the mean of theirs."""
    model = build_model(config(use_pose=True, ensemble_members=3)).eval()
    keys = model.state_dict().keys()
    assert any(k.startswith("members.0.backbone.") for k in keys)
    assert not any(k.startswith(("members.1.backbone.", "members.2.backbone.")) for k in keys)
    first, second = (model.members[i].classifier.weight for i in (0, 1))
    assert not torch.allclose(first, second)
    frames, pose = clip()
    visual = model.encode_frames(frames)
    alone = torch.stack([torch.softmax(m.forward_head(m.forward_from_features(visual, pose)), -1)
                         for m in model.members])
    assert not torch.allclose(alone[0], alone[1], atol=1e-3)
    probs, embeddings = model.window_outputs(visual, pose)
    torch.testing.assert_close(probs, alone.mean(0))
    torch.testing.assert_close(torch.softmax(model(frames, pose), -1), alone.mean(0))
    assert embeddings.shape == (2, 3 * 16)
    with pytest.raises(UserError, match="ensemble_members 3 needs a frozen backbone"):
        ModelSettings(backbone="resnet18", ensemble_members=3, train_backbone=True).check()
    with pytest.raises(UserError, match="ensemble_members 2 applies to the neural and gbt classifiers"):
        ModelSettings(classifier="mstcn", use_pose=True, ensemble_members=2).check()


def test_feature_dropout_blanks_whole_features_per_window_in_training_only():
    model = build_model(config(backbone="none", use_pose=True, feature_dropout=0.5, feature_shift=0.0))
    seen = []
    torch.manual_seed(0)
    model.pose_proj[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))
    pose = torch.randn(64, 6, 10)
    model.train()(pose=pose)
    kept = (seen[-1] == pose).all(1)  # (windows, features): the feature kept over the whole window
    blanked = (seen[-1] == 0).all(1)
    assert (kept | blanked).all()
    assert 0.35 < blanked.float().mean() < 0.65
    model.eval()(pose=pose)
    torch.testing.assert_close(seen[-1], pose)


def test_feature_shift_moves_each_feature_by_one_offset_per_window_in_training_only():
    model = build_model(config(backbone="none", use_pose=True, feature_shift=0.5))
    seen = []
    torch.manual_seed(0)
    model.pose_proj[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))
    pose = torch.randn(256, 6, 10)
    model.train()(pose=pose)
    offset = seen[-1] - pose  # (windows, steps, features)
    torch.testing.assert_close(offset, offset[:, :1].expand_as(offset))  # one offset over the whole window
    assert 0.45 < offset[:, 0].std().item() < 0.55 and abs(offset[:, 0].mean().item()) < 0.05
    assert offset[:, 0].std(0).min() > 0.3  # every feature is moved, each by its own draw
    model.eval()(pose=pose)
    torch.testing.assert_close(seen[-1], pose)
    # a checkpoint from before the setting lacks the key: it was trained without a shift
    old_args = {k: v for k, v in model_args(model.cfg).items() if k != "feature_shift"}
    assert ModelConfig(**format_1_model_args(old_args)).feature_shift == 0.0
    assert ModelSettings().feature_shift == 0.3  # new runs shift by default


def test_gbt_seeds_differ_only_when_splits_draw_features():
    """gbt_max_features < 1: each split chooses from a random share of the features, so trees of other seeds
    differ (a committee for suggest_review.py --other_results); at 1 the seed changes nothing."""
    from classifiers import WindowStatsGBT
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(120, 6, 8)).astype(np.float32)
    labels = (pose[:, :, 0].mean(1) + 0.5 * pose[:, :, 1].mean(1) + rng.normal(0, 0.3, 120) > 0).astype(int)
    motion = np.zeros((120, 6, 0), np.float32)

    def probs(max_features, seed):
        cfg = ModelConfig(classifier="gbt", use_pose=True, pose_dim=8, num_classes=2, gbt_max_iter=20,
                          gbt_max_features=max_features)
        return WindowStatsGBT(cfg).fit_arrays(pose, motion, labels, seed=seed).predict_proba(pose, motion)
    np.testing.assert_array_equal(probs(1.0, 0), probs(1.0, 1))
    assert np.abs(probs(0.5, 0) - probs(0.5, 1)).max() > 0.01


def test_a_gbt_ensemble_averages_members_fitted_on_bootstraps_within_each_class():
    """ensemble_members > 1 with gbt: each member sees its own bootstrap of the windows (a window's augmented
    views drawn with it, every class keeping its count), the model averages the members, and the stored model
    holds every member."""
    from classifiers import WindowStatsGBT, bootstrap_weights
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(120, 6, 8)).astype(np.float32)
    labels = (pose[:, :, 0].mean(1) + 0.5 * pose[:, :, 1].mean(1) + rng.normal(0, 0.3, 120) > 0).astype(int)
    motion = np.zeros((120, 6, 0), np.float32)
    windows = np.arange(120) % 40  # 40 windows, each with two augmented views after it
    row_labels = labels[windows]
    weights = bootstrap_weights(row_labels, windows, seed=3)
    for window in range(40):
        assert len(set(weights[windows == window])) == 1  # a window's views share its draw
    for label in (0, 1):
        assert weights[row_labels == label].sum() == (row_labels == label).sum()  # the class keeps its count
    assert (weights == 0).any() and (weights > 1).any()  # a bootstrap: some windows left out, some twice
    cfg = ModelConfig(classifier="gbt", use_pose=True, pose_dim=8, num_classes=2, gbt_max_iter=20,
                      ensemble_members=3)
    trees = WindowStatsGBT(cfg).fit_arrays(pose, motion, labels, seed=0)
    alone = np.stack([m.predict_proba(trees.window_features(pose, motion)) for m in trees.estimators])
    assert len(alone) == 3 and np.abs(alone[0] - alone[1]).max() > 0.01  # members differ by their draws
    np.testing.assert_allclose(trees.predict_proba(pose, motion), alone.mean(0))
    loaded = WindowStatsGBT(cfg)
    loaded.load_state_dict(trees.state_dict())
    np.testing.assert_allclose(loaded.predict_proba(pose, motion), alone.mean(0))
    single = WindowStatsGBT(ModelConfig(classifier="gbt", use_pose=True, pose_dim=8, num_classes=2,
                                        gbt_max_iter=20)).fit_arrays(pose, motion, labels)
    again = WindowStatsGBT(single.cfg)
    again.load_state_dict(single.state_dict())  # one member is stored as one estimator, as before ensembles
    assert len(again.estimators) == 1
    np.testing.assert_allclose(again.predict_proba(pose, motion), single.predict_proba(pose, motion))
