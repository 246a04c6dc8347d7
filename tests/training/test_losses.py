"""Every paper loss against a value computed independently here (numpy, or plain torch.nn.functional)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_training import write_torchvision_vgg19

from training.losses import (
    DSANetLoss,
    MSANLoss,
    RDAFNetLoss,
    WGANGPLoss,
    fft_mse_ortho,
    gradient_penalty,
    load_vgg19_conv3_3,
    loss_for,
)


def _pair(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) * 2 - 1, torch.rand(shape, generator=g) * 2 - 1


def test_rdafnet_loss_is_l1_plus_tenth_of_fft_modulus_l1_summed_over_stages():
    out1, target = _pair((2, 3, 4, 6), 0)
    out2 = target + 0.05 * out1
    terms = RDAFNetLoss()([out1, out2], target)
    t = target.double().numpy()
    expected = 0.0
    for o in (out1.double().numpy(), out2.double().numpy()):
        l1 = np.abs(o - t).mean()
        fft = np.abs(np.fft.rfft2(o) - np.fft.rfft2(t)).mean()   # |complex|, over the half spectrum
        expected += l1 + 0.1 * fft
    assert terms["total"].item() == pytest.approx(expected, rel=1e-5)
    assert set(terms) == {"total", "l1", "fft_l1"}


def test_msan_loss_is_minus_mean_log_one_minus_error_and_survives_errors_of_one():
    target = torch.tensor([0.5, -0.5, 0.0, 0.25]).view(1, 1, 2, 2)
    output = torch.tensor([-0.5, -0.4, 0.3, 0.25]).view(1, 1, 2, 2).requires_grad_(True)
    terms = MSANLoss()([torch.zeros_like(target), output], target)   # only the final output counts
    r = np.array([1.0, 0.1, 0.3, 0.0])
    r = np.minimum(r, np.float32(1 - 1e-6))   # |D - S| = 1 would be log(0); the clamp is applied in float32
    expected = -np.mean(np.log(1 - r))
    assert terms["total"].item() == pytest.approx(expected, rel=1e-4)
    assert expected > 3.4   # the clamped pixel alone contributes -log(1e-6) / 4 = 3.45
    terms["total"].backward()
    assert torch.isfinite(output.grad).all()
    both = MSANLoss(supervise="all")([output.detach(), output.detach()], target)["total"].item()
    assert both == pytest.approx(2 * expected, rel=1e-4)


def test_dsanet_loss_sums_mse_and_orthonormal_fft_mse_against_area_resized_targets():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(1, 3, 8, 8, generator=g)
    outputs = [torch.rand(1, 3, s, s, generator=g) for s in (2, 4, 8)]
    terms = DSANetLoss(fft_weight=0.1)(outputs, target)
    t = target.double().numpy()
    expected = 0.0
    for o in outputs:
        o = o.double().numpy()
        f = t.shape[-1] // o.shape[-1]
        scaled = t.reshape(1, 3, o.shape[-2], f, o.shape[-1], f).mean(axis=(3, 5))   # box average
        mse = np.mean((o - scaled) ** 2)
        fft = np.mean(np.abs(np.fft.fft2(o, norm="ortho") - np.fft.fft2(scaled, norm="ortho")) ** 2)
        expected += mse + 0.1 * fft
    assert terms["total"].item() == pytest.approx(expected, rel=1e-5)


def test_orthonormal_fft_mse_equals_pixel_mse_by_parseval():
    a, b = _pair((2, 3, 5, 7), 2)
    assert fft_mse_ortho(a, b).item() == pytest.approx(F.mse_loss(a, b).item(), rel=1e-5)


class LinearCritic(torch.nn.Module):
    """D(x) = <w, x> per sample: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).sum(dim=(1, 2, 3))


