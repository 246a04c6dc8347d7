"""Which implementation runs: ``DEBLUR_KERNELS=auto|triton|reference``.

``auto`` (the default) runs Triton on CUDA tensors of a kernel dtype (fp16, bf16, fp32) on GPUs of
compute capability 8.0 or newer (Triton's supported range: Ampere, Orin, Ada, Hopper) and the PyTorch
reference elsewhere (CPU, Xavier's sm_72, float64); ``triton`` forces Triton (on CPU tensors this needs
``TRITON_INTERPRET=1``, which is how CI tests the kernels); ``reference`` forces the plain PyTorch
reference.

Whatever the mode, tracing, ONNX export and ``torch.compile`` see the reference: exported graphs
keep standard ONNX ops (TensorRT fuses them itself) and Inductor fuses the reference on its own.
The one exception is :func:`kernels.onnx_ops.fused_op_export`, which makes the public ops export as
custom ``deblur`` nodes instead.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch

MODES = ("auto", "triton", "reference")
# Dtypes ``auto`` sends to Triton; float64 stays on the reference unless Triton is forced.
AUTO_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# Oldest GPU ``auto`` sends to Triton: below sm_80 its tl.dot has no tensor-core path.
AUTO_MIN_CAPABILITY = (8, 0)

_MISSING_MESSAGE = ("triton is not installed: deblur-sdk kernels run their PyTorch references "
                    "(pip install 'deblur-sdk[kernels]' for the fused kernels)")
_warned = False
_custom_op_export = False


def mode() -> str:
    value = os.environ.get("DEBLUR_KERNELS", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"DEBLUR_KERNELS must be one of {MODES}, got {value!r}")
    return value


def _warn_missing(stacklevel: int) -> None:
    global _warned
    if not _warned:
        warnings.warn(_MISSING_MESSAGE, stacklevel=stacklevel)
        _warned = True


def warn_if_triton_missing() -> None:
    """Called once when ``kernels`` is imported: without triton, say so (once) instead of failing."""
    if importlib.util.find_spec("triton") is None:
        _warn_missing(stacklevel=4)


def triton_available() -> bool:
    """True when triton imports; warns once (not per call) when it does not."""
    try:
        import triton  # noqa: F401
    except ImportError:
        _warn_missing(stacklevel=3)
        return False
    return True


def interpreter_enabled() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _tracing() -> bool:
    compiler = torch.compiler
    exporting = getattr(compiler, "is_exporting", lambda: False)()
    return bool(torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or compiler.is_compiling() or exporting)


@functools.cache
def _capability(index: int) -> tuple[int, int]:
    return torch.cuda.get_device_capability(index)


def _modern_gpus(tensors: tuple[torch.Tensor, ...]) -> bool:
    return all(_capability(t.device.index or 0) >= AUTO_MIN_CAPABILITY for t in tensors)


def custom_op_export_active() -> bool:
    """True inside :func:`kernels.onnx_ops.fused_op_export`: the public ops emit ``deblur`` custom ops."""
    return _custom_op_export


@contextmanager
def kernel_mode(value: str) -> Iterator[None]:
    """``DEBLUR_KERNELS=value`` for the duration of the block (the dispatch reads it on every call)."""
    if value not in MODES:
        raise ValueError(f"DEBLUR_KERNELS must be one of {MODES}, got {value!r}")
    previous = os.environ.get("DEBLUR_KERNELS")
    os.environ["DEBLUR_KERNELS"] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("DEBLUR_KERNELS", None)
        else:
            os.environ["DEBLUR_KERNELS"] = previous


@contextmanager
def custom_op_export() -> Iterator[None]:
    global _custom_op_export
    previous, _custom_op_export = _custom_op_export, True
    try:
        yield
    finally:
        _custom_op_export = previous


def use_triton(*tensors: torch.Tensor, unsupported: str | None = None) -> bool:
    """Decide, for one call, whether the Triton path runs on these tensors.

    ``unsupported``: why the Triton kernel cannot take this call (e.g. too many channels), or None.
    ``auto`` then quietly uses the reference; a forced ``triton`` raises with that reason.
    """
    m = mode()
    if m == "reference" or _tracing():
        return False
    on_cuda = all(t.is_cuda for t in tensors)
    if m == "auto":
        return (on_cuda and unsupported is None and all(t.dtype in AUTO_DTYPES for t in tensors)
                and _modern_gpus(tensors) and triton_available())
    # m == "triton": the user asked for it; say exactly why it cannot run instead of silently falling back.
    if not triton_available():
        raise RuntimeError("DEBLUR_KERNELS=triton but triton is not installed")
    if not on_cuda and not interpreter_enabled():
        raise RuntimeError("DEBLUR_KERNELS=triton on CPU tensors needs TRITON_INTERPRET=1 (the Triton interpreter)")
    if unsupported is not None:
        raise RuntimeError(f"DEBLUR_KERNELS=triton but the Triton kernel cannot run this call: {unsupported}")
    return True
