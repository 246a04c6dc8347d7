"""BAG: Blur-Attention-GAN (Li, Yang, Lam, Zhuo & Li, Neurocomputing; paper 003).

The generator is a DeblurGAN encoder-decoder whose ResBlocks are replaced by 4 blur-attention
modules (BAM) joined by a multi-level residual connection. A BAM is a DenseBlock unit (DBU) followed
by a spatial attention unit (SAU): ``F' = DBU(F_in)``, ``F_out = sigmoid(conv7x7[max_c F', mean_c F']) * F'``.
The critic is DeblurGAN's PatchGAN. Images live in [-1, 1].

There is no code release; the paper names DeblurGAN (``KupynOrest/DeblurGAN``) as its baseline, so
DeblurGAN's layers fill what the paper leaves open. Each inferred choice:

1. Encoder (paper: 3 convs, each with IN and ReLU): DeblurGAN's, reflect-pad 3 + conv7x7 3->64, then
   conv3x3 stride 2 to 128 and to 256, bias on (DeblurGAN keeps conv bias when the norm is IN).
2. IN = ``InstanceNorm2d`` without affine parameters or running statistics, so inference normalises
   each image by its own statistics, as the paper motivates IN. (DeblurGAN's latest code tracks
   running statistics, which would make eval-time IN a fixed affine map.)
3. DBU: DenseNet's composite function with IN for BN, in DenseNet's pre-activation order,
   IN-ReLU-conv3x3 (growth 72, no bias as in DenseNet); layer k sees 256 + 72(k-1) channels. The six
   outputs are concatenated with the input (688 channels) and a DenseNet-style transition,
   IN-ReLU-conv1x1, returns to 256 channels; it is the 7th conv of the paper's "7 conv layers" per
   module.
4. SAU: CBAM's spatial attention as the paper writes it: channel max and channel mean (that order),
   conv7x7 2->1 without bias and without CBAM's BatchNorm, sigmoid; the 1xHxW map scales every channel.
5. Multi-level residual: ``in_1 = x0`` (the encoder output), ``in_{k+1} = BAM_k(in_k) + in_k + x0``;
   the decoder reads ``in_5``. Dropping ``+ x0`` gives the ablation's one-level residual.
6. Decoder (paper: 3 transposed convs with IN and ReLU, and a global skip): DeblurGAN's, two convT3x3
   stride 2 (padding 1, output_padding 1 for an exact x2) with IN and ReLU, then reflect-pad 3 +
   conv7x7 64->3 (the "third" layer: stride 1, no IN/ReLU since it makes the image), Tanh, and
   ``clamp(tanh + input, -1, 1)`` (DeblurGAN's ``learn_residual``).
7. Init: DeblurGAN's ``weights_init``, conv weights N(0, 0.02) and zero biases (the paper gives none).
8. Critic: DeblurGAN's ``NLayerDiscriminator`` (n_layers=3, ndf=64, IN): conv4x4 with padding 2 =
   ceil(3/2), strides 2, 2, 2, 1, 1, LeakyReLU(0.2), IN after all but the first and last conv, no
   sigmoid (WGAN critic). Unconditional: it scores a sharp or restored image alone, as eq. (6).
9. ``pad_multiple`` = 4 for the generator: two stride-2 convs must be undone exactly for the global
   skip. The critic takes any size of at least 2x2 (``pad_multiple`` = 1).

Sizes (measured): generator 8,242,315 parameters (4 BAMs of 1,871,394 each); critic 2,764,737.

The critic is not an image-to-image network, so :class:`BagCritic` is a plain ``nn.Module`` rather
than a :class:`DeblurNet` (whose contract is ``forward(x)`` = restored image of the same shape): code
that trains or exports DeblurNets can reject it by type. It still carries ``architecture``,
``input_range``, ``pad_multiple`` and ``is_critic = True``, so registry-wide tools (``deblur models``)
can build it, count it, and tell it apart.

Example::

    >>> gen = BAGGenerator(base_channels=8, growth=8, num_modules=2).eval()
    >>> gen(torch.zeros(1, 3, 32, 48)).shape
    torch.Size([1, 3, 32, 48])
    >>> BagCritic(base_channels=8)(torch.zeros(1, 3, 32, 48)).shape
    torch.Size([1, 1, 7, 9])
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from .base import DeblurNet
from .registry import register

PAPER = "BAG (003)"
PAPER_BASE_CHANNELS = 64
PAPER_NUM_MODULES = 4
PAPER_GROWTH = 72
PAPER_DENSE_LAYERS = 6
PAPER_CRITIC_LAYERS = 3


def _deblurgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _pre_activation(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """DenseNet's composite function with IN for BN: IN -> ReLU -> conv (no bias)."""
    return nn.Sequential(
        nn.InstanceNorm2d(in_channels),
        nn.ReLU(inplace=False),
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
    )


