"""MSAN's global self-attention: ``V · softmax(scale · QᵀK)ᵀ`` on (B, C, N) tensors."""

from __future__ import annotations

import torch

from .dispatch import use_triton


def self_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    energy = torch.bmm(q.transpose(1, 2), k) * scale        # (B, N, N): query n against key m
    attn = torch.softmax(energy, dim=-1)
    return torch.bmm(v, attn.transpose(1, 2))               # (B, C, N)


def self_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Attention with tokens along the last axis, as MSAN lays them out: q, k, v are (B, C, N).

    MSAN itself uses ``scale=1`` (no 1/sqrt(C)). The Triton path never builds the N x N matrix.

    Example::

        >>> out = self_attention(torch.randn(1, 16, 40), torch.randn(1, 16, 40), torch.randn(1, 16, 40))
    """
    if use_triton(q, k, v):
        from .triton_self_attention import self_attention_triton

        return self_attention_triton(q, k, v, scale)
    return self_attention_reference(q, k, v, scale)
