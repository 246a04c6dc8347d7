"""Run a network on any H x W: reflect-pad to its ``pad_multiple``, then crop back."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def pad_amounts(height: int, width: int, multiple: int) -> tuple[int, int]:
    """Rows and columns to add at the bottom/right so both sides become multiples of ``multiple``."""
    return (-height) % multiple, (-width) % multiple


def _reflect_101_index(size: int, padded: int, device: torch.device) -> torch.Tensor:
    """Source index of each of ``padded`` positions under reflect-101 that keeps reflecting (any pad width)."""
    if size == 1:
        return torch.zeros(padded, dtype=torch.long, device=device)
    period = 2 * (size - 1)
    k = torch.arange(padded, device=device) % period
    return torch.where(k < size, k, period - k)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad ``x`` (…, H, W) at the bottom/right; returns the padded tensor and the original (H, W).

    Reflect-101, as the SDK's runtime pads (``sdk.processing.reflect_pad_inplace``), so a model scores
    the same in training and deployed. ``F.pad`` reflects once, so a pad as wide as the side (tiny
    inputs) gathers the rows and columns by index instead.
    """
    h, w = x.shape[-2:]
    ph, pw = pad_amounts(h, w, multiple)
    if ph < h and pw < w:
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    else:
        x = x.index_select(-2, _reflect_101_index(h, h + ph, x.device))
        x = x.index_select(-1, _reflect_101_index(w, w + pw, x.device))
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x[..., : size[0], : size[1]]


def forward_padded(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``fn`` applied to ``x`` of any size, padded to ``multiple`` and cropped back.

    Example::

        >>> net = build("rdafnet-nano").eval()
        >>> forward_padded(net, torch.zeros(1, 3, 67, 93), net.pad_multiple).shape[-2:]
        torch.Size([67, 93])
    """
    padded, size = pad_to_multiple(x, multiple)
    return crop_to(fn(padded), size)
