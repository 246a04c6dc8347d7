"""Inference backends behind one interface: TensorRT, ONNX Runtime, PyTorch.

:func:`open_backend` picks one from the file's suffix (or the name asked for) and imports its library
only then, so the runtime needs neither TensorRT nor PyTorch unless a model asks for them.

Example::

    >>> from sdk.backends import open_backend
    >>> backend = open_backend("model.onnx", device="cpu")
    >>> backend.name, backend.precision
    ('onnxruntime', 'fp32')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import Backend, EngineCompatibilityError, ModelLoadError, NonFiniteOutputError, ShapeLimits

SUFFIXES = {".engine": "tensorrt", ".plan": "tensorrt", ".trt": "tensorrt", ".onnx": "onnxruntime",
            ".pt": "torch", ".pth": "torch", ".ckpt": "torch"}
BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
# "tensorrt" asks ONNX Runtime for its TensorRT provider; ":N" picks the GPU.
DEVICE_KINDS = ("auto", "cpu", "cuda", "tensorrt")
INDEXED_DEVICE_KINDS = ("cuda", "tensorrt")
DEVICES = "'auto', 'cpu', 'cuda', 'cuda:N', 'tensorrt' or 'tensorrt:N'"


def backend_for(path: Path, backend: str = "auto") -> str:
    """The backend that runs ``path``: from its suffix, checked against an explicit choice."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    natural = SUFFIXES.get(path.suffix.lower())
    if natural is None:
        raise ValueError(f"{path}: unknown model type {path.suffix!r}; expected one of {sorted(SUFFIXES)}")
    if backend not in ("auto", natural):
        raise ValueError(f"{path} is a {natural} model; backend={backend!r} cannot run it "
                         "(`deblur export` converts between formats)")
    return natural


def check_device(device: str) -> None:
    """Raise ``ValueError`` listing the accepted values unless ``device`` is one of :data:`DEVICES`."""
    kind, sep, index = device.partition(":") if isinstance(device, str) else ("", "", "")
    if kind not in DEVICE_KINDS or (sep and (kind not in INDEXED_DEVICE_KINDS or not index.isdigit())):
        raise ValueError(f"device must be {DEVICES}, got {device!r}")


def open_backend(model: str | os.PathLike[str], *, backend: str = "auto", device: str = "auto",
                 precision: str | None = None, **options: Any) -> Backend:
    """Open ``model`` with the backend its suffix names; ``options`` go to that backend's constructor."""
    path = Path(model)
    check_device(device)
    kind = backend_for(path, backend)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if kind == "tensorrt":
        from .tensorrt import TensorRTBackend

        if precision not in (None, "auto"):
            raise ValueError("a TensorRT engine's precision is fixed when it is built; rebuild with `deblur export`")
        return TensorRTBackend(path, device=device, **options)
    if kind == "onnxruntime":
        from .onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, device=device, precision=precision, **options)
    from .torch import TorchBackend

    return TorchBackend(path, device=device, precision=precision, **options)


__all__ = ["BACKENDS", "Backend", "EngineCompatibilityError", "ModelLoadError", "NonFiniteOutputError",
           "ShapeLimits", "backend_for", "open_backend"]
