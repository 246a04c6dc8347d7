"""Whole models give the same output with the reference ops and with the Triton kernels (interpreter)."""

from __future__ import annotations

import pytest
import torch

models = pytest.importorskip("training.models", reason="the model zoo is not importable yet")


def _count_triton_calls(monkeypatch: pytest.MonkeyPatch, module_name: str, function: str) -> list[int]:
    """Wrap a Triton entry point so the test can prove the kernels, not the reference, ran."""
    import importlib

    module = importlib.import_module(module_name)
    calls = [0]
    original = getattr(module, function)

    def counted(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, function, counted)
    return calls


def _run(model: torch.nn.Module, x: torch.Tensor, monkeypatch: pytest.MonkeyPatch, kernels: str) -> torch.Tensor:
    monkeypatch.setenv("DEBLUR_KERNELS", kernels)
    if kernels == "triton":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    with torch.no_grad():
        return model(x)


def _assert_same(ours: torch.Tensor, reference: torch.Tensor) -> None:
    assert ours.shape == reference.shape
    err = (ours - reference).abs().max().item()
    assert err <= 1e-5 * reference.abs().max().item(), f"max error {err:.3g}"


def test_rdafnet_nano(interpreter: None, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = models.build("rdafnet-nano").eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    fusions = _count_triton_calls(monkeypatch, "kernels.triton_attention_fusion", "attention_fusion_with_map_triton")
    gates = _count_triton_calls(monkeypatch, "kernels.triton_pixel_attention", "pixel_attention_triton")
    reference = _run(model, x, monkeypatch, "reference")
    assert fusions == [0] and gates == [0]
    _assert_same(_run(model, x, monkeypatch, "triton"), reference)
    # The kernels ran (how many calls per block is the model's wiring, not this test's business).
    assert gates[0] > 0 and fusions[0] > 0


def test_msan_tiny(interpreter: None, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = models.build("msan", num_stages=1, num_blocks=1, width=4).eval()
    # gamma starts at 0, which would hide the attention branch from the comparison.
    attention = [m for m in model.modules() if hasattr(m, "gamma")]
    assert attention, "MSAN has no attention module with a gamma"
    with torch.no_grad():
        for module in attention:
            module.gamma.fill_(0.5)
    x = torch.rand(1, 3, 16, 16) - 0.5
    attentions = _count_triton_calls(monkeypatch, "kernels.triton_self_attention", "self_attention_triton")
    reference = _run(model, x, monkeypatch, "reference")
    _assert_same(_run(model, x, monkeypatch, "triton"), reference)
    assert attentions == [1]                      # one stage, one attention module
