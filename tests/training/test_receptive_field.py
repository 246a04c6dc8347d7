"""training.receptive_field on networks whose reach is known by construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from training.receptive_field import effective_radius, influence, measure_effective_radius, tail_by_radius


class _Stack(nn.Module):
    """``depth`` 3x3 convolutions: every output pixel sees exactly ``depth`` pixels on each side."""

    input_range = (-1.0, 1.0)

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*(nn.Conv2d(3, 3, 3, padding=1) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_the_gradient_support_of_a_conv_stack_is_its_depth():
    torch.manual_seed(0)
    tail = tail_by_radius(influence(_Stack(3), size=33))
    assert tail[2] > 0 and tail[3] == 0 and tail[10] == 0


def test_the_effective_radius_is_where_the_worst_case_change_drops_below_half_a_grey_level():
    # span 2 (values in [-1, 1]): half a grey level is 1/255 = 0.0039; 2 x tail must fall below it.
    tail = np.array([1.0, 0.01, 0.0019, 0.0])
    assert effective_radius(tail, 2.0) == 2
    assert effective_radius(np.array([1.0, 0.0021, 0.0]), 2.0) == 2
    with pytest.raises(ValueError, match="larger probe"):
        effective_radius(np.array([1.0, 0.5]), 2.0)


def test_measuring_a_model_leaves_the_callers_module_alone():
    torch.manual_seed(0)
    net = _Stack(2).train()
    assert measure_effective_radius(net) == 2          # 2 px of support, and its weights use all of it
    assert net.training and all(p.grad is None and p.requires_grad for p in net.parameters())


class _Dilated(nn.Module):
    """One 3x3 convolution dilated by ``reach``: the output sees exactly ``reach`` pixels on each side."""

    input_range = (-1.0, 1.0)

    def __init__(self, reach: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=reach, dilation=reach)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_the_probe_grows_until_it_holds_four_times_the_radius():
    torch.manual_seed(0)
    net = _Dilated(40)
    # A 64-px probe sees the 40-px taps at its border (or not at all); it doubles to 256 to be sure.
    assert measure_effective_radius(net, size=64, max_size=256) == 40
    with pytest.raises(ValueError, match="unknown"):
        measure_effective_radius(net, size=64, max_size=128)
