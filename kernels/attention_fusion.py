"""RDAFNet's attention fusion: ``features * pw(dw3x3(conv1x1(cat(maps))))`` (the AFM, eqs. 2-4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .dispatch import custom_op_export_active, use_triton


def attention_fusion_reference(maps: Sequence[torch.Tensor], fuse_weight: torch.Tensor, fuse_bias: torch.Tensor | None,
                               dw_weight: torch.Tensor, pw_weight: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    fused = F.conv2d(torch.cat(list(maps), dim=1), fuse_weight, fuse_bias)
    refined = F.conv2d(F.conv2d(fused, dw_weight, None, padding=1, groups=dw_weight.shape[0]), pw_weight)
    return features * refined


def attention_fusion(maps: Sequence[torch.Tensor], fuse_weight: torch.Tensor, fuse_bias: torch.Tensor | None,
                     dw_weight: torch.Tensor, pw_weight: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Fuse the sigmoid maps ``maps`` (each (B, C, H, W)) and multiply the result into ``features``.

    ``fuse_weight``: (C, C·len(maps), 1, 1) with ``fuse_bias`` (C,); ``dw_weight``: (C, 1, 3, 3)
    depthwise, zero-padded, no bias; ``pw_weight``: (C, C, 1, 1), no bias. The fused attention is
    linear (no sigmoid), exactly as the authors' code computes it. The Triton path never builds the
    concatenation.

    Example::

        >>> maps = [torch.rand(1, 8, 6, 6) for _ in range(3)]
        >>> out = attention_fusion(maps, torch.randn(8, 24, 1, 1), torch.zeros(8), torch.randn(8, 1, 3, 3),
        ...                        torch.randn(8, 8, 1, 1), torch.randn(1, 8, 6, 6))
    """
    if custom_op_export_active():
        from .onnx_ops import attention_fusion_op

        return attention_fusion_op(list(maps), fuse_weight, fuse_bias, dw_weight, pw_weight, features)
    if use_triton(features, *maps):
        from .triton_attention_fusion import attention_fusion_triton

        return attention_fusion_triton(maps, fuse_weight, fuse_bias, dw_weight, pw_weight, features)
    return attention_fusion_reference(maps, fuse_weight, fuse_bias, dw_weight, pw_weight, features)


def attention_fusion_with_map_reference(previous_maps: Sequence[torch.Tensor], map_weight: torch.Tensor,
                                        map_bias: torch.Tensor | None, fuse_weight: torch.Tensor,
                                        fuse_bias: torch.Tensor | None, dw_weight: torch.Tensor,
                                        pw_weight: torch.Tensor, features: torch.Tensor,
                                        ) -> tuple[torch.Tensor, torch.Tensor]:
    new_map = torch.sigmoid(F.conv2d(features, map_weight, map_bias))
    out = attention_fusion_reference([*previous_maps, new_map], fuse_weight, fuse_bias, dw_weight, pw_weight,
                                     features)
    return out, new_map


def attention_fusion_with_map(previous_maps: Sequence[torch.Tensor], map_weight: torch.Tensor,
                              map_bias: torch.Tensor | None, fuse_weight: torch.Tensor,
                              fuse_bias: torch.Tensor | None, dw_weight: torch.Tensor, pw_weight: torch.Tensor,
                              features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One RDAFB layer's attention in one call: the newest map from ``features``, then the fusion.

    ``new_map = sigmoid(conv1x1(features, map_weight, map_bias))`` and
    ``out = attention_fusion([*previous_maps, new_map], ...)``; returns ``(out, new_map)`` (the block
    keeps ``new_map`` for its later layers). In the RDAFB, ``features`` is the layer output F_i and
    ``map_weight`` its AM conv. The Triton path (C <= 128) computes the map inside the fusion
    kernel: the RDAFB no longer runs a pixel-attention kernel whose gated output it discards.

    Example::

        >>> c = 8
        >>> out, m = attention_fusion_with_map([torch.rand(1, c, 6, 6)], torch.randn(c, c, 1, 1), torch.zeros(c),
        ...     torch.randn(c, 2 * c, 1, 1), torch.zeros(c), torch.randn(c, 1, 3, 3), torch.randn(c, c, 1, 1),
        ...     torch.randn(1, c, 6, 6))
    """
    if custom_op_export_active():
        from .pixel_attention import pixel_attention

        _, new_map = pixel_attention(features, map_weight, map_bias, return_map=True)
        out = attention_fusion([*previous_maps, new_map], fuse_weight, fuse_bias, dw_weight, pw_weight, features)
        return out, new_map
    if use_triton(features, *previous_maps):
        from .triton_attention_fusion import attention_fusion_with_map_triton

        return attention_fusion_with_map_triton(previous_maps, map_weight, map_bias, fuse_weight, fuse_bias,
                                                dw_weight, pw_weight, features)
    return attention_fusion_with_map_reference(previous_maps, map_weight, map_bias, fuse_weight, fuse_bias,
                                               dw_weight, pw_weight, features)
