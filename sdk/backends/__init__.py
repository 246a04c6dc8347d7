"""Inference backends behind one interface, chosen from one table (:mod:`sdk.backends.registry`).

:func:`open_backend` picks a backend from the file's suffix and the device (or takes the one asked for)
and imports its library only then, so the runtime needs neither TensorRT, OpenVINO nor PyTorch unless
a model asks for them. With ``backend="auto"`` an ``.onnx`` runs on OpenVINO on a CPU-only machine
where OpenVINO is installed, and on ONNX Runtime otherwise.

Example::

    >>> from sdk.backends import open_backend
    >>> backend = open_backend("model.onnx", device="cpu", backend="onnxruntime")
    >>> backend.name, backend.precision
    ('onnxruntime', 'fp32')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import Backend, EngineCompatibilityError, ModelLoadError, NonFiniteOutputError, ShapeLimits
from .registry import BACKENDS, DEVICES, REGISTRY, BackendSpec, check_device, resolve, spec


def backend_for(path: Path, backend: str = "auto", device: str = "auto") -> str:
    """The name of the backend that runs ``path`` on ``device`` (see :func:`sdk.backends.registry.resolve`)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return resolve(Path(path), backend, device).name


def open_backend(model: str | os.PathLike[str], *, backend: str = "auto", device: str = "auto",
                 precision: str | None = None, **options: Any) -> Backend:
    """Open ``model`` with the backend the registry names; ``options`` go to that backend's constructor."""
    path = Path(model)
    check_device(device)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    entry = resolve(path, backend, device, precision)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if precision not in (None, "auto"):
        if not entry.precisions:
            raise ValueError(f"a {entry.name} model's precision is fixed when it is built; rebuild with `deblur export`")
        if precision not in entry.precisions:
            raise ValueError(f"the {entry.name} backend runs precision {', '.join(entry.precisions)}, not {precision!r}")
        options["precision"] = precision
    return entry.load()(path, device=device, **options)


__all__ = ["BACKENDS", "DEVICES", "REGISTRY", "Backend", "BackendSpec", "EngineCompatibilityError",
           "ModelLoadError", "NonFiniteOutputError", "ShapeLimits", "backend_for", "check_device", "open_backend",
           "spec"]
