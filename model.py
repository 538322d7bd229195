"""Stage D/E models: one registry of frame/video backbones, temporal heads and pose-fusion modules, and
BehaviorSequenceClassifier, which combines them.

    frames [B,T,3,H,W] -> backbone -> V [B,T,Dv] -+-> fusion(V, pose') -> [B,T,Df] -+-> temporal head -> [B,Dh]
    pose   [B,T,Dp]   -> proj      -> P' [B,T,F] -+                                 |   -> dropout -> linear
    motion [B,T,5]    -> proj      -> M' [B,T,Fm] ----------------------------------+  (concatenated)

Pose and box-motion inputs are scaled with training-set statistics kept as model buffers (input_stats):
through their quantiles onto a normal scale (input_scaling quantile), or by mean and spread (standard).

The classifier exposes `encode_frames` (backbone only) and `forward_from_features` (everything after it),
so a frozen backbone's features can be cached in training and reused across overlapping inference windows.
A video backbone encodes a whole clip to one embedding; pose is then pooled over time and fused once.

With ensemble_members > 1, ClassifierEnsemble holds that many such networks, trained one after another, on one
frozen backbone and averages their probabilities.

These are the networks of the `neural` classifier kind; classifiers.py holds the contract every kind (networks,
ensembles, gradient-boosted trees) meets and the registry that creates them.
"""
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm
import torchvision.models.video as tvvm

from utils.errors import UserError, first_line
from utils.registry import Registry
from utils.schema import ModelSettings, PreprocessingConfig


BACKBONES = Registry("backbone")
TEMPORAL_HEADS = Registry("sequence_model")
FUSIONS = Registry("pose_fusion_strategy")
DENSE_MODELS = Registry("dense model")  # per-frame networks; each is a classifier kind of its own (classifiers.py)


@dataclass
class ModelConfig(ModelSettings):
    """Everything needed to rebuild the model: the user's `model` settings (declared in utils/schema.py) plus
    sizes that come from the data. Stored in checkpoints as a plain dict (model_args)."""
    num_classes: int = 0  # from the data: the manifest's classes
    pose_dim: int = 0  # from the data: pose feature size (0 = no keypoints)
    box_motion_dim: int = 0  # from the data: box-motion and sensor feature size (0 = none, as before box motion)
    sensor_dim: int = 0  # from the data: the sensor streams' share of box_motion_dim, its last values (multimodal)
    input_stats: bool = False  # pose/motion inputs scaled by training-set statistics (model buffers)
    crop_size: int = PreprocessingConfig.crop_size  # from the data: the manifest's crop_size
    window_size: int = PreprocessingConfig.window_size  # from the data: the manifest's window_size

    def __post_init__(self):
        if self.num_classes < 1:
            raise ValueError(f"ModelConfig needs num_classes >= 1, got {self.num_classes}")

    @property
    def motion_input_dim(self) -> int:
        """Size of the motion input the model reads: box motion and sensor streams, as the data gave them."""
        return self.box_motion_dim if self.use_box_motion or self.use_sensors else 0


# ------------------------------------------------------------------------------------------------ input scaling
QUANTILE_KNOTS = 129  # training quantiles kept per input feature for quantile scaling


def quantile_levels(count: int = QUANTILE_KNOTS) -> torch.Tensor:
    """The probability of each knot: (i + 0.5) / count, so the normal scale ends at about +-2.66, not infinity."""
    return (torch.arange(count, dtype=torch.float64) + 0.5) / count


def quantile_knots(rows: torch.Tensor, count: int = QUANTILE_KNOTS) -> torch.Tensor:
    """(features, count) training quantiles of rows (N, features), non-decreasing along each feature."""
    knots = np.quantile(rows.double().numpy(), quantile_levels(count).numpy(), axis=0)  # torch's caps the size
    return torch.from_numpy(knots.T.astype(np.float32)).contiguous()