class DenseBlockUnit(nn.Module):
    """``num_layers`` densely connected IN-ReLU-conv3x3 layers, then IN-ReLU-conv1x1 back to ``channels``."""

    def __init__(self, channels: int, growth: int, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            _pre_activation(channels + k * growth, growth, 3) for k in range(num_layers)
        )
        self.transition = _pre_activation(channels + num_layers * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return self.transition(torch.cat(features, dim=1))


class SpatialAttentionUnit(nn.Module):
    """The 1 x H x W blur-attention map ``sigmoid(conv7x7([max_c F, mean_c F]))``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


class BlurAttentionModule(nn.Module):
    def __init__(self, channels: int, growth: int, num_layers: int) -> None:
        super().__init__()
        self.dense = DenseBlockUnit(channels, growth, num_layers)
        self.attention = SpatialAttentionUnit()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.dense(x)
        return self.attention(features) * features


def _conv_in_relu(layer: nn.Module, channels: int) -> list[nn.Module]:
    return [layer, nn.InstanceNorm2d(channels), nn.ReLU(inplace=True)]


class BAGGenerator(DeblurNet):
    """BAG's generator; the defaults are the paper configuration (inferred choices: module docstring).

    ``base_channels`` is the full-resolution width (DeblurGAN's ngf; the modules run at 4x it on
    H/4 x W/4), ``num_modules`` the number of BAMs, ``growth`` and ``dense_layers`` each DBU's growth
    rate and depth.

    Example::

        >>> net = BAGGenerator(base_channels=8, growth=8, num_modules=2).eval()
        >>> x = torch.rand(1, 3, 64, 64) * 2 - 1
        >>> net(x).shape
        torch.Size([1, 3, 64, 64])
    """

    architecture = "bag"
    input_range = (-1.0, 1.0)
    pad_multiple = 4

    def __init__(self, base_channels: int = PAPER_BASE_CHANNELS, num_modules: int = PAPER_NUM_MODULES,
                 growth: int = PAPER_GROWTH, dense_layers: int = PAPER_DENSE_LAYERS) -> None:
        super().__init__()
        for name, value in (("base_channels", base_channels), ("growth", growth), ("dense_layers", dense_layers)):
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        if num_modules < 0:
            raise ValueError(f"num_modules must be non-negative, got {num_modules}")
        c1, c2, c4 = base_channels, 2 * base_channels, 4 * base_channels
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            *_conv_in_relu(nn.Conv2d(3, c1, 7), c1),
            *_conv_in_relu(nn.Conv2d(c1, c2, 3, stride=2, padding=1), c2),
            *_conv_in_relu(nn.Conv2d(c2, c4, 3, stride=2, padding=1), c4),
        )
        self.blur_attention = nn.ModuleList(
            BlurAttentionModule(c4, growth, dense_layers) for _ in range(num_modules)
        )
        self.decoder = nn.Sequential(
            *_conv_in_relu(nn.ConvTranspose2d(c4, c2, 3, stride=2, padding=1, output_padding=1), c2),
            *_conv_in_relu(nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), c1),
            nn.ReflectionPad2d(3),
            nn.Conv2d(c1, 3, 7),
            nn.Tanh(),
        )
        _deblurgan_init(self)

    def forward_supervised(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One output, the restored image (BAG supervises only the final image)."""
        # Export traces symbolic shapes; a Python check on them would bake in the example's size.
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            self.check_input(x)
            h, w = x.shape[-2:]
            if (h // 4) * (w // 4) < 2:
                raise ValueError(f"BAGGenerator needs at least 2 pixels at H/4 x W/4 for InstanceNorm "
                                 f"(e.g. 4x8 or 8x8), got {h}x{w}")
        x0 = self.encoder(x)
        features = x0
        for module in self.blur_attention:
            features = module(features) + features + x0
        return [torch.clamp(self.decoder(features) + x, -1.0, 1.0)]


class BagCritic(nn.Module):
    """BAG's PatchGAN critic (DeblurGAN's ``NLayerDiscriminator``): a map of unbounded WGAN scores.

    Not a :class:`DeblurNet` (see the module docstring); ``is_critic`` tells registry-wide tools so.
    ``base_channels`` is ndf, ``num_layers`` the number of stride-2 convs (n_layers). At the paper
    config each score sees a 70x70 patch.

    Example::

        >>> critic = BagCritic()
        >>> critic(torch.zeros(2, 3, 256, 256)).shape
        torch.Size([2, 1, 35, 35])
    """

    architecture: ClassVar[str] = "bag"
    input_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    pad_multiple: ClassVar[int] = 1
    is_critic: ClassVar[bool] = True
    # Set by training.models.build, as on every registered model.
    model_name: str = ""
    model_kwargs: dict = {}

    def __init__(self, base_channels: int = PAPER_BASE_CHANNELS, num_layers: int = PAPER_CRITIC_LAYERS) -> None:
        super().__init__()
        if base_channels < 1 or num_layers < 1:
            raise ValueError(f"base_channels and num_layers must be positive, got {base_channels}, {num_layers}")
        # DeblurGAN's padw = ceil((4 - 1) / 2).
        kernel, padding = 4, 2
        layers: list[nn.Module] = [
            nn.Conv2d(3, base_channels, kernel, stride=2, padding=padding),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = base_channels
        for n in range(1, num_layers + 1):
            out_channels = base_channels * min(2 ** n, 8)
            stride = 2 if n < num_layers else 1
            layers += [
                nn.Conv2d(channels, out_channels, kernel, stride=stride, padding=padding),
                nn.InstanceNorm2d(out_channels),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out_channels
        layers.append(nn.Conv2d(channels, 1, kernel, stride=1, padding=padding))
        self.model = nn.Sequential(*layers)
        _deblurgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score map (B, 1, H', W') of the image batch ``x`` (B, 3, H, W) in [-1, 1]; higher = more real."""
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            if x.dim() != 4 or x.shape[1] != 3:
                raise ValueError(f"BagCritic expects a (B, 3, H, W) image tensor, got shape {tuple(x.shape)}")
            if min(x.shape[-2:]) < 2:
                raise ValueError(f"BagCritic needs H and W of at least 2 (InstanceNorm), got {tuple(x.shape[-2:])}")
        return self.model(x)


@register("bag", paper=PAPER,
          summary="BAG generator: DeblurGAN encoder-decoder with 4 blur-attention modules, 8,242,315 params")
def build_bag(**overrides: object) -> BAGGenerator:
    return BAGGenerator(**overrides)  # type: ignore[arg-type]


# The registry types its factories as DeblurNet makers; the critic is the one deliberate exception.
@register("bag-critic", paper=PAPER,  # type: ignore[arg-type]
          summary="BAG's PatchGAN critic for WGAN-GP training (not an image-to-image model), 2,764,737 params")
def build_bag_critic(**overrides: object) -> BagCritic:
    return BagCritic(**overrides)  # type: ignore[arg-type]
