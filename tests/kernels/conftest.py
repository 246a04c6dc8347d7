"""Kernel tests run the Triton kernels on CPU tensors through the Triton interpreter.

Triton reads ``TRITON_INTERPRET`` when a function is decorated (its own ``tl.max`` etc. included, at
its first import, which ``torch.utils.flop_counter`` may already have done); ``kernels.triton_common``
re-reads it at every launch and runs kernel and library in that flavour, so setting it per test
(``monkeypatch``) is enough whatever was imported before.
"""

from __future__ import annotations

import pytest
from kernel_testing import HAS_TRITON


@pytest.fixture
def interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the Triton kernels, run by the interpreter on CPU tensors (how CI tests them)."""
    if not HAS_TRITON:
        pytest.skip("triton is not installed")
    monkeypatch.setenv("DEBLUR_KERNELS", "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")


@pytest.fixture(params=["float16", "bfloat16", "float32"])
def cuda_triton_dtype(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Force the compiled Triton kernels on the GPU; yields each kernel dtype the GPU supports."""
    import torch

    dtype = getattr(torch, request.param)
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    monkeypatch.setenv("DEBLUR_KERNELS", "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    return dtype
