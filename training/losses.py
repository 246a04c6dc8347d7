"""Training losses, one per paper, chosen by architecture name through :func:`loss_for`.

Every supervised loss takes the model's ``forward_supervised`` outputs (final image last) and the
sharp target, both in the model's ``input_range``, and returns a dict of named terms whose ``"total"``
is what gets back-propagated; the other entries are detached values for logging.

- RDAFNet (paper 004, eq. 10): ``Σ_stages L1 + 0.1·L1(rfft2)``; the authors' code adds ``0.01·VGG``.
- MSAN (paper 002, eq. 9): ``−mean(log(1 − |D − S|))`` on the final image.
- DSANet (paper 000/001): ``Σ_scales MSE + μ·FFT-MSE`` against the target resized to each scale.
- BAG (paper 003): WGAN-GP (λ = 10) plus ``100·`` perceptual MSE on VGG19 conv3_3 features.

Example::

    >>> loss = loss_for("rdafnet")
    >>> terms = loss(model.forward_supervised(blur), sharp)
    >>> terms["total"].backward()
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

Terms = dict[str, torch.Tensor]

# torchvision's vgg19().features up to and including conv3_3 (index 14, before its ReLU): the layer
# DeblurGAN (BAG's template) and RDAFNet's code take their perceptual features from.
VGG19_CONV3_3_CHANNELS = (64, 64, "pool", 128, 128, "pool", 256, 256, 256)
VGG19_CONV3_3_LAST_INDEX = 14


def _check_pair(output: torch.Tensor, target: torch.Tensor) -> None:
    if output.dim() != 4 or output.shape != target.shape:
        raise ValueError(f"loss expects (B, C, H, W) output and target of one shape, "
                         f"got {tuple(output.shape)} and {tuple(target.shape)}")


def _check_outputs(outputs: Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        raise TypeError("losses take the list from forward_supervised(x), not a single tensor; wrap it: [output]")
    if not outputs:
        raise ValueError("losses need at least one supervised output")
    return outputs


def fft_l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean complex modulus of ``rfft2(output) − rfft2(target)``, as ``nn.L1Loss`` computes it on complex input.

    Unnormalised FFT (``norm="backward"``), as in RDAFNet's ``utils/losses.py``.
    """
    _check_pair(output, target)
    return (torch.fft.rfft2(output) - torch.fft.rfft2(target)).abs().mean()


def fft_mse_ortho(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared complex modulus of the difference of orthonormal 2-D FFTs.

    DSANet's FFT term, ``(1/MN) Σ |FFT(f) − FFT(f')|²``, on an unnormalised FFT is exactly M·N times
    the pixel MSE (Parseval), so μ = 0.1 would make it outweigh the MSE ~6,500× at 256². With the
    orthonormal FFT it equals the pixel MSE, which keeps μ a relative weight.
    """
    _check_pair(output, target)
    diff = torch.fft.fft2(output, norm="ortho") - torch.fft.fft2(target, norm="ortho")
    return (diff.real.square() + diff.imag.square()).mean()


def resize_target(target: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """``target`` at ``size`` by area averaging; at the x1/2 steps of a pyramid this equals the
    bilinear (align_corners=False) halving DSANet applies to its own input."""
    if tuple(target.shape[-2:]) == tuple(size):
        return target
    return F.interpolate(target, size=tuple(size), mode="area")


# --------------------------------------------------------------------------- perceptual features


def vgg19_conv3_3() -> nn.Sequential:
    """torchvision's ``vgg19().features[:15]`` (same module indices, so its state_dict keys load), untrained."""
    layers: list[nn.Module] = []
    in_channels = 3
    for item in VGG19_CONV3_3_CHANNELS:
        if item == "pool":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
            in_channels = int(item)
    return nn.Sequential(*layers[: VGG19_CONV3_3_LAST_INDEX + 1])  # conv3_3 without its ReLU


def load_vgg19_conv3_3(weights: str | os.PathLike[str]) -> nn.Sequential:
    """VGG19 up to conv3_3 with ImageNet weights from a torchvision-layout ``vgg19`` state_dict file.

    The file is what ``torch.save(torchvision.models.vgg19(weights="IMAGENET1K_V1").state_dict(), path)``
    writes (keys ``features.0.weight`` …); a saved ``features`` module (keys ``0.weight`` …) also works.
    The network is frozen and in eval mode.
    """
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"VGG19 weights file not found: {path}. The perceptual loss needs ImageNet VGG19 weights as a "
            "torchvision-layout state_dict (.pth), e.g. torch.save(torchvision.models.vgg19("
            "weights='IMAGENET1K_V1').state_dict(), 'vgg19.pth') on a machine with torchvision")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise ValueError(f"{path} is not a readable PyTorch state_dict: {exc}") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a VGG19 state_dict (a mapping of names to tensors)")
    net = vgg19_conv3_3()
    wanted = net.state_dict()
    picked = {}
    for key, ref in wanted.items():
        value = state.get(f"features.{key}", state.get(key))
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: no VGG19 weight 'features.{key}'; expected a torchvision vgg19 state_dict")
        if value.shape != ref.shape:
            raise ValueError(f"{path}: 'features.{key}' has shape {tuple(value.shape)}, VGG19 needs {tuple(ref.shape)}")
        picked[key] = value.float()
    net.load_state_dict(picked)
    net.requires_grad_(False)
    return net.eval()


