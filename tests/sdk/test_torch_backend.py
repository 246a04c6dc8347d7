"""The PyTorch backend on a network in memory: what the benchmarks time is what users run."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdk.backends.torch import TorchBackend  # noqa: E402
from training.checkpoint import model_manifest  # noqa: E402
from training.models import build  # noqa: E402


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build("rdafnet-nano", base_channels=8, num_blocks=1)


def test_from_module_matches_the_network_and_bf16_stays_close(net):
    torch.set_num_threads(1)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 16, 24)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    fp32 = TorchBackend.from_module(net, model_manifest(net), device="cpu")
    out = np.empty_like(x)
    fp32.infer(x, out)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert fp32.manifest_source == "module" and fp32.describe()["compiled"] == "eager"
    bf16 = TorchBackend.from_module(net, model_manifest(net), device="cpu", precision="bf16")
    bf16.infer(x, out)
    err = np.abs(out - expected).max()
    assert 0 < err < 0.1                        # bfloat16 keeps 8 bits of mantissa: close, not equal
    back = bf16.fp32_fallback()
    assert back.precision == "fp32" and isinstance(back, TorchBackend)
    back.infer(x, out)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_device_call_runs_the_network_on_a_fixed_input(net):
    backend = TorchBackend.from_module(net, model_manifest(net), device="cpu")
    calls = []
    real = backend._fn
    backend._fn = lambda t: calls.append(tuple(t.shape)) or real(t)
    run = backend.device_call(np.zeros((2, 3, 8, 8), np.float32))
    run()
    run()
    assert calls == [(2, 3, 8, 8), (2, 3, 8, 8)]


def test_cpu_refuses_what_only_cuda_runs(net):
    with pytest.raises(ValueError, match="fp16 with the torch backend needs a CUDA device"):
        TorchBackend.from_module(net, model_manifest(net), device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="Triton kernels run on CUDA GPUs"):
        TorchBackend.from_module(net, model_manifest(net), device="cpu", kernels="triton")
    with pytest.raises(ValueError, match="kernels must be one of"):
        TorchBackend.from_module(net, model_manifest(net), device="cpu", kernels="fast")
