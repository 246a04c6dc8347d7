"""Shared test set-up: GPU and TensorRT tests skip themselves where the machine lacks them."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# A copy of shared/fixtures/official, so a clone tests itself wherever it lands.
OFFICIAL = REPO / "tests" / "fixtures" / "official"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _has_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _has_tensorrt() -> bool:
    # tensorrt-stubs makes `tensorrt` findable without TensorRT: ask the one check the SDK itself uses.
    from sdk.backends.tensorrt import import_tensorrt

    try:
        import_tensorrt()
    except ImportError:
        return False
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_trt = pytest.mark.skip(reason="needs TensorRT (not installable in CI; see README)")
    has_trt = _has_tensorrt() and _has_cuda()
    has_gpu = _has_cuda()
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)
        if "trt" in item.keywords and not has_trt:
            item.add_marker(skip_trt)


@pytest.fixture(scope="session")
def official_dir() -> Path:
    return OFFICIAL


# Tests run the Triton kernels under the interpreter only when asked (tests/kernels sets it per test).
os.environ.setdefault("DEBLUR_KERNELS", "auto")