class PerceptualLoss(nn.Module):
    """MSE between VGG19 conv3_3 features of output and target (the target side carries no gradient).

    Images go in as they are, in the model's range, like DeblurGAN and RDAFNet's code do;
    ``imagenet_normalize=True`` maps [-1, 1] images to ImageNet statistics first.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, weights: str | os.PathLike[str], imagenet_normalize: bool = False) -> None:
        super().__init__()
        self.features = load_vgg19_conv3_3(weights)
        self.imagenet_normalize = imagenet_normalize
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        # The feature network stays in eval mode whatever the trainer does.
        super().train(mode)
        self.features.eval()
        return self

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if self.imagenet_normalize:
            x = ((x + 1) / 2 - self.mean) / self.std
        return self.features(x)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(output, target)
        with torch.no_grad():
            target_features = self._features(target)
        return F.mse_loss(self._features(output), target_features)


# --------------------------------------------------------------------------- per-paper losses


class RDAFNetLoss(nn.Module):
    """RDAFNet (paper eq. 10): ``Σ_stages [L1 + fft_weight·L1(rfft2)]``, plus the code's optional VGG term.

    ``perceptual_weight`` > 0 adds ``perceptual_weight·MSE(VGG19[:15](out), VGG19[:15](gt))`` per
    stage, as the authors' training code does with 0.01 (the paper does not mention it); it needs
    ``vgg_weights``.
    """

    def __init__(self, fft_weight: float = 0.1, perceptual_weight: float = 0.0,
                 vgg_weights: str | None = None) -> None:
        super().__init__()
        self.fft_weight = float(fft_weight)
        self.perceptual_weight = float(perceptual_weight)
        self.perceptual = None
        if self.perceptual_weight > 0:
            if not vgg_weights:
                raise ValueError("RDAFNet loss with perceptual_weight > 0 needs vgg_weights: a torchvision "
                                 "vgg19 state_dict file")
            self.perceptual = PerceptualLoss(vgg_weights)

    def forward(self, outputs: Sequence[torch.Tensor], target: torch.Tensor) -> Terms:
        l1 = fft = perceptual = target.new_zeros(())
        for out in _check_outputs(outputs):
            _check_pair(out, target)
            l1 = l1 + F.l1_loss(out, target)
            fft = fft + fft_l1(out, target)
            if self.perceptual is not None:
                perceptual = perceptual + self.perceptual(out, target)
        total = l1 + self.fft_weight * fft + self.perceptual_weight * perceptual
        terms = {"total": total, "l1": l1.detach(), "fft_l1": fft.detach()}
        if self.perceptual is not None:
            terms["perceptual"] = perceptual.detach()
        return terms


class MSANLoss(nn.Module):
    """MSAN (paper eq. 9): ``−mean(log(1 − |D − S|))`` in [-0.5, 0.5] units, so ``|D − S|`` ≤ 1 for in-range images.

    The network's output is unbounded; ``|D − S|`` is clamped to ``1 − eps`` so log never sees 0,
    and ``log1p`` keeps small errors accurate. ``supervise="final"`` (default, as the same author's
    FSCNet trains) uses only the last output; ``"all"`` sums over every stage's image.
    """

    def __init__(self, eps: float = 1e-6, supervise: str = "final") -> None:
        super().__init__()
        if not 0 < eps < 1:
            raise ValueError(f"MSAN loss eps must be in (0, 1), got {eps}")
        if supervise not in ("final", "all"):
            raise ValueError(f"MSAN loss supervise must be 'final' or 'all', got {supervise!r}")
        self.eps = float(eps)
        self.supervise = supervise

    def forward(self, outputs: Sequence[torch.Tensor], target: torch.Tensor) -> Terms:
        outputs = _check_outputs(outputs)
        chosen = outputs[-1:] if self.supervise == "final" else outputs
        total = target.new_zeros(())
        for out in chosen:
            _check_pair(out, target)
            r = (out - target).abs().clamp(max=1.0 - self.eps)
            total = total - torch.log1p(-r).mean()
        return {"total": total}


class DSANetLoss(nn.Module):
    """DSANet: ``Σ_scales [MSE + fft_weight·FFT-MSE]`` with the target area-resized to each output.

    The FFT term uses an orthonormal FFT (see :func:`fft_mse_ortho`): the paper's unnormalised
    form is the pixel MSE times H·W, which would swamp the MSE for any μ it tried.
    """

    def __init__(self, fft_weight: float = 0.1) -> None:
        super().__init__()
        self.fft_weight = float(fft_weight)

    def forward(self, outputs: Sequence[torch.Tensor], target: torch.Tensor) -> Terms:
        mse = fft = target.new_zeros(())
        for out in _check_outputs(outputs):
            scaled = resize_target(target, out.shape[-2:])
            _check_pair(out, scaled)
            mse = mse + F.mse_loss(out, scaled)
            fft = fft + fft_mse_ortho(out, scaled)
        return {"total": mse + self.fft_weight * fft, "mse": mse.detach(), "fft_mse": fft.detach()}


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP's ``mean((‖∇D(x̂)‖₂ − 1)²)`` at ``x̂ = α·real + (1 − α)·fake``, α ~ U(0, 1) per sample."""
    _check_pair(real, fake)
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator, device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


