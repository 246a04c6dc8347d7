"""Helpers of the kernel tests: tolerances, layouts, float64 references."""

from __future__ import annotations

import importlib.util

import torch

HAS_TRITON = importlib.util.find_spec("triton") is not None

# Max |error| allowed, relative to max |expected| of the same tensor: fp32 kernels accumulate in fp32
# (no TF32: ``input_precision="ieee"``); fp16 ones round each stored intermediate to fp16 (2^-11).
TOLERANCE = {torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 3e-2, torch.float64: 1e-10}


def assert_close(actual: torch.Tensor | None, expected: torch.Tensor | None, dtype: torch.dtype, what: str = "",
                 scale: float | None = None) -> None:
    """|actual - expected| <= tol(dtype) * scale elementwise (expected computed in float64).

    ``scale`` defaults to max|expected|; pass the magnitude of related terms where the expected
    tensor is legitimately (near) zero, e.g. dq of a single-key softmax.
    """
    assert actual is not None and expected is not None, f"{what}: missing (e.g. no gradient reached a leaf)"
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    err = (actual.double() - expected.double()).abs().max().item() if actual.numel() else 0.0
    if scale is None:
        scale = max(expected.double().abs().max().item() if expected.numel() else 0.0, 1e-3)
    assert err <= TOLERANCE[dtype] * scale, f"{what}: max error {err:.3g} > {TOLERANCE[dtype]:g} x {scale:.3g}"


def to_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last) if layout == "nhwc" else t.contiguous()


def leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


def reference_leaves(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """float64 copies of the (already rounded) inputs, to differentiate the reference exactly."""
    return [t.detach().double().requires_grad_(True) for t in tensors]