def quantile_scale(x: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """Each feature of x (..., F) mapped through its training quantiles (knots (F, K)) onto a standard normal scale:
    its quantile level, interpolated linearly between knots, through the inverse normal CDF; values beyond the
    training range take the end levels. Where a value recurs (knots tied, as for a feature that is often exactly 0)
    it gets the middle of its levels, as scikit-learn's QuantileTransformer does: the mean of interpolating from
    below and from above."""
    shape, count = x.shape, knots.shape[1]
    levels = quantile_levels(count).to(x.dtype).to(x.device)
    flat = x.reshape(-1, shape[-1]).T.contiguous()  # (F, N)

    def level(right: bool) -> torch.Tensor:
        i = torch.searchsorted(knots, flat, right=right).clamp(1, count - 1)
        low, high = knots.gather(1, i - 1), knots.gather(1, i)
        width = high - low
        w = torch.where(width > 0, (flat - low) / torch.where(width > 0, width, 1), 0).clamp(0, 1)
        return levels[i - 1] + w * (levels[i] - levels[i - 1])

    return torch.special.ndtri(0.5 * (level(False) + level(True))).T.reshape(shape)


# ------------------------------------------------------------------------------------------------ backbones
@dataclass
class BackboneSpec:
    module: nn.Module
    dim: int
    is_video: bool
    min_crop: int = 32
    fixed_crop: int = None


def _torchvision(builder, cfg: ModelConfig) -> nn.Module:
    """A torchvision model, randomly initialised or with ImageNet weights from a local file: --backbone_weights, or
    the file torchvision keeps in its cache. Nothing is downloaded at run time; a missing file stops the run with
    where it goes and where to get it."""
    if not cfg.pretrained_backbone:
        return builder(weights=None)
    if cfg.backbone_weights:
        path = Path(cfg.backbone_weights)
        if not path.is_file():
            raise UserError(f"backbone_weights file not found: {path}; give a local state-dict file of "
                            f"{cfg.backbone}'s ImageNet weights or use --no_pretrained_backbone")
        return _with_state_dict(builder, path, cfg.backbone)
    url = tvm.get_model_weights(builder).DEFAULT.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if not cached.is_file():
        raise UserError(f"{cfg.backbone} starts from ImageNet weights and nothing is downloaded at run time: download "
                        f"{url} on a machine with internet and put it at {cached} (or pass --backbone_weights PATH "
                        f"to it), or train from scratch with --no_pretrained_backbone")
    return _with_state_dict(builder, cached, cfg.backbone)


def _with_state_dict(builder, path: Path, name: str) -> nn.Module:
    """The model with a local state dict loaded safely (plain tensors only)."""
    model = builder(weights=None)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
    except RuntimeError as exc:
        raise UserError(f"{path} does not match {name}: {first_line(exc)}") from None
    return model


def _pooled_cnn(model) -> nn.Module:
    return nn.Sequential(model.features, model.avgpool, nn.Flatten(1))


@BACKBONES.register("mobilenet_v3_small")
def _mobilenet_v3_small(cfg):
    return BackboneSpec(_pooled_cnn(_torchvision(tvm.mobilenet_v3_small, cfg)), 576, False)


@BACKBONES.register("mobilenet_v3_large")
def _mobilenet_v3_large(cfg):
    return BackboneSpec(_pooled_cnn(_torchvision(tvm.mobilenet_v3_large, cfg)), 960, False)


@BACKBONES.register("efficientnet_b0")
def _efficientnet_b0(cfg):
    return BackboneSpec(_pooled_cnn(_torchvision(tvm.efficientnet_b0, cfg)), 1280, False)


@BACKBONES.register("resnet18")
def _resnet18(cfg):
    model = _torchvision(tvm.resnet18, cfg)
    model.fc = nn.Identity()
    return BackboneSpec(model, 512, False)


@BACKBONES.register("vit_b_16")
def _vit_b_16(cfg):
    model = _torchvision(tvm.vit_b_16, cfg)
    model.heads = nn.Identity()
    return BackboneSpec(model, 768, False, fixed_crop=224)


def _video_resnet(builder, cfg):
    model = _torchvision(builder, cfg)
    model.fc = nn.Identity()
    return BackboneSpec(model, 512, True, min_crop=32)


@BACKBONES.register("r3d_18")
def _r3d_18(cfg):
    return _video_resnet(tvvm.r3d_18, cfg)


@BACKBONES.register("r2plus1d_18")
def _r2plus1d_18(cfg):
    return _video_resnet(tvvm.r2plus1d_18, cfg)


class _Stem(nn.Module):
    """conv-BN-ReLU-maxpool; attribute names follow pytorchvideo's ResNetBasicStem."""

    def __init__(self, dim_out: int, kernel_t: int):
        super().__init__()
        self.conv = nn.Conv3d(3, dim_out, (kernel_t, 7, 7), (1, 2, 2), (kernel_t // 2, 3, 3), bias=False)
        self.norm = nn.BatchNorm3d(dim_out)
        self.pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))

    def forward(self, x):
        return self.pool(torch.relu(self.norm(self.conv(x))))


class _Bottleneck(nn.Module):
    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, kernel_t: int, stride: int):
        super().__init__()
        self.conv_a = nn.Conv3d(dim_in, dim_inner, (kernel_t, 1, 1), padding=(kernel_t // 2, 0, 0), bias=False)
        self.norm_a = nn.BatchNorm3d(dim_inner)
        self.conv_b = nn.Conv3d(dim_inner, dim_inner, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.norm_b = nn.BatchNorm3d(dim_inner)
        self.conv_c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(dim_out)

    def forward(self, x):
        x = torch.relu(self.norm_a(self.conv_a(x)))
        x = torch.relu(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class _ResBlock(nn.Module):
    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, kernel_t: int, stride: int):
        super().__init__()
        if dim_in != dim_out or stride != 1:
            self.branch1_conv = nn.Conv3d(dim_in, dim_out, 1, (1, stride, stride), bias=False)
            self.branch1_norm = nn.BatchNorm3d(dim_out)
        self.branch2 = _Bottleneck(dim_in, dim_inner, dim_out, kernel_t, stride)

    def forward(self, x):
        shortcut = self.branch1_norm(self.branch1_conv(x)) if hasattr(self, "branch1_conv") else x
        return torch.relu(shortcut + self.branch2(x))


class _ResStage(nn.Module):
    def __init__(self, depth: int, dim_in: int, dim_inner: int, dim_out: int, kernel_t: int, stride: int):
        super().__init__()
        self.res_blocks = nn.ModuleList(
            _ResBlock(dim_in if i == 0 else dim_out, dim_inner, dim_out, kernel_t, stride if i == 0 else 1)
            for i in range(depth))

    def forward(self, x):
        for block in self.res_blocks:
            x = block(x)
        return x


class _FuseFastToSlow(nn.Module):
    """Lateral connection: the fast pathway, strided in time by alpha, concatenated to the slow one."""

    def __init__(self, fast_dim: int, alpha: int):
        super().__init__()
        self.conv_fast_to_slow = nn.Conv3d(fast_dim, 2 * fast_dim, (7, 1, 1), (alpha, 1, 1), (3, 0, 0), bias=False)
        self.norm = nn.BatchNorm3d(2 * fast_dim)

    def forward(self, slow, fast):
        return torch.cat([slow, torch.relu(self.norm(self.conv_fast_to_slow(fast)))], 1), fast


class _MultiPathway(nn.Module):
    def __init__(self, slow: nn.Module, fast: nn.Module, fusion: nn.Module = None):
        super().__init__()
        self.multipathway_blocks = nn.ModuleList([slow, fast])
        self.multipathway_fusion = fusion

    def forward(self, slow, fast):
        slow, fast = self.multipathway_blocks[0](slow), self.multipathway_blocks[1](fast)
        return self.multipathway_fusion(slow, fast) if self.multipathway_fusion is not None else (slow, fast)


class SlowFastR50(nn.Module):
    """SlowFast-R50 (Feichtenhofer et al. 2019) in the project's own code. Parameter names and shapes equal
    the published Kinetics-400 checkpoint's (pytorchvideo slowfast_r50, blocks.0-4), so its backbone loads
    from a local file. (B, 3, T, H, W) -> (B, 2304): the pooled slow (2048) and fast (256) pathways."""
    DEPTHS, SLOW_INNER, REDUCTION = (3, 4, 6, 3), (64, 128, 256, 512), 8
    SLOW_KERNEL_T, FAST_KERNEL_T = (1, 1, 3, 3), (3, 3, 3, 3)

    def __init__(self, alpha: int = 4):
        super().__init__()
        self.alpha = alpha
        blocks = [_MultiPathway(_Stem(64, 1), _Stem(8, 5), _FuseFastToSlow(8, alpha))]
        slow_in, fast_in = 64 + 2 * 8, 8
        for i, depth in enumerate(self.DEPTHS):
            inner, stride = self.SLOW_INNER[i], 1 if i == 0 else 2
            slow_out, fast_out = inner * 4, inner * 4 // self.REDUCTION
            slow = _ResStage(depth, slow_in, inner, slow_out, self.SLOW_KERNEL_T[i], stride)
            fast = _ResStage(depth, fast_in, inner // self.REDUCTION, fast_out, self.FAST_KERNEL_T[i], stride)
            last = i == len(self.DEPTHS) - 1
            blocks.append(_MultiPathway(slow, fast, None if last else _FuseFastToSlow(fast_out, alpha)))
            slow_in, fast_in = slow_out + (0 if last else 2 * fast_out), fast_out
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):  # (B, 3, T, H, W)
        slow, fast = x[:, :, :: self.alpha], x  # slow pathway: every alpha-th frame
        for block in self.blocks:
            slow, fast = block(slow, fast)
        return torch.cat([slow.mean((2, 3, 4)), fast.mean((2, 3, 4))], 1)


def load_slowfast_weights(model: SlowFastR50, path) -> None:
    """Backbone weights from a published SlowFast-R50 checkpoint (a `model_state` dict or a plain state
    dict); its Kinetics classifier (blocks.6) is left out."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"backbone_weights file not found: {path}; give the Kinetics-400 SlowFast-R50 checkpoint "
                        f"(SLOWFAST_8x8_R50.pyth) or use --no_pretrained_backbone")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model_state", state.get("model", state))
    state = {k: v for k, v in state.items() if not k.startswith(("blocks.5.", "blocks.6."))}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"{path} is not a SlowFast-R50 checkpoint: {first_line(exc)}") from None


@BACKBONES.register("slowfast_r50")
def _slowfast_r50(cfg):
    if cfg.window_size < cfg.slowfast_alpha:
        raise UserError(f"slowfast_r50 needs clips of at least slowfast_alpha={cfg.slowfast_alpha} frames, the "
                        f"windows have {cfg.window_size}; prepare longer windows or lower --slowfast_alpha")
    model = SlowFastR50(cfg.slowfast_alpha)
    if cfg.pretrained_backbone:
        if not cfg.backbone_weights:
            raise UserError("slowfast_r50 has no weights that can be fetched: pass --backbone_weights PATH to the "
                            "Kinetics-400 SlowFast-R50 checkpoint (SLOWFAST_8x8_R50.pyth), or --no_pretrained_backbone")
        load_slowfast_weights(model, cfg.backbone_weights)
    return BackboneSpec(model, 2304, True)


def build_backbone(cfg: ModelConfig) -> BackboneSpec:
    """The backbone cfg names; with backbone_weights naming a BehaviorScope checkpoint, the backbone that run
    trained (a neural model fine-tuned on the lab's own frames, --train_backbone), instead of ImageNet weights."""
    trained = trained_backbone_state(cfg)
    spec = BACKBONES.get(cfg.backbone)(replace(cfg, pretrained_backbone=False) if trained else cfg)
    if trained:
        try:
            spec.module.load_state_dict(trained)
        except RuntimeError as exc:
            raise UserError(f"the backbone of {cfg.backbone_weights} does not fit {cfg.backbone}: "
                            f"{first_line(exc)}") from None
    return spec


def trained_backbone_state(cfg: ModelConfig):
    """The backbone weights of the BehaviorScope checkpoint backbone_weights names (a model's `backbone.` weights; an
    ensemble's first member holds them), or None when backbone_weights is not one."""
    path = Path(cfg.backbone_weights) if cfg.pretrained_backbone and cfg.backbone_weights else None
    if path is None or not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not (isinstance(state, dict) and "model_args" in state and "model" in state):
        return None
    name = state["model_args"].get("backbone")
    weights = {key.split("backbone.", 1)[1]: value for key, value in state["model"].items()
               if key.startswith(("backbone.", "members.0.backbone."))}
    if not weights:
        raise UserError(f"backbone_weights {path} is a BehaviorScope model without a frame backbone (classifier "
                        f"{state['model_args'].get('classifier')}, trained on pose or box motion); give one trained "
                        f"on frames, or a state-dict file of {cfg.backbone}'s ImageNet weights")
    if name != cfg.backbone:
        raise UserError(f"backbone_weights {path} holds a {name} backbone, not {cfg.backbone}; pass --backbone {name}")
    return weights


def check_crop_size(name: str, spec: BackboneSpec, crop_size: int) -> None:
    if spec.fixed_crop and crop_size != spec.fixed_crop:
        raise UserError(f"backbone {name} takes {spec.fixed_crop}x{spec.fixed_crop} crops, the data has "
                        f"{crop_size}; re-run preprocessing with --crop_size {spec.fixed_crop} or pick another backbone")
    if crop_size < spec.min_crop:
        raise UserError(f"backbone {name} needs crops of at least {spec.min_crop} px, the data has {crop_size}; "
                        f"re-run preprocessing with a larger --crop_size")


# ------------------------------------------------------------------------------------------- temporal parts
def check_heads_divide(module: str, dim: int, heads: int) -> None:
    if dim % heads:
        raise UserError(f"{module}: embedding dimension {dim} is not divisible by --attention_heads {heads}; "
                        f"pick heads that divide {dim} (or change --hidden_dim / --pose_fusion_dim)")


class PositionalEncoding(nn.Module):
    def __init__(self, kind: str, dim: int, max_len: int = 1024):
        super().__init__()
        self.kind = kind
        if kind == "learned":
            self.table = nn.Parameter(torch.zeros(1, max_len, dim))
            nn.init.normal_(self.table, std=0.02)
        elif kind == "sinusoidal":
            pos = torch.arange(max_len).float()[:, None]
            freq = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
            table = torch.zeros(1, max_len, dim)
            table[0, :, 0::2] = torch.sin(pos * freq)
            table[0, :, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
            self.register_buffer("table", table, persistent=False)

    def forward(self, x):  # (B, T, D)
        return x if self.kind == "none" else x + self.table[:, : x.shape[1]]


class AttentionPool(nn.Module):
    """A learned query attends over all time steps: (B, T, D) -> (B, D)."""

    def __init__(self, dim: int, heads: int, module_name: str):
        super().__init__()
        check_heads_divide(module_name, dim, heads)
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):  # (B, T, D)
        out, _ = self.attn(self.query.expand(x.shape[0], -1, -1), x, x, need_weights=False)
        return out[:, 0]


class LSTMHead(nn.Module):
    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, cfg.hidden_dim, cfg.num_layers, batch_first=True, bidirectional=cfg.bidirectional,
                            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.out_dim = cfg.hidden_dim * (2 if cfg.bidirectional else 1)
        self.pool = AttentionPool(self.out_dim, cfg.attention_heads, "LSTM attention pool") if cfg.attention_pool else None

    def forward(self, x):  # (B, T, D)
        steps, (h, _) = self.lstm(x)  # steps (B, T, H*dirs); h (layers*dirs, B, H)
        if self.pool is not None:
            return self.pool(steps)
        if self.lstm.bidirectional:
            return torch.cat([h[-2], h[-1]], -1)  # last layer, forward and backward final states
        return h[-1]


class AttentionHead(nn.Module):
    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        self.pool = AttentionPool(in_dim, cfg.attention_heads, "attention head")
        self.out_dim = in_dim

    def forward(self, x):
        return self.pool(x)


class TCNHead(nn.Module):
    """Residual dilated 1-D convolutions (dilation 1, 2, 4, ...), then the mean over time."""

    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        self.inp = nn.Conv1d(in_dim, cfg.hidden_dim, 1)
        self.blocks = nn.ModuleList(nn.Sequential(
            nn.Conv1d(cfg.hidden_dim, cfg.hidden_dim, 3, padding=2 ** i, dilation=2 ** i),
            nn.BatchNorm1d(cfg.hidden_dim), nn.ReLU()) for i in range(max(cfg.num_layers, 1) + 1))
        self.out_dim = cfg.hidden_dim

    def forward(self, x):  # (B, T, D)
        y = self.inp(x.transpose(1, 2))  # (B, H, T)
        for block in self.blocks:
            y = y + block(y)
        return y.mean(-1)


TEMPORAL_HEADS.register("lstm")(LSTMHead)
TEMPORAL_HEADS.register("attention")(AttentionHead)
TEMPORAL_HEADS.register("tcn")(TCNHead)


# ----------------------------------------------------------------------------------------------- pose fusion
class GatedAttentionFusion(nn.Module):
    """g = sigmoid(MLP([V, P'])) gates V; output concat(V * g, P'). Without pose: gates open, P' = 0."""

    def __init__(self, v_dim: int, p_dim: int, heads: int):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(v_dim + p_dim, v_dim), nn.ReLU(), nn.Linear(v_dim, v_dim))
        self.out_dim = v_dim + p_dim

    def forward(self, v, p, present):  # v (B,T,Dv), p (B,T,F), present (B,)
        g = torch.sigmoid(self.gate(torch.cat([v, p], -1)))
        keep = present[:, None, None]
        g = torch.where(keep, g, torch.ones_like(g))
        return torch.cat([v * g, p * keep], -1)


class CrossModalFusion(nn.Module):
    """Tokens [V_t, proj(P'_t)] in d_model = Dv through one Transformer encoder layer per time step; outputs
    concatenated. Without pose the pose token is masked out and its output zeroed."""

    def __init__(self, v_dim: int, p_dim: int, heads: int):
        super().__init__()
        check_heads_divide("cross_modal_transformer fusion", v_dim, heads)
        self.proj = nn.Linear(p_dim, v_dim)
        self.layer = nn.TransformerEncoderLayer(v_dim, heads, dim_feedforward=2 * v_dim, batch_first=True,
                                                dropout=0.1)
        self.out_dim = 2 * v_dim

    def forward(self, v, p, present):
        b, t, d = v.shape
        tokens = torch.stack([v, self.proj(p)], 2).reshape(b * t, 2, d)  # (B*T, 2, Dv)
        pad = torch.zeros(b * t, 2, dtype=torch.bool, device=v.device)
        pad[:, 1] = ~present.repeat_interleave(t)
        out = self.layer(tokens, src_key_padding_mask=pad).reshape(b, t, 2, d)
        out = torch.cat([out[:, :, 0], out[:, :, 1] * present[:, None, None]], -1)
        return out


class ConcatFusion(nn.Module):
    def __init__(self, v_dim: int, p_dim: int, heads: int):
        super().__init__()
        self.out_dim = v_dim + p_dim

    def forward(self, v, p, present):
        return torch.cat([v, p * present[:, None, None]], -1)


FUSIONS.register("gated_attention")(GatedAttentionFusion)
FUSIONS.register("cross_modal_transformer")(CrossModalFusion)
FUSIONS.register("concat")(ConcatFusion)


# ------------------------------------------------------------------------------------------------ classifier
class ScaledInputs(nn.Module):
    """Pose and box-motion inputs scaled by training-set statistics held as buffers (cfg.input_stats), and in
    training blanked and shifted per window (cfg.feature_dropout, cfg.feature_shift): every network that reads
    them (the window classifier, the dense models) scales them this one way."""
    cfg: ModelConfig

    def register_input_buffers(self) -> None:
        cfg = self.cfg
        if cfg.input_stats:
            for name, dim in (("pose", cfg.pose_dim), ("motion", cfg.box_motion_dim)):
                self.register_buffer(f"{name}_mean", torch.zeros(dim))
                self.register_buffer(f"{name}_std", torch.ones(dim))
                if cfg.input_scaling == "quantile":
                    self.register_buffer(f"{name}_knots", torch.zeros(dim, QUANTILE_KNOTS))

    def set_input_stats(self, **stats) -> None:
        """Training-set statistics of the pose and box-motion inputs (needs cfg.input_stats): {pose,motion}_mean,
        _std and, with quantile scaling, _knots (features x QUANTILE_KNOTS); those the model has no buffer for are
        not needed."""
        for name, value in stats.items():
            if value is not None and value.numel() and hasattr(self, name):
                getattr(self, name).copy_(value)

    def _standardise(self, x, name: str):
        if not self.cfg.input_stats or x is None:
            return x
        if self.cfg.input_scaling == "quantile":
            return quantile_scale(x, getattr(self, f"{name}_knots"))
        return (x - getattr(self, f"{name}_mean")) / getattr(self, f"{name}_std")

    def _scaled(self, x, name: str):
        """Scaled inputs (B, T, F); in training, features blanked per window (feature_dropout; not rescaled: 0 is
        the typical value on either input scale) and moved by one offset per window (feature_shift)."""
        x = self._standardise(x, name)
        if not self.training or x is None:
            return x
        if self.cfg.feature_dropout:
            x = x * torch.bernoulli(torch.full_like(x[:, :1], 1 - self.cfg.feature_dropout))
        if self.cfg.feature_shift:
            x = x + self.cfg.feature_shift * torch.randn_like(x[:, :1])
        return x


class BehaviorSequenceClassifier(ScaledInputs):
    def __init__(self, cfg: ModelConfig, shared_backbone: BackboneSpec = None):
        """shared_backbone: another member's (ClassifierEnsemble), whose features this model reads without holding
        the module."""
        super().__init__()
        self.cfg = cfg
        self.backbone, v_dim, self.is_video = None, 0, False
        self.sees_frames = cfg.backbone != "none"
        if self.sees_frames:
            spec = shared_backbone or build_backbone(cfg)
            v_dim, self.is_video = spec.dim, spec.is_video
            if shared_backbone is None:
                check_crop_size(cfg.backbone, spec, cfg.crop_size)
                self.backbone = spec.module
                self.backbone.requires_grad_(cfg.train_backbone)
        elif not cfg.use_pose:
            raise UserError("--backbone none needs --use_pose (a pose-only model); otherwise pick a backbone")
        self.visual_dim = v_dim
        if cfg.use_pose and cfg.pose_dim <= 0:
            raise UserError("--use_pose needs pose features, but the data has no keypoints (pose_dim 0); "
                            "prepare the data with YOLO pose weights or drop --use_pose")
        self.pose_proj = (nn.Sequential(nn.Linear(cfg.pose_dim, cfg.pose_fusion_dim), nn.ReLU())
                          if cfg.use_pose else None)
        self.fusion, seq_dim = None, v_dim
        if cfg.use_pose and self.sees_frames:
            self.fusion = FUSIONS.get(cfg.pose_fusion_strategy)(v_dim, cfg.pose_fusion_dim, cfg.attention_heads)
            seq_dim = self.fusion.out_dim
        elif not self.sees_frames:
            seq_dim = cfg.pose_fusion_dim
        self.motion_proj = None
        if cfg.motion_input_dim:
            self.motion_proj = nn.Sequential(nn.Linear(cfg.box_motion_dim, cfg.motion_proj_dim), nn.ReLU())
            seq_dim += cfg.motion_proj_dim
        self.register_input_buffers()
        self.feature_dim = seq_dim
        if self.is_video:  # one embedding per clip: temporal settings do not apply
            self.temporal, self.head, out_dim = nn.Identity(), None, seq_dim
        else:
            self.temporal = self._temporal_encoder(seq_dim)
            self.head = TEMPORAL_HEADS.get(cfg.sequence_model)(seq_dim, cfg)
            out_dim = self.head.out_dim
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(out_dim, cfg.num_classes)

    def _temporal_encoder(self, dim: int) -> nn.Module:
        layers = [PositionalEncoding(self.cfg.positional_encoding, dim)]
        if self.cfg.temporal_attention_layers:
            check_heads_divide("temporal self-attention", dim, self.cfg.attention_heads)
            layers += [nn.TransformerEncoderLayer(dim, self.cfg.attention_heads, dim_feedforward=2 * dim,
                                                  dropout=0.1, batch_first=True)
                       for _ in range(self.cfg.temporal_attention_layers)]
        return nn.Sequential(*layers)

    def train(self, mode: bool = True):
        """A frozen backbone stays in eval mode: its BatchNorm statistics and dropout must not change."""
        super().train(mode)
        if self.backbone is not None and not self.cfg.train_backbone:
            self.backbone.eval()
        return self

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Frame backbone: (B, T, 3, H, W) -> (B, T, Dv). Video backbone: (B, T, 3, H, W) -> (B, 1, Dv)."""
        b, t = frames.shape[:2]
        with torch.set_grad_enabled(self.cfg.train_backbone and torch.is_grad_enabled()):
            if self.is_video:
                return self.backbone(frames.transpose(1, 2))[:, None]  # backbone takes (B, 3, T, H, W)
            return self.backbone(frames.flatten(0, 1)).reshape(b, t, -1)

    def forward_from_features(self, visual=None, pose=None, pose_present=None, motion=None) -> torch.Tensor:
        """Everything after the backbone, up to the clip representation (B, D_head)."""
        p = None
        if self.pose_proj is not None:
            p = self.pose_proj(self._scaled(pose, "pose"))  # (B, T, F)
            if pose_present is None:
                pose_present = torch.ones(p.shape[0], dtype=torch.bool, device=p.device)
            if self.is_video:  # pose pooled over time, fused once with the clip embedding
                p = p.mean(1, keepdim=True)
        if not self.sees_frames:
            x = p
        elif self.fusion is not None:
            x = self.fusion(visual, p, pose_present)
        else:
            x = visual
        if self.motion_proj is not None:  # locomotion and size, beside whatever the crops and pose gave
            m = self.motion_proj(self._scaled(motion, "motion"))
            x = torch.cat([x, m.mean(1, keepdim=True) if self.is_video else m], -1)
        if self.is_video:
            return x[:, 0]
        return self.head(self.temporal(x))

    def forward_features(self, frames=None, pose=None, pose_present=None, motion=None) -> torch.Tensor:
        visual = self.encode_frames(frames) if self.backbone is not None else None
        return self.forward_from_features(visual, pose, pose_present, motion)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(features))

    @property
    def uses_pose(self) -> bool:
        return self.pose_proj is not None

    @property
    def uses_motion(self) -> bool:
        return self.motion_proj is not None

    def window_outputs(self, visual=None, pose=None, pose_present=None, motion=None) -> tuple:
        """(class probabilities (B, C), embeddings (B, D)) of windows from backbone features (or crops of a video
        backbone); the embedding is the clip representation the classifier reads (utils.results.drift)."""
        features = self.forward_from_features(visual, pose, pose_present, motion)
        return torch.softmax(self.forward_head(features), -1), features

    def forward(self, frames=None, pose=None, pose_present=None, motion=None) -> torch.Tensor:
        return self.forward_head(self.forward_features(frames, pose, pose_present, motion))


class ClassifierEnsemble(nn.Module):
    """cfg.ensemble_members BehaviorSequenceClassifiers (a deep ensemble), each trained on its own from its own
    random start (training.ensemble.fit_members); the first holds the frozen backbone and the others read its
    features, so frames are encoded once. Predictions average the members' probabilities: steadier from run to run
    than one network, whose result depends on its seed and on which epoch validation happened to pick.

    Same interface as one classifier: forward and forward_head give the log of the mean probability (B, C), so
    softmax, argmax and cross-entropy see the ensemble."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        lead = BehaviorSequenceClassifier(cfg)
        shared = BackboneSpec(lead.backbone, lead.visual_dim, lead.is_video) if lead.sees_frames else None
        self.members = nn.ModuleList([lead] + [BehaviorSequenceClassifier(cfg, shared)
                                               for _ in range(cfg.ensemble_members - 1)])
        self.is_video, self.sees_frames = lead.is_video, lead.sees_frames

    @property
    def backbone(self):
        return self.members[0].backbone

    @property
    def uses_pose(self) -> bool:
        return self.members[0].uses_pose

    @property
    def uses_motion(self) -> bool:
        return self.members[0].uses_motion

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        return self.members[0].encode_frames(frames)

    def set_input_stats(self, **stats) -> None:
        for member in self.members:
            member.set_input_stats(**stats)

    def forward_from_features(self, visual=None, pose=None, pose_present=None, motion=None) -> torch.Tensor:
        """Every member's clip representation, stacked: (members, B, D_head)."""
        return torch.stack([m.forward_from_features(visual, pose, pose_present, motion) for m in self.members])

    def forward_features(self, frames=None, pose=None, pose_present=None, motion=None) -> torch.Tensor:
        visual = self.encode_frames(frames) if self.backbone is not None else None
        return self.forward_from_features(visual, pose, pose_present, motion)

    def mean_probabilities(self, features: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.softmax(m.forward_head(f).float(), -1)
                            for m, f in zip(self.members, features)]).mean(0)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.mean_probabilities(features).clamp(min=1e-12).log()

    def window_outputs(self, visual=None, pose=None, pose_present=None, motion=None) -> tuple:
        """(mean class probabilities (B, C), the members' clip representations side by side (B, members * D))."""
        features = self.forward_from_features(visual, pose, pose_present, motion)
        return self.mean_probabilities(features), features.permute(1, 0, 2).flatten(1)

    def forward(self, frames=None, pose=None, pose_present=None, motion=None) -> torch.Tensor:
        return self.forward_head(self.forward_features(frames, pose, pose_present, motion))


# ------------------------------------------------------------------------------------------------ dense models
class DilatedResidual(nn.Module):
    """One MS-TCN layer: a dilated 3-tap convolution over time, ReLU, a 1x1 mix, dropout, and the residual."""

    def __init__(self, dim: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(dim, dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):  # (B, D, T)
        return x + self.drop(self.mix(torch.relu(self.conv(x))))


class TCNStage(nn.Module):
    """A 1x1 projection, `layers` dilated residual layers (dilation 1, 2, 4, ...: a receptive field of
    2^(layers+1) - 1 frames), and per-frame logits."""

    def __init__(self, in_dim: int, dim: int, layers: int, classes: int, dropout: float):
        super().__init__()
        self.project = nn.Conv1d(in_dim, dim, 1)
        self.layers = nn.Sequential(*[DilatedResidual(dim, 2 ** i, dropout) for i in range(layers)])
        self.out = nn.Conv1d(dim, classes, 1)

    def forward(self, x, added=None) -> tuple:  # (B, D_in, T) -> logits (B, C, T), features (B, D, T)
        """added (B, D, T): joined to the projected inputs (the frame features, DenseSequenceLabeller)."""
        h = self.project(x)
        h = self.layers(h if added is None else h + added)
        return self.out(h), h


@DENSE_MODELS.register("mstcn")
class MultiStageTCN(nn.Module):
    """MS-TCN (Farha and Gall, CVPR 2019): a prediction stage on the inputs, then dense_stages - 1 refinement stages,
    each reading the previous stage's per-frame probabilities; every stage's logits are trained."""

    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        c, h = cfg.num_classes, cfg.dense_hidden
        self.stages = nn.ModuleList([TCNStage(in_dim, h, cfg.dense_layers, c, cfg.dropout)] +
                                    [TCNStage(c, h, cfg.dense_layers, c, cfg.dropout)
                                     for _ in range(cfg.dense_stages - 1)])

    def forward(self, x, padding=None, visual=None) -> tuple:
        """x (B, T, D), visual (B, T, H) projected frame features or None -> ([logits (B, T, C) of each stage],
        per-frame features of the first stage (B, T, H))."""
        logits, features = self.stages[0](x.transpose(1, 2), None if visual is None else visual.transpose(1, 2))
        stages = [logits]
        for stage in self.stages[1:]:
            logits, _ = stage(torch.softmax(logits, 1))
            stages.append(logits)
        return [s.transpose(1, 2) for s in stages], features.transpose(1, 2)


@DENSE_MODELS.register("dense_transformer")
class DenseTransformer(nn.Module):
    """A transformer encoder over the frames of a chunk (sinusoidal positions, dense_layers layers), per-frame
    logits: every frame attends to the whole chunk."""

    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        h = cfg.dense_hidden
        check_heads_divide("dense_transformer", h, cfg.attention_heads)
        self.project = nn.Linear(in_dim, h)
        self.position = PositionalEncoding("sinusoidal", h, max(cfg.dense_chunk, 1024))
        layer = nn.TransformerEncoderLayer(h, cfg.attention_heads, dim_feedforward=2 * h, dropout=0.1,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.dense_layers, enable_nested_tensor=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(h, cfg.num_classes)

    def forward(self, x, padding=None, visual=None) -> tuple:
        """x (B, T, D), padding (B, T) True on padded frames, visual (B, T, H) projected frame features or None ->
        ([logits (B, T, C)], features (B, T, H))."""
        h = self.project(x)
        h = self.encoder(self.position(h if visual is None else h + visual), src_key_padding_mask=padding)
        return [self.out(self.drop(h))], h


class RecordingAdapter(nn.Module):
    """The Rats system's per-session adapter without session ids: a scale and a shift of each input feature
    predicted from the chunk's own mean and spread over its real frames, so a recording's offsets (a sensor's bias
    and drift, a rig's geometry) are adapted to on recordings never seen in training. Starts as the identity."""

    def __init__(self, dim: int):
        super().__init__()
        self.film = nn.Linear(2 * dim, 2 * dim)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x, padding=None):  # (B, T, D)
        real = torch.ones_like(x[..., :1]) if padding is None else (~padding)[..., None].to(x.dtype)
        count = real.sum(1).clamp(min=1)
        mean = (x * real).sum(1) / count
        spread = (((x - mean[:, None]) ** 2 * real).sum(1) / count).sqrt()
        scale, shift = self.film(torch.cat([mean, spread], -1)).chunk(2, -1)
        return x * (1 + scale[:, None]) + shift[:, None]


class StreamEncoder(nn.Module):
    """One stream's encoder: its recording adapter, a 1x1 projection and dilated residual convolutions over time;
    a small GRU beside it predicts the other stream's per-frame representation (the cross-modal task)."""

    def __init__(self, in_dim: int, dim: int, layers: int, dropout: float):
        super().__init__()
        self.adapter = RecordingAdapter(in_dim)
        self.project = nn.Conv1d(in_dim, dim, 1)
        self.layers = nn.Sequential(*[DilatedResidual(dim, 2 ** i, dropout) for i in range(layers)])
        self.predict_other = nn.GRU(dim, dim, batch_first=True)

    def forward(self, x, padding=None, added=None):  # (B, T, D_in) -> (B, T, H); added (B, T, H) joins the projection
        h = self.project(self.adapter(x, padding).transpose(1, 2))
        return self.layers(h if added is None else h + added.transpose(1, 2)).transpose(1, 2)


class GatedCrossAttention(nn.Module):
    """One stream's frames attend to the other's; what they read is added through a learned gate (a gated
    residual), so a stream that does not help is shut out per frame."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.gate = nn.Linear(2 * dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, query, other, padding=None):
        read, _ = self.attention(query, other, other, key_padding_mask=padding, need_weights=False)
        return self.norm(query + torch.sigmoid(self.gate(torch.cat([query, read], -1))) * read)


@DENSE_MODELS.register("multimodal")
class MultimodalTCN(nn.Module):
    """The Rats system's design on the frames of a chunk: an encoder per stream (pose with box motion; the sensor
    streams: utils.features.sensors, the last cfg.sensor_dim inputs), cross-attention fusion with gated residuals,
    per-frame logits refined like MS-TCN's stages. Self-supervised (pretrain_pose.py, on frames labelled or not): the
    two streams' representations of the same frame are pulled together against other frames (contrastive, InfoNCE),
    each stream's GRU predicts the other's, and each stream rebuilds its own hidden frames; fine-tuned with the
    encoders frozen (--init_lr_scale 0) that is the system's classifier phase. With one stream only (pose, or the
    sensors alone) it is that stream's encoder."""
    TEMPERATURE = 0.1
    CONTRASTED_FRAMES = 512  # frames per batch in the contrastive loss (its cost grows with their square)

    def __init__(self, in_dim: int, cfg: ModelConfig):
        super().__init__()
        c, h = cfg.num_classes, cfg.dense_hidden
        sensor = cfg.sensor_dim if cfg.use_sensors else 0
        self.split = [d for d in (in_dim - sensor, sensor) if d]  # pose part first, as DenseSequenceLabeller joins
        check_heads_divide("multimodal", h, cfg.attention_heads)
        self.encoders = nn.ModuleList([StreamEncoder(d, h, cfg.dense_layers, cfg.dropout) for d in self.split])
        self.fusion = nn.ModuleList([GatedCrossAttention(h, cfg.attention_heads) for _ in self.split[1:] * 2])
        self.join = nn.Linear(h * len(self.split), h)
        self.out = nn.Linear(h, c)
        self.refine = nn.ModuleList([TCNStage(c, h, cfg.dense_layers, c, cfg.dropout)
                                     for _ in range(cfg.dense_stages - 1)])
        self.embed = nn.ModuleList([nn.Linear(h, h) for _ in self.split[1:] * 2])  # contrastive projections
        self.rebuild = nn.ModuleList([nn.Linear(h, d) for d in self.split])  # each stream's hidden inputs

    @property
    def pairs_streams(self) -> bool:
        return len(self.split) == 2

    def encode(self, x, padding=None, visual=None) -> list:
        """Each stream's per-frame representation; the frame features join the camera's stream (pose, box motion),
        the first."""
        return [encoder(part, padding, visual if i == 0 else None)
                for i, (encoder, part) in enumerate(zip(self.encoders, x.split(self.split, -1)))]

    def forward(self, x, padding=None, visual=None) -> tuple:
        """x (B, T, D), visual (B, T, H) projected frame features or None -> ([logits (B, T, C) per stage], fused
        per-frame features (B, T, H))."""
        streams = self.encode(x, padding, visual)
        if self.pairs_streams:
            a, b = streams
            streams = [self.fusion[0](a, b, padding), self.fusion[1](b, a, padding)]
        features = torch.relu(self.join(torch.cat(streams, -1)))
        logits = self.out(features)
        stages = [logits]
        for stage in self.refine:
            logits = stage(torch.softmax(logits, -1).transpose(1, 2))[0].transpose(1, 2)
            stages.append(logits)
        return stages, features

    def self_supervised_loss(self, x, target, mask, padding=None, generator=None) -> torch.Tensor:
        """The cross-modal objective on a batch (B, T, D) whose frames under `mask` (B, T) are hidden (set to 0):
        InfoNCE between the streams' projections of the same real frames (each frame's partner is its positive, every
        other sampled frame a negative), each stream's GRU predicting the other's representation (1 - cosine,
        towards a target without gradient), and each stream's hidden inputs predicted from its own encoding (masked
        modelling against `target`, the inputs as evaluation scales them). Alignment alone keeps only what the
        streams share: the masked term keeps what each sees alone (bench/README.md, "Pose, IMU or both")."""
        a, b = self.encode(x.masked_fill(mask[..., None], 0.0), padding)
        rebuilt = (((rebuild(h) - part) ** 2)[mask].mean()
                   for rebuild, h, part in zip(self.rebuild, (a, b), target.split(self.split, -1)))
        real = torch.ones(a.shape[:2], dtype=torch.bool, device=a.device) if padding is None else ~padding
        rows = real.flatten().nonzero().squeeze(1)
        if len(rows) > self.CONTRASTED_FRAMES:
            rows = rows[torch.randperm(len(rows), generator=generator)[:self.CONTRASTED_FRAMES].to(rows.device)]
        za = F.normalize(self.embed[0](a.flatten(0, 1)[rows]), dim=-1)
        zb = F.normalize(self.embed[1](b.flatten(0, 1)[rows]), dim=-1)
        logits = za @ zb.T / self.TEMPERATURE
        target = torch.arange(len(rows), device=logits.device)
        contrastive = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        predicted = [encoder.predict_other(h)[0] for encoder, h in zip(self.encoders, (a, b))]
        cross = sum(1 - F.cosine_similarity(p, t.detach(), dim=-1)[real].mean()
                    for p, t in zip(predicted, (b, a))) / 2
        return contrastive + cross + sum(rebuilt) / 2

    def self_supervised_parameters(self) -> tuple:
        """Prefixes of the parameters the self-supervised objective trains: what fine-tuning takes from it."""
        return ("encoders.", "embed.", "rebuild.")


class DenseSequenceLabeller(ScaledInputs):
    """A dense model (DENSE_MODELS, named by cfg.classifier) on the scaled pose and box-motion features of every
    frame: per-frame logits over a chunk of any length up to the trained chunk (and beyond, for the TCN). With
    cfg.use_frame_features each frame's features from a frozen frame backbone join too: normalised, projected to the
    model's width and added to its first hidden layer (for multimodal, the camera's stream), the projection starting
    at zero, so a model pretrained on pose alone starts exactly as pretrained."""
    is_video = False

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        pose_dim = cfg.pose_dim if cfg.use_pose else 0
        motion_dim = cfg.motion_input_dim
        if not pose_dim + motion_dim:
            raise UserError(f"classifier {cfg.classifier} reads pose (--use_pose with keypoints), box motion "
                            f"(--use_box_motion) or sensor streams, and none is on")
        self.uses_pose, self.uses_motion = bool(pose_dim), bool(motion_dim)
        self.register_input_buffers()
        self.backbone, self.visual_proj = self._frame_backbone(cfg, pose_dim + motion_dim)
        self.sees_frames = self.backbone is not None
        self.body = DENSE_MODELS.get(cfg.classifier)(pose_dim + motion_dim, cfg)
        # predicts the scaled inputs of masked frames from the per-frame features: self-supervised pretraining
        # (training/pretrain.py) and fine-tuning's auxiliary task (training.dense: masked_feature_loss)
        self.reconstruct = nn.Linear(cfg.dense_hidden, pose_dim + motion_dim)

    @staticmethod
    def _frame_backbone(cfg: ModelConfig, feature_dim: int) -> tuple:
        """(frozen frame backbone, projection of its features to the model's width), or (None, None)."""
        if not cfg.use_frame_features:
            return None, None
        if cfg.classifier == "multimodal" and feature_dim == (cfg.sensor_dim if cfg.use_sensors else 0):
            raise UserError("classifier multimodal adds frame features to the camera's stream (pose, box motion), "
                            "and both are off; pass --use_pose or --use_box_motion")
        spec = build_backbone(cfg)
        if spec.is_video:
            raise UserError(f"use_frame_features reads one feature vector per frame, but {cfg.backbone} is a video "
                            f"backbone (one per clip); pick a frame backbone such as mobilenet_v3_small")
        check_crop_size(cfg.backbone, spec, cfg.crop_size)
        project = nn.Linear(spec.dim, cfg.dense_hidden)
        nn.init.zeros_(project.weight)
        nn.init.zeros_(project.bias)
        return spec.module.requires_grad_(False).eval(), nn.Sequential(nn.LayerNorm(spec.dim),
                                                                      nn.Dropout(cfg.dropout), project)

    def train(self, mode: bool = True):
        """The frozen backbone stays in eval mode: its BatchNorm statistics must not change."""
        super().train(mode)
        if self.backbone is not None:
            self.backbone.eval()
        return self

    @torch.no_grad()
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Normalised crops (B, T, 3, H, W) -> frame features (B, T, Dv)."""
        b, t = frames.shape[:2]
        return self.backbone(frames.flatten(0, 1)).reshape(b, t, -1)

    def visual(self, features, mask=None):
        """Projected frame features (B, T, H) of backbone features (B, T, Dv); 0 on frames under mask (B, T)."""
        if self.visual_proj is None or features is None:
            return None
        v = self.visual_proj(features.to(self.visual_proj[-1].weight.dtype))
        return v if mask is None else v.masked_fill(mask[..., None], 0.0)

    def inputs(self, pose=None, pose_present=None, motion=None) -> torch.Tensor:
        """(B, T, Dp + Dm): scaled pose (zeros for chunks without keypoints) beside scaled box motion."""
        parts = []
        if self.uses_pose:
            p = self._scaled(pose, "pose")
            if pose_present is not None:
                p = p * pose_present.to(p.dtype).view(-1, 1, 1)
            parts.append(p)
        if self.uses_motion:
            parts.append(self._scaled(motion, "motion"))
        return torch.cat(parts, -1)

    def forward(self, pose=None, pose_present=None, motion=None, padding=None, visual=None) -> tuple:
        """([logits (B, T, C) per stage, the last one final], per-frame features (B, T, H)); visual: backbone
        features (B, T, Dv) with use_frame_features."""
        return self.body(self.inputs(pose, pose_present, motion), padding, self.visual(visual))

    def inputs_and_target(self, pose=None, pose_present=None, motion=None) -> tuple:
        """(the inputs as this mode scales them, the target of masked modelling: as evaluation scales them, without
        the feature shift and dropout of training)."""
        x = self.inputs(pose, pose_present, motion)
        with torch.no_grad():
            training = self.training
            self.train(False)
            target = self.inputs(pose, pose_present, motion)
            self.train(training)
        return x, target

    def masked_forward(self, mask, pose=None, pose_present=None, motion=None, padding=None, visual=None) -> tuple:
        """The inputs (and frame features) of the frames under `mask` (B, T) replaced by 0 (the typical value on the
        input scale): (stages, the predicted inputs (B, T, D), the target: the inputs as evaluation scales them
        (B, T, D)); the frame features are an input, never a target."""
        x, target = self.inputs_and_target(pose, pose_present, motion)
        stages, features = self.body(x.masked_fill(mask[..., None], 0.0), padding, self.visual(visual, mask))
        return stages, self.reconstruct(features), target

    def frame_outputs(self, pose=None, pose_present=None, motion=None, visual=None) -> tuple:
        """(per-frame probabilities (B, T, C), per-frame features (B, T, H)) in evaluation."""
        stages, features = self(pose, pose_present, motion, visual=visual)
        return torch.softmax(stages[-1], -1), features


def build_model(cfg: ModelConfig) -> nn.Module:
    """The network for a config (an ensemble with ensemble_members > 1); every name is checked against the
    registries first. classifiers.build_classifier wraps it in the classifier contract."""
    if cfg.backbone != "none":
        BACKBONES.get(cfg.backbone)
    TEMPORAL_HEADS.get(cfg.sequence_model)
    if cfg.use_pose:
        FUSIONS.get(cfg.pose_fusion_strategy)
    return ClassifierEnsemble(cfg) if cfg.ensemble_members > 1 else BehaviorSequenceClassifier(cfg)


def model_args(cfg: ModelConfig) -> dict:
    """Plain-type dict for checkpoints; ModelConfig(**model_args(cfg)) rebuilds the same model."""
    return asdict(cfg)
