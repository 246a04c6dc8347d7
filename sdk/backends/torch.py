"""PyTorch backend: run a training checkpoint (``.pt``) directly, fused Triton kernels on CUDA.

``training.checkpoint.load_model`` and ``torch`` are imported only when this backend is built, so the
runtime imports without PyTorch. On a CUDA device the models' attention ops dispatch to the Triton
kernels (``kernels.dispatch``, ``DEBLUR_KERNELS=auto``); on CPU they run their PyTorch references.

Example::

    >>> backend = TorchBackend("runs/nano/best.pt", device="cuda", precision="fp16")
    >>> backend.infer(batch, out)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .base import Backend, ModelLoadError


def _resolve_device(torch: Any, device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} asked for, but PyTorch sees no CUDA GPU; use device='cpu'")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return device


class TorchBackend(Backend):
    """A ``training`` checkpoint behind the :class:`Backend` interface.

    ``precision``: "fp32" (default) or "fp16" (CUDA only: the network runs under autocast, whose FP16
    overflow is caught by :class:`sdk.Deblurrer`'s NaN guard and can fall back to fp32).
    """

    name = "torch"

    def __init__(self, path: str | os.PathLike[str], *, device: str = "auto", precision: str | None = None) -> None:
        try:
            import torch

            from training.checkpoint import load_model
        except ImportError as exc:
            from ..extras import missing_extra

            raise missing_extra("running a .pt checkpoint", "train", exc,
                                alternative="or export the model to ONNX") from None
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {self.path}")
        self._torch = torch
        self.device = _resolve_device(torch, device)
        self.precision = precision or "fp32"
        if self.precision not in ("fp32", "fp16"):
            raise ValueError(f"the torch backend runs fp32 or fp16, not {self.precision!r}")
        if self.precision == "fp16" and not self.device.startswith("cuda"):
            raise ValueError("fp16 with the torch backend needs a CUDA device")
        try:
            model, self.manifest = load_model(self.path)
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from None
        self.manifest_source = "checkpoint"
        self.model: Any = model.to(self.device).eval()

    def infer(self, batch: np.ndarray, out: np.ndarray) -> None:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.precision == "fp16"):
                y = self.model(x)
            result = y.float().cpu().numpy()
        if result.shape != out.shape:
            raise RuntimeError(f"{self.path}: the network returned {result.shape}, expected {out.shape}")
        np.copyto(out, result)

    def fp32_fallback(self) -> Backend:
        if self.precision == "fp16":
            return TorchBackend(self.path, device=self.device, precision="fp32")
        return super().fp32_fallback()

    def describe(self) -> dict[str, str]:
        return {"torch": self._torch.__version__, "model": type(self.model).__name__}

    def close(self) -> None:
        self.model = None
