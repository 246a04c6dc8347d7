"""RDAFNet (paper 004): residual dense attention-fusion blocks in an encoder-decoder.

Layer for layer the authors' code (github xjmz6/RDAFNet, models/layers.py, SSRDAFNet.py,
MSRDAFNet.py); see shared/research/models.md §1 and §3. The registry holds the two paper
networks and two edge sizes of the single-stage one:

- ``rdafnet-single``: 16 blocks at 128 channels, 14,195,072 parameters;
- ``rdafnet-multi``: three full-resolution stages (10/10/12 blocks) joined by SAMs and CSFF, 28,967,302;
- ``rdafnet-small`` / ``rdafnet-nano``: the single-stage network, narrower and shallower.

Example::

    >>> from training.models import build
    >>> net = build("rdafnet-nano").eval()
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

import kernels

from .base import DeblurNet
from .registry import register

PAPER = "RDAFNet (004)"
NEGATIVE_SLOPE = 0.2


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, NEGATIVE_SLOPE)


def _conv_at(layers: nn.ModuleList, i: int) -> nn.Conv2d:
    # ModuleList indexing is typed as Module; the kernel ops take the raw weights.
    return cast(nn.Conv2d, layers[i])


NORMS = ("instance", "layer", "none")


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of each pixel (NAFNet's LayerNorm2d), with a per-channel affine.

    Unlike InstanceNorm it uses no statistic of the whole frame, so a tile computes exactly what the
    same pixels compute in the whole frame, and 96x96 training crops see what a 720p frame sees.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.weight[:, None, None] + self.bias[:, None, None]


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        # Affine-free, as the authors' code has it (F.instance_norm's defaults).
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "layer":
        return ChannelLayerNorm(channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


class RDAFB(nn.Module):
    """Residual dense attention-fusion block at ``channels`` channels (the paper's RDAFB, ``base_block``).

    Four conv3x3 layers, each preceded by a sigmoid pixel-attention map of its input; the maps of all
    earlier layers are fused (1x1 conv, then depthwise-separable 3x3) into a *linear* attention that
    multiplies the current layer's output. Then a local residual and a ReLU.

    Example::

        >>> block = RDAFB(32)
        >>> block(torch.randn(1, 32, 16, 16)).shape
        torch.Size([1, 32, 16, 16])
    """

    def __init__(self, channels: int = 128, norm: str = "instance") -> None:
        super().__init__()
        c = channels
        # attention[i] makes the sigmoid map M_i of the input to convs[i] (AM_1..AM_4).
        self.attention = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(4))
        # Reflect padding and affine-free InstanceNorm follow the authors' code, not the paper text.
        self.convs = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect") for _ in range(4))
        # fuse[i] merges the i+2 maps M_0..M_{i+1} (the paper's channel transformer g1x1).
        self.fuse = nn.ModuleList(nn.Conv2d(c * (i + 2), c, 1) for i in range(3))
        # The attention refiner: depthwise 3x3 (zero padding) then pointwise 1x1, no bias, no activation.
        self.refine_depthwise = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False) for _ in range(3))
        self.refine_pointwise = nn.ModuleList(nn.Conv2d(c, c, 1, bias=False) for _ in range(3))
        # The paper's InstanceNorm after every conv; the edge sizes may use another (see RDAFNet).
        self.norms = nn.ModuleList(_norm_layer(norm, c) for _ in range(4))

    def _conv(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return self.norms[i](self.convs[i](x))

    def _attend(self, i: int, maps: Sequence[torch.Tensor], layer_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer i's sigmoid map M_{i+1} and the fused attention applied to its output, in one kernel call."""
        am, fuse = _conv_at(self.attention, i + 1), _conv_at(self.fuse, i)
        return kernels.attention_fusion_with_map(
            maps, am.weight, am.bias, fuse.weight, fuse.bias,
            _conv_at(self.refine_depthwise, i).weight, _conv_at(self.refine_pointwise, i).weight, layer_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        am = _conv_at(self.attention, 0)
        features, first_map = kernels.pixel_attention(x, am.weight, am.bias, return_map=True)
        maps = [first_map]
        for i in range(3):
            layer_out = _lrelu(self._conv(i, features))
            features, new_map = self._attend(i, maps, layer_out)
            maps.append(new_map)
        return F.relu(self._conv(3, features) + x)


class SupervisedAttention(nn.Module):
    """RDAFNet's modified SAM (MPRNet's SAM with a 7x7 image conv and biases): features -> (features, image).

    Example::

        >>> sam = SupervisedAttention(16)
        >>> feats, img = sam(torch.randn(1, 16, 8, 8), torch.zeros(1, 3, 8, 8))
    """

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.feature_proj = nn.Conv2d(channels, channels, 1)
        self.to_image = nn.Conv2d(channels, 3, 7, padding=3)
        self.image_gate = nn.Conv2d(3, channels, 1)

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        restored = self.to_image(features) + image
        gate = torch.sigmoid(self.image_gate(restored))
        return self.feature_proj(features) * gate + features, restored


class RDAFStage(nn.Module):
    """One encoder-decoder: shallow 7x7 conv, stride-2 down, RDAFBs at H/2, transposed-conv up, 5x5 skip fusion.

    ``merges_previous``: a 1x1 conv merges the previous stage's SAM features with this stage's shallow
    features (MSRDAFNet's cat12/cat23). ``receives_cross_stage``: the previous stage's mid and final
    block features are added (through 1x1 convs) halfway through this stage's blocks (CSFF).
    Returns the full-resolution features and the (mid, final) block features the next stage takes.
    """

    def __init__(self, base_channels: int, num_blocks: int, merges_previous: bool = False,
                 receives_cross_stage: bool = False, norm: str = "instance") -> None:
        super().__init__()
        ngf, wide = base_channels, 2 * base_channels
        self.shallow = nn.Conv2d(3, ngf, 7, padding=3, bias=False)
        self.merge_previous = nn.Conv2d(2 * ngf, ngf, 1) if merges_previous else None
        self.down = nn.Conv2d(ngf, wide, 4, stride=2, padding=1, bias=False)
        self.blocks = nn.ModuleList(RDAFB(wide, norm) for _ in range(num_blocks))
        self.cross_stage_mid = nn.Conv2d(wide, wide, 1) if receives_cross_stage else None
        self.cross_stage_final = nn.Conv2d(wide, wide, 1) if receives_cross_stage else None
        self.up = nn.ConvTranspose2d(wide, ngf, 4, stride=2, padding=1, bias=False)
        self.fuse_skip = nn.Conv2d(wide, ngf, 5, padding=2, bias=False)

    def forward(self, image: torch.Tensor, previous_features: torch.Tensor | None = None,
                previous_taps: tuple[torch.Tensor, torch.Tensor] | None = None,
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        shallow = _lrelu(self.shallow(image))
        if self.merge_previous is not None:
            if previous_features is None:
                raise ValueError("this stage merges the previous stage's features; pass previous_features")
            shallow = self.merge_previous(torch.cat([shallow, previous_features], dim=1))
        x = _lrelu(self.down(shallow))
        half = len(self.blocks) // 2
        mid = x
        for i, block in enumerate(self.blocks):
            if i == half:
                if self.cross_stage_mid is not None and self.cross_stage_final is not None:
                    if previous_taps is None:
                        raise ValueError("this stage receives cross-stage features; pass previous_taps")
                    x = x + self.cross_stage_mid(previous_taps[0]) + self.cross_stage_final(previous_taps[1])
                # The authors tap the mid features after the injection (MSRDAFNet's y4_enc).
                mid = x
            x = block(x)
        up = _lrelu(self.up(x))
        return _lrelu(self.fuse_skip(torch.cat([shallow, up], dim=1))), (mid, x)


def _check_size(net: DeblurNet, x: torch.Tensor, smallest: int = 4) -> None:
    # Tracing/export sees symbolic shapes; a Python branch on them would bake in this one size.
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return
    net.check_input(x)
    if min(x.shape[-2:]) < smallest:
        # Below this the coarsest maps are 1 pixel: reflect padding and InstanceNorm are undefined there.
        raise ValueError(f"{type(net).__name__} needs H and W of at least {smallest}, got {tuple(x.shape[-2:])}")


# Effective receptive field (pixels on each side) of our bundled single-stage RDAFNets, keyed by
# (base_channels, num_blocks, norm): the radius beyond which any content moves an output by under half
# an 8-bit grey level (training/receptive_field.py). It is a fact of the weights, not the architecture:
# nano measured 11 px after 600 steps, 31 after 5,000, 33 on the bundled default (step 7,000); small 17 px
# at step 2,000, 24 at 4,000, 28 at step 6,000 (supports 75 and 67 px). Released checkpoints
# (training.release) and exports (deblur export) carry the radius measured on their own weights; this
# table is only the fallback for a training checkpoint loaded as it is (training.checkpoint.load_model).
# Unlisted sizes give None (the runtime then keeps the requested overlap). InstanceNorm networks are never
# tile-exact.
EFFECTIVE_RADIUS: dict[tuple[int, int, str], int] = {(12, 5, "none"): 33, (32, 4, "none"): 28}


class RDAFNet(DeblurNet):
    """Single-stage RDAFNet (SSRDAFNet): one encoder-decoder, Tanh head, ``clamp(y + x, -1, 1)``.

    ``base_channels`` is the full-resolution width (the paper's ngf = 64); the blocks run at
    ``2 * base_channels`` on H/2 x W/2. ``num_blocks`` RDAFBs (paper: 16). Images in [-1, 1].
    ``norm``: the normalisation after each block conv: ``"instance"`` (the paper), ``"layer"``
    (per-pixel over channels) or ``"none"``; only the last two make tiled output equal whole-frame output.

    Example::

        >>> net = RDAFNet(base_channels=16, num_blocks=4).eval()
        >>> net(torch.zeros(1, 3, 32, 48)).shape
        torch.Size([1, 3, 32, 48])
    """

    architecture = "rdafnet"
    input_range = (-1.0, 1.0)
    pad_multiple = 2

    def __init__(self, base_channels: int = 64, num_blocks: int = 16, norm: str = "instance") -> None:
        super().__init__()
        if base_channels < 1 or num_blocks < 1:
            raise ValueError(f"base_channels and num_blocks must be positive, got {base_channels}, {num_blocks}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.norm = norm
        # Recorded with the checkpoint (registry.build), so a checkpoint always rebuilds its own norm.
        self.recorded_kwargs = {"norm": norm}
        self.trunk = RDAFStage(base_channels, num_blocks, norm=norm)
        self.to_image = nn.Conv2d(base_channels, 3, 7, padding=3, bias=False)
        # For the manifest (training.checkpoint.model_manifest), from which sdk.Deblurrer picks its tile overlap.
        self.tile_exact = norm != "instance"
        self.receptive_field = EFFECTIVE_RADIUS.get((base_channels, num_blocks, norm)) if self.tile_exact else None

    def forward_supervised(self, x: torch.Tensor) -> list[torch.Tensor]:
        _check_size(self, x)
        features, _ = self.trunk(x)
        return [torch.clamp(torch.tanh(self.to_image(features)) + x, -1.0, 1.0)]


class RDAFUNet(DeblurNet):
    """RDAFBs on a four-level U-Net: an edge variant of ours with the receptive field long blur needs.

    The single-stage network runs every block at H/2, so its reach (a 28-33 px effective radius when
    trained) is about the length of the blur it must undo. Here the blocks run at H/2, H/4, H/8 and H/16,
    channels doubling at each level, so a block costs the same MACs per frame at every level while the
    deep ones see far beyond any 30 px streak. RDAFNet's own head and tail stay: a 7x7 shallow conv, a
    4x4 stride-2 conv down to H/2, a transposed conv back up, a skip fusion and a 7x7 Tanh head with the
    global residual. Downsampling is a 2x2 stride-2 conv, upsampling a 2x2 stride-2 transposed conv
    whose output is added to the encoder's features (NAFNet's U-Net); no normalisation, so tiles whose
    origins sit on multiples of ``pad_multiple`` (the runtime's tiler places them there) equal the whole
    frame once the overlap covers the receptive field.

    ``widths``: block channels at H/2, H/4, H/8, H/16; ``encoder``/``decoder``: RDAFBs per level at
    H/2, H/4, H/8; ``middle``: RDAFBs at H/16.

    Example::

        >>> net = RDAFUNet(8, (8, 16, 32, 64), (1, 1, 1), 1, (1, 1, 1)).eval()
        >>> net(torch.zeros(1, 3, 32, 48)).shape
        torch.Size([1, 3, 32, 48])
    """

    architecture = "rdafnet"
    input_range = (-1.0, 1.0)
    pad_multiple = 16
    LEVELS = 4

    def __init__(self, base_channels: int = 16, widths: Sequence[int] = (16, 32, 64, 128),
                 encoder: Sequence[int] = (1, 1, 1), middle: int = 2, decoder: Sequence[int] = (1, 1, 1),
                 norm: str = "none") -> None:
        super().__init__()
        widths, encoder, decoder = tuple(int(w) for w in widths), tuple(int(n) for n in encoder), tuple(int(n) for n in decoder)
        if len(widths) != self.LEVELS or len(encoder) != self.LEVELS - 1 or len(decoder) != self.LEVELS - 1:
            raise ValueError(f"need {self.LEVELS} widths and {self.LEVELS - 1} encoder/decoder block counts, "
                             f"got widths={widths}, encoder={encoder}, decoder={decoder}")
        if base_channels < 1 or min(widths) < 1 or min(encoder + decoder) < 0 or middle < 1:
            raise ValueError("channels must be positive, block counts non-negative and middle >= 1")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.norm = norm
        self.recorded_kwargs = {"norm": norm}
        self.shallow = nn.Conv2d(3, base_channels, 7, padding=3, bias=False)
        self.down = nn.Conv2d(base_channels, widths[0], 4, stride=2, padding=1, bias=False)
        self.encoders = nn.ModuleList(nn.Sequential(*(RDAFB(w, norm) for _ in range(n))) for w, n in zip(widths, encoder))
        self.downs = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 2, stride=2) for i in range(self.LEVELS - 1))
        self.middle = nn.Sequential(*(RDAFB(widths[-1], norm) for _ in range(middle)))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(self.LEVELS - 1))
        self.decoders = nn.ModuleList(nn.Sequential(*(RDAFB(w, norm) for _ in range(n))) for w, n in zip(widths, decoder))
        self.up = nn.ConvTranspose2d(widths[0], base_channels, 4, stride=2, padding=1, bias=False)
        self.fuse_skip = nn.Conv2d(2 * base_channels, base_channels, 5, padding=2, bias=False)
        self.to_image = nn.Conv2d(base_channels, 3, 7, padding=3, bias=False)
        self.tile_exact = norm != "instance"
        self.receptive_field: int | None = None

    def forward_supervised(self, x: torch.Tensor) -> list[torch.Tensor]:
        _check_size(self, x, 2 * self.pad_multiple)
        shallow = _lrelu(self.shallow(x))
        y = _lrelu(self.down(shallow))
        skips = []
        for encode, down in zip(self.encoders, self.downs):
            y = encode(y)
            skips.append(y)
            y = down(y)
        y = self.middle(y)
        for i in reversed(range(self.LEVELS - 1)):
            y = self.decoders[i](self.ups[i](y) + skips[i])
        up = _lrelu(self.up(y))
        features = _lrelu(self.fuse_skip(torch.cat([shallow, up], dim=1)))
        return [torch.clamp(torch.tanh(self.to_image(features)) + x, -1.0, 1.0)]


class RDAFNetMultiStage(DeblurNet):
    """Multi-stage RDAFNet (MSRDAFNet): three full-resolution stages, SAMs between them, CSFF at H/2.

    Each stage sees the original image. ``forward_supervised`` returns the three stage outputs,
    each clamped to [-1, 1], the final one last; there is no Tanh.

    Example::

        >>> net = RDAFNetMultiStage(base_channels=8, blocks_per_stage=(2, 2, 2)).eval()
        >>> [tuple(o.shape) for o in net.forward_supervised(torch.zeros(1, 3, 16, 16))]
        [(1, 3, 16, 16), (1, 3, 16, 16), (1, 3, 16, 16)]
    """

    architecture = "rdafnet"
    input_range = (-1.0, 1.0)
    pad_multiple = 2

    def __init__(self, base_channels: int = 64, blocks_per_stage: Sequence[int] = (10, 10, 12)) -> None:
        super().__init__()
        blocks = tuple(int(n) for n in blocks_per_stage)
        if len(blocks) < 2 or min(blocks) < 2 or base_channels < 1:
            raise ValueError(f"need >= 2 stages of >= 2 blocks and positive base_channels, "
                             f"got blocks_per_stage={blocks_per_stage}, base_channels={base_channels}")
        self.stages = nn.ModuleList(
            RDAFStage(base_channels, n, merges_previous=s > 0, receives_cross_stage=s > 0)
            for s, n in enumerate(blocks))
        self.sams = nn.ModuleList(SupervisedAttention(base_channels) for _ in blocks[:-1])
        self.to_image = nn.Conv2d(base_channels, 3, 7, padding=3, bias=False)

    def forward_supervised(self, x: torch.Tensor) -> list[torch.Tensor]:
        _check_size(self, x)
        outputs: list[torch.Tensor] = []
        carried: torch.Tensor | None = None
        taps: tuple[torch.Tensor, torch.Tensor] | None = None
        for s, stage in enumerate(self.stages):
            features, taps = stage(x, carried, taps)
            if s < len(self.sams):
                carried, restored = self.sams[s](features, x)
            else:
                restored = self.to_image(features) + x
            outputs.append(torch.clamp(restored, -1.0, 1.0))
        return outputs


# ---------------------------------------------------------------------------------------------------
# Official checkpoints: the authors' key layout -> ours, by explicit rules.

_Rule = tuple["re.Pattern[str]", Callable[["re.Match[str]"], str]]

# Inside one base_block: attn_k / conv_k / ck / conv_ck are 1-based in the authors' code.
_BLOCK_RULES: list[_Rule] = [
    (re.compile(r"attn_([1-4])\.attn\.0\.(weight|bias)"), lambda m: f"attention.{int(m[1]) - 1}.{m[2]}"),
    (re.compile(r"conv_([1-4])\.0\.(weight|bias)"), lambda m: f"convs.{int(m[1]) - 1}.{m[2]}"),
    (re.compile(r"c([1-3])\.(weight|bias)"), lambda m: f"fuse.{int(m[1]) - 1}.{m[2]}"),
    (re.compile(r"conv_c([1-3])\.conv\.0\.weight"), lambda m: f"refine_depthwise.{int(m[1]) - 1}.weight"),
    (re.compile(r"conv_c([1-3])\.conv\.1\.weight"), lambda m: f"refine_pointwise.{int(m[1]) - 1}.weight"),
]


def _block_key(official_rest: str) -> str | None:
    for pattern, name in _BLOCK_RULES:
        m = pattern.fullmatch(official_rest)
        if m:
            return name(m)
    return None


def _single_stage_key(key: str) -> str | None:
    # SSRDAFNet: first = [conv7x7, lrelu]; second = [conv4x4/2, lrelu, 16 blocks, convT, lrelu];
    # third = [conv5x5, lrelu, conv7x7, tanh].
    fixed = {"first.0.weight": "trunk.shallow.weight", "second.0.weight": "trunk.down.weight",
             "third.0.weight": "trunk.fuse_skip.weight", "third.2.weight": "to_image.weight"}
    if key in fixed:
        return fixed[key]
    m = re.fullmatch(r"second\.(\d+)\.weight", key)
    if m:  # the only bare weight in `second` after index 0 is the transposed conv
        return "trunk.up.weight"
    m = re.fullmatch(r"second\.(\d+)\.(.+)", key)
    if m and int(m[1]) >= 2:
        rest = _block_key(m[2])
        return None if rest is None else f"trunk.blocks.{int(m[1]) - 2}.{rest}"
    return None


_STAGE_PARTS = {"enc_1": "shallow", "enc_2": "down", "dec_1": "up", "dec_2": "fuse_skip"}
_SAM_PARTS = {"conv1": "feature_proj", "conv2": "to_image", "conv3": "image_gate"}


def _multi_stage_key(key: str) -> str | None:
    if key == "last_conv.weight":
        return "to_image.weight"
    m = re.fullmatch(r"body_block_([1-3])\.(\d+)\.(.+)", key)
    if m:
        rest = _block_key(m[3])
        return None if rest is None else f"stages.{int(m[1]) - 1}.blocks.{m[2]}.{rest}"
    m = re.fullmatch(r"stage_([1-3])_(enc_1|enc_2|dec_1|dec_2)\.0\.weight", key)
    if m:
        return f"stages.{int(m[1]) - 1}.{_STAGE_PARTS[m[2]]}.weight"
    m = re.fullmatch(r"csff_([23])_(enc|dec)_1\.(weight|bias)", key)
    if m:
        part = "cross_stage_mid" if m[2] == "enc" else "cross_stage_final"
        return f"stages.{int(m[1]) - 1}.{part}.{m[3]}"
    m = re.fullmatch(r"cat(12|23)\.(weight|bias)", key)
    if m:  # cat12 merges into stage 2, cat23 into stage 3
        return f"stages.{int(m[1][1]) - 1}.merge_previous.{m[2]}"
    m = re.fullmatch(r"sam(12|23)\.(conv[123])\.(weight|bias)", key)
    if m:
        return f"sams.{int(m[1][0]) - 1}.{_SAM_PARTS[m[2]]}.{m[3]}"
    return None


def _convert(state_dict: Mapping[str, torch.Tensor], rename: Callable[[str], str | None],
             expected: Mapping[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """Rename every official key; fail on any key no rule covers, any shape mismatch, any gap."""
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    wrong_shape: list[str] = []
    seen: set[str] = set()
    for key, value in state_dict.items():
        ours = rename(key)
        if ours is None or ours not in expected or ours in seen:
            unknown.append(key)
            continue
        seen.add(ours)
        if tuple(value.shape) != tuple(expected[ours].shape):
            wrong_shape.append(f"{key} is {tuple(value.shape)}, expected {tuple(expected[ours].shape)}")
            continue
        out[ours] = value
    missing = [k for k in expected if k not in seen]
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} unrecognised keys {unknown[:5]}")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} wrong shapes: {'; '.join(wrong_shape[:5])}")
    if missing:
        problems.append(f"{len(missing)} weights missing, e.g. {missing[:5]} (our names)")
    if problems:
        raise ValueError(f"not an official {what} checkpoint in the paper configuration: " + "; ".join(problems))
    return out


def convert_official_single(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map SSRDAFNet's keys (``second.2.attn_1.attn.0.weight`` …) onto :class:`RDAFNet`'s, paper configuration."""
    with torch.device("meta"):
        expected = RDAFNet().state_dict()
    return _convert(state_dict, _single_stage_key, expected, "single-stage RDAFNet")


def convert_official_multi(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map MSRDAFNet's keys (``body_block_1.0.attn_1.attn.0.weight`` …) onto :class:`RDAFNetMultiStage`'s."""
    with torch.device("meta"):
        expected = RDAFNetMultiStage().state_dict()
    return _convert(state_dict, _multi_stage_key, expected, "multi-stage RDAFNet")


# ---------------------------------------------------------------------------------------------------
# Registry. The edge sizes are the single-stage class at fewer channels and blocks.

@register("rdafnet-single", paper=PAPER, official_converter=convert_official_single,
          summary="single-stage RDAFNet: 16 RDAFBs at 128 channels (H/2), 14.2M params")
def rdafnet_single(**overrides: object) -> RDAFNet:
    return RDAFNet(**{"base_channels": 64, "num_blocks": 16, **overrides})  # type: ignore[arg-type]


@register("rdafnet-multi", paper=PAPER, official_converter=convert_official_multi,
          summary="multi-stage RDAFNet: 3 stages of 10/10/12 RDAFBs with SAM and CSFF, 29.0M params")
def rdafnet_multi(**overrides: object) -> RDAFNetMultiStage:
    return RDAFNetMultiStage(**{"base_channels": 64, "blocks_per_stage": (10, 10, 12), **overrides})  # type: ignore[arg-type]


# Edge sizes from benchmarks/results/model_sizes.md: the largest width/depth (>= 4 blocks) whose
# roofline-projected 720p latency on Orin NX (fused attention) meets 100 ms (small) and 33 ms (nano).
# They drop the paper's InstanceNorm (norm="none"): tiles then equal the whole frame, no statistics
# pass costs GPU bandwidth, and it trained best of the three in benchmarks/results/*/norm-variants.md.
EDGE_NORM = "none"
@register("rdafnet-small", paper=PAPER,
          summary="edge RDAFNet: 4 RDAFBs at 64 channels (H/2), no norm; projected 92 ms at 720p on Orin NX")
def rdafnet_small(**overrides: object) -> RDAFNet:
    return RDAFNet(**{"base_channels": 32, "num_blocks": 4, "norm": EDGE_NORM, **overrides})  # type: ignore[arg-type]


@register("rdafnet-nano", paper=PAPER,
          summary="edge RDAFNet: 5 RDAFBs at 24 channels (H/2), no norm; projected 30 ms at 720p on Orin NX")
def rdafnet_nano(**overrides: object) -> RDAFNet:
    return RDAFNet(**{"base_channels": 12, "num_blocks": 5, "norm": EDGE_NORM, **overrides})  # type: ignore[arg-type]


@register("rdafnet-unet-nano", paper=PAPER,
          summary="edge RDAFNet U-Net: RDAFBs at H/2..H/16 (16-128 channels), no norm")
def rdafnet_unet_nano(**overrides: object) -> RDAFUNet:
    return RDAFUNet(**{"base_channels": 16, "widths": (16, 32, 64, 128), "encoder": (1, 1, 1), "middle": 2,
                       "decoder": (1, 1, 1), "norm": EDGE_NORM, **overrides})  # type: ignore[arg-type]
