"""PyTorch backend: run a training checkpoint (``.pt``) directly, fused Triton kernels on CUDA.

``training.checkpoint.load_model`` and ``torch`` are imported only when this backend is built, so the
runtime imports without PyTorch. On a CUDA device the models' attention ops dispatch to the Triton
kernels (``kernels.dispatch``, ``DEBLUR_KERNELS=auto``); on CPU they run their PyTorch references.
``kernels`` pins one of them, ``compile=True`` runs the network through ``torch.compile`` (compiled at
the first call of each shape), and :meth:`TorchBackend.from_module` wraps a network already in memory
(what the benchmarks time).

Example::

    >>> backend = TorchBackend("runs/nano/best.pt", device="cuda", precision="fp16")
    >>> backend.infer(batch, out)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..manifest import Manifest
from .base import Backend, ModelLoadError

KERNELS = ("auto", "reference", "triton")


def _resolve_device(torch: Any, device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} asked for, but PyTorch sees no CUDA GPU; use device='cpu'")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return device


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        from ..extras import missing_extra

        raise missing_extra("running a .pt checkpoint", "train", exc,
                            alternative="or export the model to ONNX") from None
    return torch


class TorchBackend(Backend):
    """A ``training`` network behind the :class:`Backend` interface.

    ``precision``: "fp32" (default), "bf16" (autocast bfloat16, CPU or CUDA) or "fp16" (CUDA only:
    autocast, whose FP16 overflow is caught by :class:`sdk.Deblurrer`'s NaN guard and can fall back
    to fp32). ``kernels``: "auto" (Triton on CUDA), "reference" or "triton" (CUDA only).
    """

    name = "torch"

    def __init__(self, path: str | os.PathLike[str], *, device: str = "auto", precision: str | None = None,
                 compile: bool = False, compile_backend: str = "inductor", kernels: str = "auto") -> None:
        torch = _import_torch()
        try:
            from training.checkpoint import load_model
        except ImportError as exc:
            from ..extras import missing_extra

            raise missing_extra("running a .pt checkpoint", "train", exc,
                                alternative="or export the model to ONNX") from None
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        try:
            model, manifest = load_model(path)
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from None
        self._setup(torch, model, manifest, path, "checkpoint", device, precision, compile, compile_backend, kernels)

    @classmethod
    def from_module(cls, model: Any, manifest: Manifest, *, device: str = "auto", precision: str | None = None,
                    compile: bool = False, compile_backend: str = "inductor", kernels: str = "auto") -> TorchBackend:
        """A network already in memory (e.g. ``training.models.build(...)``) with its manifest."""
        self = cls.__new__(cls)
        self._setup(_import_torch(), model, manifest, None, "module", device, precision, compile, compile_backend,
                    kernels)
        return self

    def _setup(self, torch: Any, model: Any, manifest: Manifest, path: Path | None, source: str, device: str,
               precision: str | None, compile: bool, compile_backend: str, kernels: str) -> None:
        self._torch = torch
        self.path = path
        self.manifest, self.manifest_source = manifest, source
        self.device = _resolve_device(torch, device)
        self.precision = precision or "fp32"
        cuda = self.device.startswith("cuda")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"the torch backend runs fp32, bf16 or fp16, not {self.precision!r}")
        if self.precision == "fp16" and not cuda:
            raise ValueError("fp16 with the torch backend needs a CUDA device (on CPU use bf16)")
        if kernels not in KERNELS:
            raise ValueError(f"kernels must be one of {KERNELS}, got {kernels!r}")
        if kernels == "triton":
            if not cuda:
                raise ValueError("the fused Triton kernels run on CUDA GPUs; on CPU Triton has only its interpreter, "
                                 "a correctness tool, not a fast path")
            try:
                import triton  # noqa: F401
            except ImportError as exc:
                raise ImportError(f"kernels='triton' needs triton ({exc}): pip install 'deblur-sdk[kernels]'") from None
        self.kernels, self.compiled, self.compile_backend = kernels, compile, compile_backend
        self._autocast = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        self.model: Any = model.to(self.device).eval()
        self._fn: Any = torch.compile(self.model, backend=compile_backend, dynamic=False) if compile else self.model

    def _kernel_mode(self) -> contextlib.AbstractContextManager[Any]:
        if self.kernels == "auto":
            return contextlib.nullcontext()
        from kernels.dispatch import kernel_mode

        return kernel_mode(self.kernels)

    def _forward(self, x: Any) -> Any:
        torch = self._torch
        with self._kernel_mode(), torch.inference_mode(), torch.autocast(
                torch.device(self.device).type, dtype=self._autocast, enabled=self._autocast is not None):
            return self._fn(x)

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            self._torch.cuda.synchronize(self.device)

    def infer(self, batch: np.ndarray, out: np.ndarray) -> None:
        x = self._torch.from_numpy(batch).to(self.device, non_blocking=True)
        result = self._forward(x).float().cpu().numpy()   # .cpu() waits for the GPU
        if result.shape != out.shape:
            raise RuntimeError(f"{self.path or 'the network'} returned {result.shape}, expected {out.shape}")
        np.copyto(out, result)

    def device_call(self, batch: np.ndarray) -> Callable[[], None]:
        self.limits.check(batch.shape)
        x = self._torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device)

        def run() -> None:
            self._forward(x)
            self._sync()

        return run

    def fp32_fallback(self) -> Backend:
        if self.precision != "fp32":
            options = dict(device=self.device, precision="fp32", compile=self.compiled,
                           compile_backend=self.compile_backend, kernels=self.kernels)
            if self.path is not None:
                return TorchBackend(self.path, **options)
            return TorchBackend.from_module(self.model, self.manifest, **options)
        return super().fp32_fallback()

    def describe(self) -> dict[str, str]:
        return {"torch": self._torch.__version__, "model": type(self.model).__name__, "kernels": self.kernels,
                "compiled": f"torch.compile ({self.compile_backend})" if self.compiled else "eager"}

    def close(self) -> None:
        if self.compiled:
            self._torch._dynamo.reset()
        self.model = self._fn = None
