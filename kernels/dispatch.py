"""Which implementation runs: ``DEBLUR_KERNELS=auto|triton|reference``.

``auto`` (the default) runs Triton on CUDA tensors and the PyTorch reference elsewhere; ``triton``
forces Triton (on CPU tensors this needs ``TRITON_INTERPRET=1``, which is how CI tests the kernels);
``reference`` forces the plain PyTorch reference.
"""

from __future__ import annotations

import os
import warnings

import torch

MODES = ("auto", "triton", "reference")
_warned = False


def mode() -> str:
    value = os.environ.get("DEBLUR_KERNELS", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"DEBLUR_KERNELS must be one of {MODES}, got {value!r}")
    return value


def triton_available() -> bool:
    """True when triton imports; warns once (not per call) when it does not."""
    global _warned
    try:
        import triton  # noqa: F401
    except ImportError:
        if not _warned:
            warnings.warn("triton is not installed: deblur-sdk kernels run their PyTorch references "
                          "(pip install 'deblur-sdk[kernels]' for the fused kernels)", stacklevel=3)
            _warned = True
        return False
    return True


def interpreter_enabled() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def use_triton(*tensors: torch.Tensor) -> bool:
    """Decide, for one call, whether the Triton path runs on these tensors."""
    m = mode()
    if m == "reference":
        return False
    on_cuda = all(t.is_cuda for t in tensors)
    if m == "auto":
        return on_cuda and triton_available()
    # m == "triton": the user asked for it; say exactly why it cannot run instead of silently falling back.
    if not triton_available():
        raise RuntimeError("DEBLUR_KERNELS=triton but triton is not installed")
    if not on_cuda and not interpreter_enabled():
        raise RuntimeError("DEBLUR_KERNELS=triton on CPU tensors needs TRITON_INTERPRET=1 (the Triton interpreter)")
    return True
