"""BAG (paper 003): generator and PatchGAN critic sizes, the blur-attention pieces, shapes and bad input."""

from __future__ import annotations

import pytest
import torch

from training.models import DeblurNet, build, forward_padded, list_models
from training.models.bag import BagCritic, BAGGenerator, SpatialAttentionUnit
from training.models.complexity import count_macs, count_parameters

TINY = {"base_channels": 4, "growth": 4, "num_modules": 2, "dense_layers": 2}


def _meta(cls: type, **kwargs: object) -> torch.nn.Module:
    with torch.device("meta"):
        return cls(**kwargs)


def test_paper_generator_parameter_count():
    net = _meta(BAGGenerator)
    # One BAM from its definition: 6 dense conv3x3 (no bias), the 688->256 transition, the 7x7 2->1 SAU.
    dense = sum(9 * (256 + 72 * k) * 72 for k in range(6))
    bam = dense + (256 + 6 * 72) * 256 + 2 * 49
    assert count_parameters(net.blur_attention[0]) == bam == 1_871_394
    assert count_parameters(net) == 8_242_315


def test_paper_critic_parameter_count():
    # DeblurGAN's NLayerDiscriminator(ndf=64, n_layers=3, IN): pix2pix's 70x70 PatchGAN size.
    assert count_parameters(_meta(BagCritic)) == 2_764_737


def _conv_macs(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """Convolution MACs counted independently of count_macs: Cin/groups x Cout x kh x kw per output pixel."""
    total = 0

    def hook(m: torch.nn.Conv2d, _inputs: object, out: torch.Tensor) -> None:
        nonlocal total
        total += (m.in_channels // m.groups) * m.out_channels * m.kernel_size[0] * m.kernel_size[1] * out[0, 0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    model(torch.zeros(shape, device="meta"))
    for h in handles:
        h.remove()
    return total


def test_macs_at_256():
    shape = (1, 3, 256, 256)
    critic, generator = _meta(BagCritic), _meta(BAGGenerator)
    # The critic is convolutions only: count_macs (torch's FlopCounterMode) must equal the direct count.
    assert count_macs(critic, shape) == _conv_macs(critic, shape) == 3_610_192_896
    # The generator adds transposed convolutions and attention products on top of its convolutions
    # (36.7 G in all at 256x256, measured with count_macs, as benchmarks/results/model_sizes.md lists sizes).
    conv = _conv_macs(generator, shape)
    assert conv < count_macs(generator, shape) < 1.1 * conv


def test_registry_entries():
    assert {"bag", "bag-critic"} <= set(list_models())
    gen = build("bag", **TINY)
    assert isinstance(gen, BAGGenerator) and gen.architecture == "bag" and gen.input_range == (-1.0, 1.0)
    assert gen.pad_multiple == 4 and not getattr(gen, "is_critic", False)
    critic = build("bag-critic", base_channels=4)
    assert critic.is_critic and not isinstance(critic, DeblurNet)
    assert critic.model_name == "bag-critic" and critic.pad_multiple == 1 and critic.input_range == (-1.0, 1.0)


def test_generator_keeps_shape_and_range():
    torch.manual_seed(0)
    net = BAGGenerator(**TINY).eval()
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        outputs = net.forward_supervised(x)
    assert len(outputs) == 1 and outputs[0].shape == x.shape
    assert outputs[0].min() >= -1 and outputs[0].max() <= 1


def test_global_skip_returns_the_input_when_the_head_is_silent():
    net = BAGGenerator(**TINY).eval()
    head = net.decoder[-2]
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    x = torch.rand(1, 3, 16, 16) * 1.8 - 0.9
    with torch.no_grad():
        assert torch.equal(net(x), x)


def test_multi_level_residual_adds_the_first_input_at_every_module():
    """With every BAM silenced, in_{k+1} = in_k + x0, so the decoder sees (1 + num_modules) * x0."""
    torch.manual_seed(0)
    net = BAGGenerator(**TINY).eval()
    for module in net.blur_attention:
        torch.nn.init.zeros_(module.dense.transition[-1].weight)
    seen = {}
    net.decoder.register_forward_pre_hook(lambda _m, args: seen.setdefault("trunk", args[0]))
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        net(x)
        x0 = net.encoder(x)
    torch.testing.assert_close(seen["trunk"], (1 + TINY["num_modules"]) * x0)


def test_spatial_attention_pools_max_then_mean_over_channels():
    sau = SpatialAttentionUnit()
    with torch.no_grad():
        sau.conv.weight.zero_()
        sau.conv.weight[0, 0, 3, 3] = 1.0      # centre tap on the max map
        sau.conv.weight[0, 1, 3, 3] = -2.0     # centre tap on the mean map
    f = torch.randn(2, 5, 6, 7)
    expected = torch.sigmoid(f.amax(dim=1, keepdim=True) - 2 * f.mean(dim=1, keepdim=True))
    with torch.no_grad():
        torch.testing.assert_close(sau(f), expected)
    assert sau.conv.bias is None


def test_every_generator_parameter_gets_a_gradient():
    torch.manual_seed(0)
    net = BAGGenerator(**TINY)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    net(x).square().mean().backward()
    silent = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert silent == []


def test_pad_multiple_is_enforced_and_odd_sizes_go_through_forward_padded():
    net = BAGGenerator(**TINY).eval()
    with torch.no_grad():
        with pytest.raises(ValueError, match="multiples of 4"):
            net(torch.zeros(1, 3, 30, 32))
        x = torch.rand(1, 3, 37, 50) * 2 - 1
        assert forward_padded(net, x, net.pad_multiple).shape == x.shape


def test_generator_too_small_for_instance_norm_raises():
    with pytest.raises(ValueError, match="InstanceNorm"):
        BAGGenerator(**TINY)(torch.zeros(1, 3, 4, 4))


def test_critic_score_map_shape():
    critic = BagCritic(base_channels=4).eval()
    with torch.no_grad():
        # Each conv4x4 with padding 2: stride 2 gives n // 2 + 1, stride 1 gives n + 1.
        assert critic(torch.zeros(2, 3, 256, 256)).shape == (2, 1, 35, 35)
        assert critic(torch.zeros(1, 3, 32, 48)).shape == (1, 1, 7, 9)


@pytest.mark.parametrize("make", [lambda: BAGGenerator(**TINY), lambda: BagCritic(base_channels=4)])
def test_wrong_channel_count_raises(make):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        make()(torch.zeros(1, 2, 32, 32))
