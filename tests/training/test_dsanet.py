"""DSANet (paper 000/001): sizes of the paper config, the coarse-to-fine outputs, padding and bad input."""

from __future__ import annotations

import pytest
import torch

from training.models import build, forward_padded, spec
from training.models.complexity import count_macs, count_parameters
from training.models.dsanet import DSANet

TINY = {"widths": (4, 8, 16), "num_resblocks": 1}


def _meta(**kwargs: object) -> DSANet:
    with torch.device("meta"):
        return DSANet(**kwargs)  # type: ignore[arg-type]


def _params(module: torch.nn.Module) -> int:
    return count_parameters(module)


def test_paper_config_parameter_count():
    net = _meta()
    assert count_parameters(net) == 10_308_419
    # The gap to the paper's "32.2 MB" (~8.0M fp32) is the 24 ResBlocks at 5x5; 3x3 lands far below.
    resblocks = sum(_params(getattr(net.net, n)) for n in ("enc1", "enc2", "enc3", "dec1", "dec2", "dec3"))
    assert resblocks == 8_605_184
    assert count_parameters(_meta(kernel_size=3)) == 4_584_259
    assert count_parameters(_meta(num_resblocks=3)) == 8_157_123
    assert 1.25 < count_parameters(net) / 8.0e6 < 1.3


def test_attention_adds_about_the_papers_0_3_mb():
    net = _meta()
    plain_output_conv = 32 * 3 * 5 * 5 + 3      # what a 3Ed model would have in the SAM's place
    added = _params(net.net.attention) + _params(net.net.fuse_attended) - plain_output_conv
    assert added == 79_296
    assert added * 4 / 1e6 == pytest.approx(0.3, abs=0.02)


def test_macs_at_256():
    assert count_macs(_meta(), (1, 3, 256, 256)) == 33_031_389_184


def test_registry_entry():
    net = build("dsanet", **TINY)
    assert isinstance(net, DSANet) and net.model_kwargs == TINY
    assert net.architecture == "dsanet" and net.input_range == (0.0, 1.0)
    assert spec("dsanet").paper.startswith("DSANet")


def test_forward_supervised_gives_every_scale_coarsest_first():
    torch.manual_seed(0)
    net = DSANet(**TINY).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        outputs = net.forward_supervised(x)
        final = net(x)
    assert [tuple(o.shape) for o in outputs] == [(2, 3, 16, 24), (2, 3, 32, 48), (2, 3, 64, 96)]
    assert torch.equal(final, outputs[-1])
    assert all(torch.isfinite(o).all() for o in outputs)


def test_coarse_scales_see_only_their_downsampled_image():
    """A +-d checkerboard averages out of every 2x2 block, so only the full-size scale may change."""
    torch.manual_seed(0)
    net = DSANet(**TINY).eval()
    x = torch.rand(1, 3, 64, 64) * 0.8 + 0.1
    rows, cols = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    checker = ((rows + cols) % 2 * 2 - 1).float() * 0.05
    with torch.no_grad():
        a = net.forward_supervised(x)
        b = net.forward_supervised(x + checker)
    torch.testing.assert_close(a[0], b[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(a[1], b[1], atol=1e-6, rtol=0)
    assert (a[2] - b[2]).abs().max() > 1e-3


def test_every_parameter_gets_a_gradient():
    """The fusion conv (scales 2-3 only), the ConvLSTM and the SAM all take part in the loss."""
    torch.manual_seed(0)
    net = DSANet(**TINY)
    loss = sum(o.square().mean() for o in net.forward_supervised(torch.rand(1, 3, 32, 32)))
    loss.backward()
    silent = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert silent == []


def test_forget_gate_starts_open():
    gates = DSANet(**TINY).net.lstm.gates.bias.detach().chunk(4)
    assert torch.equal(gates[2], torch.ones(16))
    assert all(not torch.equal(g, torch.ones(16)) for g in (gates[0], gates[1], gates[3]))


def test_pad_multiple_is_32_and_enforced():
    assert DSANet.pad_multiple == 32
    net = DSANet(**TINY).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 32, 64)).shape == (1, 3, 32, 64)
        with pytest.raises(ValueError, match="multiples of 32"):
            net(torch.rand(1, 3, 48, 64))


def test_odd_size_through_forward_padded_keeps_shape():
    net = DSANet(**TINY).eval()
    x = torch.rand(1, 3, 37, 50)
    with torch.no_grad():
        assert forward_padded(net, x, net.pad_multiple).shape == x.shape


def test_wrong_channel_count_raises():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        DSANet(**TINY)(torch.rand(1, 2, 32, 32))


@pytest.mark.parametrize("kwargs", [{"widths": (8, 16)}, {"num_resblocks": -1}, {"kernel_size": 4}])
def test_bad_constructor_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        DSANet(**kwargs)
