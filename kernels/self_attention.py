"""MSAN's global self-attention: ``V · softmax(scale · QᵀK)ᵀ`` on (B, C, N) tensors."""

from __future__ import annotations

import torch

from .dispatch import custom_op_export_active, use_triton

# The Triton tile holds every channel of a token (see kernels.triton_self_attention).
TRITON_MAX_CHANNELS = 256


def self_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    energy = torch.bmm(q.transpose(1, 2), k) * scale        # (B, N, N): query n against key m
    attn = torch.softmax(energy, dim=-1)
    return torch.bmm(v, attn.transpose(1, 2))               # (B, C, N)


def self_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Attention with tokens along the last axis, as MSAN lays them out: q, k (B, C, N), v (B, Cv, N).

    MSAN itself uses ``scale=1`` (no 1/sqrt(C)). The Triton path (flash attention, online softmax)
    never builds the N x N matrix, so its memory is O(N·C); it takes up to 256 channels.

    Example::

        >>> out = self_attention(torch.randn(1, 16, 40), torch.randn(1, 16, 40), torch.randn(1, 16, 40))
    """
    if custom_op_export_active():
        from .onnx_ops import self_attention_op

        return self_attention_op(q, k, v, scale)
    widest = max(q.shape[1], v.shape[1]) if q.dim() == 3 and v.dim() == 3 else 0
    too_wide = (f"{widest} channels (the Triton kernel takes up to {TRITON_MAX_CHANNELS})"
                if widest > TRITON_MAX_CHANNELS else None)
    if use_triton(q, k, v, unsupported=too_wide):
        from .triton_self_attention import self_attention_triton

        return self_attention_triton(q, k, v, scale)
    return self_attention_reference(q, k, v, scale)
