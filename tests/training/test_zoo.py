"""Properties every network of the zoo must have, checked on every registered model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from training.models import DeblurNet, build, forward_padded, list_models, spec
from training.models.complexity import count_macs, count_parameters


def _is_critic(name: str) -> bool:
    with torch.device("meta"):      # no weights are initialised just to ask
        return bool(getattr(build(name), "is_critic", False))


IMAGE_MODELS = [n for n in list_models() if not _is_critic(n)]

# Small but structurally complete versions for the step/determinism tests: paper sizes are checked by
# the per-architecture tests, and a full-size backward pass on 2 CPU cores would dominate the suite.
TINY = {
    "rdafnet-single": {"num_blocks": 2},
    "rdafnet-multi": {"base_channels": 16, "blocks_per_stage": (2, 2, 2)},
    "msan": None,
    "dsanet": {"widths": (4, 8, 16), "num_resblocks": 1},
    "bag": {"base_channels": 4, "growth": 4, "num_modules": 2, "dense_layers": 2},
}


def _tiny(name: str) -> DeblurNet:
    return build(name, **(TINY.get(name) or {}))


def test_registry_lists_every_paper_model_and_edge_variant():
    expected = {"rdafnet-single", "rdafnet-multi", "rdafnet-nano", "rdafnet-small", "rdafnet-unet-nano", "msan", "dsanet", "bag", "bag-critic"}
    assert expected <= set(list_models())


def test_unknown_model_names_the_registered_ones():
    with pytest.raises(KeyError, match="rdafnet-single"):
        build("no-such-net")


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_model_declares_range_and_multiple(name):
    net = build(name)
    lo, hi = net.input_range
    assert lo < hi and net.pad_multiple >= 1 and net.architecture
    assert net.model_name == name


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_odd_size_through_pad_helper_keeps_shape(name):
    torch.manual_seed(0)
    net = _tiny(name).eval()
    x = torch.rand(1, 3, 67, 93) * (net.input_range[1] - net.input_range[0]) + net.input_range[0]
    with torch.no_grad():
        y = forward_padded(net, x, net.pad_multiple)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_eval_output_is_deterministic(name):
    torch.manual_seed(0)
    net = _tiny(name).eval()
    m = net.pad_multiple
    side = max(32, m)
    x = torch.rand(1, 3, side, side) - 0.5
    with torch.no_grad():
        a, b = net(x), net(x)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", list_models())
def test_one_optimiser_step_lowers_the_loss(name):
    torch.manual_seed(0)
    net = _tiny(name).train()
    side = max(32, net.pad_multiple)
    x = torch.rand(2, 3, side, side) - 0.5
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    if getattr(net, "is_critic", False):
        def loss_fn():
            return net(x).mean()          # the critic's score of a fixed batch
    else:
        target = (x * 0.5).detach()

        def loss_fn():
            return sum(F.l1_loss(out, F.interpolate(target, size=out.shape[-2:], mode="area"))
                       for out in net.forward_supervised(x))

    before = loss_fn()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_fn()
    assert after.item() < before.item()


def test_count_macs_counts_convolutions_exactly():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_macs(conv, (1, 3, 10, 12)) == 8 * 3 * 9 * 10 * 12
    assert count_parameters(conv) == 8 * 3 * 9


def test_paper_models_are_credited():
    assert spec("rdafnet-single").paper.startswith("RDAFNet")
    assert spec("msan").paper.startswith("MSAN")
