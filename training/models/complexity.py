"""Parameter and MAC counts, measured with PyTorch's own FLOP counter."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, shape: tuple[int, ...] = (1, 3, 256, 256)) -> int:
    """Multiply-accumulates of one forward pass at ``shape``: convolutions and matmuls (FLOPs / 2).

    The pass runs on the ``meta`` device (shapes only, no arithmetic), so 1280x720 counts take
    milliseconds and no memory.
    """
    meta = copy.deepcopy(model).to("meta").eval()
    x = torch.zeros(shape, device="meta")
    with FlopCounterMode(display=False) as counter:
        meta(x)
    return counter.get_total_flops() // 2