class QuadraticCritic(torch.nn.Module):
    """D(x) = c/2 · ‖x‖² per sample: its input gradient is c·x, so the penalty depends on α."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.5 * x.square().sum(dim=(1, 2, 3))


def test_gradient_penalty_of_a_quadratic_critic():
    real, fake = _pair((3, 2, 3, 3), 3)
    gp = gradient_penalty(QuadraticCritic(), real, fake, generator=torch.Generator().manual_seed(7))
    alpha = torch.rand(3, 1, 1, 1, generator=torch.Generator().manual_seed(7)).double().numpy()
    mixed = alpha * real.double().numpy() + (1 - alpha) * fake.double().numpy()
    norms = np.sqrt(((3.0 * mixed) ** 2).reshape(3, -1).sum(axis=1))
    assert gp.item() == pytest.approx(np.mean((norms - 1) ** 2), rel=1e-5)


def _reference_conv3_3(state, x):
    """torchvision's features[:15] written out with functional ops: conv1_1 .. conv3_3 (no final ReLU)."""
    for idx in (0, 2, 5, 7, 10, 12, 14):
        x = F.conv2d(x, state[f"features.{idx}.weight"], state[f"features.{idx}.bias"], padding=1)
        if idx != 14:
            x = F.relu(x)
        if idx in (2, 7):
            x = F.max_pool2d(x, 2)
    return x


def test_vgg_features_match_torchvision_layer_indices(tmp_path):
    state = write_torchvision_vgg19(tmp_path / "vgg19.pth")
    net = load_vgg19_conv3_3(tmp_path / "vgg19.pth")
    x = torch.rand(1, 3, 12, 12)
    assert len(net) == 15 and not any(p.requires_grad for p in net.parameters())
    torch.testing.assert_close(net(x), _reference_conv3_3(state, x), rtol=1e-5, atol=1e-5)


def test_bag_losses_wgan_gp_and_hundredfold_perceptual(tmp_path):
    state = write_torchvision_vgg19(tmp_path / "vgg19.pth")
    loss = WGANGPLoss(vgg_weights=str(tmp_path / "vgg19.pth"))
    real, fake = _pair((2, 3, 8, 8), 4)
    w = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(5)) * 0.1
    critic = LinearCritic(w.clone())

    c = loss.critic_terms(critic, real, fake)
    wn = w.double().numpy()
    d_real = (real.double().numpy() * wn).sum(axis=(1, 2, 3))
    d_fake = (fake.double().numpy() * wn).sum(axis=(1, 2, 3))
    penalty = (np.sqrt((wn ** 2).sum()) - 1) ** 2            # ∇D = w for every mixture
    assert c["total"].item() == pytest.approx(d_fake.mean() - d_real.mean() + 10 * penalty, rel=1e-5)

    g = loss([fake], real, critic=critic)
    perceptual = F.mse_loss(_reference_conv3_3(state, fake), _reference_conv3_3(state, real)).item()
    assert g["total"].item() == pytest.approx(-d_fake.mean() + 100 * perceptual, rel=1e-4)


def test_vgg_weights_are_required_and_checked(tmp_path):
    with pytest.raises(ValueError, match="vgg_weights"):
        loss_for("bag")
    with pytest.raises(FileNotFoundError, match="VGG19 weights file not found"):
        loss_for("bag", vgg_weights=str(tmp_path / "missing.pth"))
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="no VGG19 weight 'features.0.bias'"):
        load_vgg19_conv3_3(tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="perceptual_weight > 0 needs vgg_weights"):
        loss_for("rdafnet", perceptual_weight=0.01)


def test_loss_for_picks_each_papers_loss_and_rejects_unknowns():
    assert isinstance(loss_for("rdafnet"), RDAFNetLoss)
    assert isinstance(loss_for("msan"), MSANLoss)
    assert loss_for("dsanet", fft_weight=0.4).fft_weight == 0.4
    assert isinstance(loss_for("my-net", name="msan"), MSANLoss)
    with pytest.raises(KeyError, match="no loss for architecture 'my-net'"):
        loss_for("my-net")
    with pytest.raises(ValueError, match="does not take \\['fft_wieght'\\]"):
        loss_for("rdafnet", fft_wieght=0.1)
    with pytest.raises(ValueError, match="one shape"):
        RDAFNetLoss()([torch.zeros(1, 3, 4, 4)], torch.zeros(1, 3, 8, 8))
