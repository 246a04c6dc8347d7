"""Pixel attention: ``x * sigmoid(conv1x1(x, weight, bias))`` (RDAFNet's AM, eq. 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .dispatch import custom_op_export_active, use_triton


def pixel_attention_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                              return_map: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    attn = torch.sigmoid(F.conv2d(x, weight, bias))
    out = x * attn
    return (out, attn) if return_map else out


def pixel_attention(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    return_map: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``x * sigmoid(conv1x1(x))``; with ``return_map`` also the sigmoid map (the RDAFB concatenates it).

    ``x``: (B, C, H, W); ``weight``: (C, C, 1, 1); ``bias``: (C,) or None. The Triton path
    (:mod:`kernels.triton_pixel_attention`) reads x once and writes the result (and the map) once.

    Example::

        >>> y = pixel_attention(torch.randn(1, 8, 5, 5), torch.randn(8, 8, 1, 1), torch.zeros(8))
    """
    if custom_op_export_active():
        from .onnx_ops import pixel_attention_op

        return pixel_attention_op(x, weight, bias, return_map)
    if use_triton(x, weight):
        from .triton_pixel_attention import pixel_attention_triton

        return pixel_attention_triton(x, weight, bias, return_map)
    return pixel_attention_reference(x, weight, bias, return_map)