class WGANGPLoss(nn.Module):
    """BAG: WGAN-GP critic loss and ``L_GAN + perceptual_weight·L_C`` for the generator (paper eq. 5-7).

    The critic (PatchGAN) is unconditional; both losses average its patch map. The perceptual term
    is the MSE of VGG19 conv3_3 features and needs ``vgg_weights`` (ImageNet VGG19 cannot be
    downloaded by the SDK).
    """

    adversarial = True

    def __init__(self, vgg_weights: str | None = None, gp_weight: float = 10.0, perceptual_weight: float = 100.0,
                 imagenet_normalize: bool = False) -> None:
        super().__init__()
        if not vgg_weights:
            raise ValueError("the BAG loss needs vgg_weights: a torchvision-layout vgg19 state_dict file "
                             "(set loss.vgg_weights in the config, or pass --set loss.vgg_weights=PATH)")
        self.gp_weight = float(gp_weight)
        self.perceptual_weight = float(perceptual_weight)
        self.perceptual = PerceptualLoss(vgg_weights, imagenet_normalize=imagenet_normalize)

    def critic_terms(self, critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> Terms:
        """What the critic minimises: ``E[D(fake)] − E[D(real)] + gp_weight·GP``."""
        fake = fake.detach()
        wasserstein = critic(fake).mean() - critic(real).mean()
        penalty = gradient_penalty(critic, real, fake, generator)
        return {"total": wasserstein + self.gp_weight * penalty, "wasserstein": wasserstein.detach(),
                "gradient_penalty": penalty.detach()}

    def forward(self, outputs: Sequence[torch.Tensor], target: torch.Tensor,
                critic: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Terms:
        """What the generator minimises: ``−E[D(G(x))] + perceptual_weight·MSE(VGG(G(x)), VGG(S))``."""
        if critic is None:
            raise ValueError("the BAG generator loss needs the critic: loss(outputs, target, critic=critic)")
        out = _check_outputs(outputs)[-1]
        adversarial = -critic(out).mean()
        perceptual = self.perceptual(out, target)
        return {"total": adversarial + self.perceptual_weight * perceptual, "adversarial": adversarial.detach(),
                "perceptual": perceptual.detach()}


LOSSES: dict[str, type[nn.Module]] = {
    "rdafnet": RDAFNetLoss,
    "msan": MSANLoss,
    "dsanet": DSANetLoss,
    "bag": WGANGPLoss,
}


def loss_for(architecture: str, **config: object) -> nn.Module:
    """The paper's loss for ``architecture`` (``model.architecture``: rdafnet, msan, dsanet or bag).

    ``config`` goes to the loss's constructor (e.g. ``fft_weight=0.1``); ``name=`` picks another
    architecture's loss, for a network of your own.

    Example::

        >>> loss_for("dsanet", fft_weight=0.1)
        DSANetLoss()
    """
    name = str(config.pop("name", None) or architecture)
    try:
        cls = LOSSES[name]
    except KeyError:
        raise KeyError(f"no loss for architecture {name!r}; known: {', '.join(LOSSES)} "
                       "(set loss.name in the config to use one of them)") from None
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(config) - set(accepted))
    if unknown:
        raise ValueError(f"{cls.__name__} does not take {unknown}; it accepts {accepted}")
    return cls(**config)
