"""Shared by the serving tests: is a server Python here, small frames, a bounded wait."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from sdk.serving.launch import serve_python


def require_serving() -> str:
    """The Python that runs `deblur serve` (PyTriton installed there), and tritonclient here; else skip."""
    if importlib.util.find_spec("tritonclient") is None:
        pytest.skip("tritonclient is not installed (pip install 'deblur-sdk[remote]')")
    python = serve_python()
    probe = subprocess.run([python, "-c", "import pytriton"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"{python} has no PyTriton: set DEBLUR_SERVE_PYTHON to a Python with the serve extra "
                    "(.ci/run makes one)")
    return python


def frames(rng: np.random.Generator, n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    # Smooth content plus noise, so the network has edges to work on and results differ per frame.
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.stack([xx * 3, yy * 4, (xx + yy) * 2], axis=-1) % 256).astype(np.float32)
    return [np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a thread; fail the test if it takes longer than ``seconds`` (a hang), else return/raise its result."""
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:   # noqa: BLE001 — handed to the test's thread
            box["error"] = exc

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"call still running after {seconds:g} s: a hang")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def serve_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    return env
