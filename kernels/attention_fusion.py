"""RDAFNet's attention fusion: ``features * pw(dw3x3(conv1x1(cat(maps))))`` (the AFM, eqs. 2-4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .dispatch import use_triton


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
    linear (no sigmoid), exactly as the authors' code computes it.
    """
    if use_triton(features, *maps):
        from .triton_attention_fusion import attention_fusion_triton

        return attention_fusion_triton(maps, fuse_weight, fuse_bias, dw_weight, pw_weight, features)
    return attention_fusion_reference(maps, fuse_weight, fuse_bias, dw_weight, pw_weight, features)
