"""MSAN: four encoder-decoders with grouped-conv self-attention (Guo et al., Entropy 2022; paper 002).

Layer for layer the authors' ``models.py`` (github CaiGuoHS/MSAN), under readable names; the
official checkpoint layout (``edcoder1.layer6.0.conv1.weight``, ...) loads through
:func:`convert_official_state_dict`. Images live in [-0.5, 0.5]; every stage predicts a residual that
is added to the blurred input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from kernels import self_attention

from .base import DeblurNet
from .registry import register

PAPER_NUM_STAGES = 4
PAPER_NUM_BLOCKS = 4
PAPER_WIDTH = 32


def conv(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                     groups=groups, bias=True)


def upconv(in_channels: int, out_channels: int, groups: int = 1) -> nn.ConvTranspose2d:
    """Exact x2 upsampling: (n - 1) * 2 - 2 + 4 = 2n."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1,
                              groups=groups, bias=True)


class ResBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3, plus identity; no norm and no activation after the add."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv(channels, channels)
        self.conv2 = conv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


def res_blocks(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(channels) for _ in range(count)))


class GroupedConvSelfAttention(nn.Module):
    """MSAN's attention ("SAM"): global self-attention at half the feature resolution.

    A depthwise stride-2 conv shrinks the map 4x in tokens, full-width 1x1 convs make Q, K, V (no
    C/8 reduction), ``V · softmax(QᵀK)ᵀ`` runs with no 1/sqrt(C) scaling, and a depthwise transposed
    conv restores the size. The branch enters through ``gamma`` (a scalar, 0 at init), so an untrained
    block is the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.downsample = conv(channels, channels, 3, stride=2, groups=channels)
        self.query = conv(channels, channels, 1)
        self.key = conv(channels, channels, 1)
        self.value = conv(channels, channels, 1)
        self.upsample = upconv(channels, channels, groups=channels)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        small = self.downsample(x)
        b, c, h, w = small.shape
        # Tokens along the last axis, (B, C, N), which is the layout kernels.self_attention expects.
        q, k, v = (proj(small).reshape(b, c, h * w) for proj in (self.query, self.key, self.value))
        out = self_attention(q, k, v, scale=1.0).reshape(b, c, h, w)
        return self.gamma * self.upsample(out) + x


class EncoderDecoder(nn.Module):
    """One MSAN stage: a three-level U-Net with additive skips and attention at the bottleneck.

    ``forward(x, carry)`` returns ``(residual, bottleneck)``; ``carry`` is the previous stage's
    bottleneck features, added after the second downsampling (the official code's cross-stage link,
    which the paper text does not mention).
    """

    def __init__(self, in_channels: int, width: int = PAPER_WIDTH, num_blocks: int = PAPER_NUM_BLOCKS) -> None:
        super().__init__()
        w1, w2, w3 = width, 2 * width, 4 * width
        self.head = conv(in_channels, w1)
        self.enc1 = res_blocks(w1, num_blocks)
        self.down1 = conv(w1, w2, stride=2)
        self.enc2 = res_blocks(w2, num_blocks)
        self.down2 = conv(w2, w3, stride=2)
        self.bottleneck = res_blocks(w3, num_blocks)
        self.attention = GroupedConvSelfAttention(w3)
        self.up1 = upconv(w3, w2)
        self.dec1 = res_blocks(w2, num_blocks)
        self.up2 = upconv(w2, w1)
        self.dec2 = res_blocks(w1, num_blocks)
        self.tail = conv(w1, 3)

    def forward(self, x: torch.Tensor, carry: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        skip1 = self.enc1(self.head(x))
        skip2 = self.enc2(self.down1(skip1))
        y = self.down2(skip2)
        if carry is not None:
            y = y + carry
        features = self.bottleneck(y)
        y = self.attention(features)
        y = self.dec1(self.up1(y) + skip2)
        y = self.dec2(self.up2(y) + skip1)
        return self.tail(y), features


class MSAN(DeblurNet):
    """Multi-Stage Attentive Network: ``num_stages`` encoder-decoders at full resolution.

    Stage 1 sees the blurred image; stage k > 1 sees ``cat[image, residual_{k-1}]`` (6 channels) and
    the previous stage's bottleneck features. Each stage predicts a residual; the final image is the
    last residual plus the input. Defaults are the paper's (8,924,720 parameters).

    H and W must be multiples of 8: every stride-2 conv (the two encoder ones and the attention's
    depthwise one) is undone by an exact x2 transposed conv whose output is added to (or replaces) a
    map of the size before it, so each of the three halvings must be exact.

    Example::

        >>> net = MSAN().eval()
        >>> x = torch.rand(1, 3, 64, 64) - 0.5
        >>> net(x).shape
        torch.Size([1, 3, 64, 64])
        >>> d4, d3, d2, d1 = net.residuals(x)       # the official return value; net(x) == d4 + x
    """

    architecture = "msan"
    input_range = (-0.5, 0.5)
    pad_multiple = 8

    def __init__(self, num_stages: int = PAPER_NUM_STAGES, num_blocks: int | Sequence[int] = PAPER_NUM_BLOCKS,
                 width: int = PAPER_WIDTH) -> None:
        super().__init__()
        if num_stages < 1:
            raise ValueError(f"num_stages must be at least 1, got {num_stages}")
        blocks = [num_blocks] * num_stages if isinstance(num_blocks, int) else list(num_blocks)
        if len(blocks) != num_stages or any(n < 0 for n in blocks):
            raise ValueError(f"num_blocks must be an int or {num_stages} non-negative ints, got {num_blocks!r}")
        if width < 1:
            raise ValueError(f"width must be positive, got {width}")
        self.stages = nn.ModuleList(
            EncoderDecoder(3 if i == 0 else 6, width, n) for i, n in enumerate(blocks)
        )

    def residuals(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every stage's residual, LAST stage first: ``(d4, d3, d2, d1)``, as the official model returns."""
        self.check_input(x)
        residuals: list[torch.Tensor] = []
        carry = None
        for i, stage in enumerate(self.stages):
            # Later stages see the previous residual itself, not the image it restores.
            stage_input = x if i == 0 else torch.cat((x, residuals[-1]), dim=1)
            d, carry = stage(stage_input, carry)
            residuals.append(d)
        return tuple(reversed(residuals))

    def forward_supervised(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The restored image of every stage, ``[d1 + x, ..., d4 + x]``; the final one last."""
        return [x + d for d in reversed(self.residuals(x))]


# The authors' names inside one EDcoder -> ours inside one EncoderDecoder.
_OFFICIAL_LAYERS = {
    "layer1": "head", "layer2": "enc1", "layer3": "down1", "layer4": "enc2", "layer5": "down2",
    "layer6": "bottleneck", "layer7": "up1", "layer8": "dec1", "layer9": "up2", "layer10": "dec2",
    "layer11": "tail", "sa": "attention",
}
_OFFICIAL_ATTENTION = {
    "gconv": "downsample", "query_conv": "query", "key_conv": "key", "value_conv": "value",
    "degconv": "upsample", "gamma": "gamma",
}
_OFFICIAL_KEY = re.compile(r"edcoder(?P<stage>[1-9]\d*)\.(?P<layer>layer\d+|sa)\.(?P<rest>.+)")
_OFFICIAL_RESBLOCK = re.compile(r"\d+\.conv[12]\.(weight|bias)")


def _official_key_to_ours(key: str) -> str:
    match = _OFFICIAL_KEY.fullmatch(key)
    layer = _OFFICIAL_LAYERS.get(match["layer"]) if match else None
    if match is None or layer is None:
        raise ValueError(f"not a key of the official MSAN layout (edcoderN.layerM.… or edcoderN.sa.…): {key!r}")
    rest = match["rest"]
    if layer == "attention":
        name, _, tail = rest.partition(".")
        if name not in _OFFICIAL_ATTENTION or (name == "gamma") != (tail == ""):
            raise ValueError(f"unknown entry of the official MSAN attention: {key!r}")
        rest = _OFFICIAL_ATTENTION[name] + (f".{tail}" if tail else "")
    elif match["layer"] in ("layer2", "layer4", "layer6", "layer8", "layer10"):
        if not _OFFICIAL_RESBLOCK.fullmatch(rest):
            raise ValueError(f"unknown entry of an official MSAN ResBlock group: {key!r}")
    elif rest not in ("weight", "bias"):
        raise ValueError(f"unknown entry of an official MSAN conv layer: {key!r}")
    return f"stages.{int(match['stage']) - 1}.{layer}.{rest}"


def _config_of_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, object]:
    """Stage count, ResBlocks per stage and base width that the official checkpoint was built with."""
    stages = sorted({int(m["stage"]) for k in state_dict if (m := _OFFICIAL_KEY.fullmatch(k))})
    if stages != list(range(1, len(stages) + 1)):
        raise ValueError(f"official MSAN checkpoint must hold edcoder1..edcoderN, found edcoders {stages}")
    blocks = []
    for s in stages:
        indices = [int(k.split(".")[2]) for k in state_dict if k.startswith(f"edcoder{s}.layer2.")]
        blocks.append(max(indices) + 1 if indices else 0)
    head = state_dict.get("edcoder1.layer1.weight")
    if head is None:
        raise ValueError("official MSAN checkpoint lacks 'edcoder1.layer1.weight'")
    return {"num_stages": len(stages), "num_blocks": blocks, "width": int(head.shape[0])}


def convert_official_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the authors' ``MSAN.pth`` (a plain state_dict of ``models.model``) onto :class:`MSAN`'s names.

    Every official key must be consumed and land on a parameter of the same shape in an MSAN of the
    checkpoint's own configuration, and every parameter of that MSAN must be filled; anything else
    raises ``ValueError`` naming the offending keys.

    Example::

        >>> net = MSAN()
        >>> net.load_state_dict(convert_official_state_dict(torch.load("MSAN.pth", map_location="cpu")))
    """
    if not state_dict:
        raise ValueError("official MSAN checkpoint is empty")
    ours = {_official_key_to_ours(k): v for k, v in state_dict.items()}
    with torch.device("meta"):
        expected = MSAN(**_config_of_official(state_dict)).state_dict()
    missing = sorted(set(expected) - set(ours))
    if missing:
        raise ValueError(f"official MSAN checkpoint is missing {len(missing)} entries, e.g. {missing[:3]}")
    unexpected = sorted(set(ours) - set(expected))
    if unexpected:
        raise ValueError(f"official MSAN checkpoint has {len(unexpected)} entries MSAN lacks, e.g. {unexpected[:3]}")
    for official_key, (key, value) in zip(state_dict, ours.items()):
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(f"official {official_key!r} has shape {tuple(value.shape)}, "
                             f"expected {tuple(expected[key].shape)} for {key!r}")
    return ours


@register("msan", paper="MSAN (002)",
          summary="4 encoder-decoders with grouped-conv self-attention, 8,924,720 params",
          official_converter=convert_official_state_dict)
def build_msan(**overrides: object) -> MSAN:
    return MSAN(**overrides)  # type: ignore[arg-type]
