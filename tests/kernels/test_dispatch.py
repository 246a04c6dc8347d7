"""DEBLUR_KERNELS dispatch: which implementation runs, and the clear errors when Triton cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from kernel_testing import HAS_TRITON

import kernels
from kernels import pixel_attention, pixel_attention_reference, self_attention, self_attention_reference

REPO = Path(__file__).resolve().parents[2]


def _pa_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 4, 3, 5, generator=g), torch.randn(4, 4, 1, 1, generator=g), torch.randn(4, generator=g)


def _forbid_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    if not HAS_TRITON:
        return
    import kernels.triton_pixel_attention as module

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Triton path ran")

    monkeypatch.setattr(module, "pixel_attention_triton", fail)


@pytest.mark.parametrize("mode", ["reference", "auto"])
def test_reference_and_auto_run_the_reference_on_cpu_even_with_the_interpreter(
        monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    # "auto" sends CPU tensors to the reference: the interpreter is a correctness tool, not a fast path.
    monkeypatch.setenv("DEBLUR_KERNELS", mode)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    _forbid_triton(monkeypatch)
    x, w, b = _pa_inputs()
    assert torch.equal(pixel_attention(x, w, b), pixel_attention_reference(x, w, b))


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_forced_triton_on_cpu_needs_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBLUR_KERNELS", "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        pixel_attention(*_pa_inputs())


def test_unknown_mode_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBLUR_KERNELS", "fast")
    with pytest.raises(ValueError, match="DEBLUR_KERNELS must be one of"):
        pixel_attention(*_pa_inputs())


def test_auto_keeps_wide_attention_on_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    # CPU tensors take the reference whatever their width, so watch the decision itself: the width
    # check must hand use_triton a reason for 300 channels (over the kernel's 256) and none for 256.
    import importlib

    module = importlib.import_module("kernels.self_attention")   # the package re-exports a function of that name
    reasons: list[str | None] = []

    def record(*tensors: torch.Tensor, unsupported: str | None = None) -> bool:
        reasons.append(unsupported)
        return False

    monkeypatch.setattr(module, "use_triton", record)
    monkeypatch.setenv("DEBLUR_KERNELS", "auto")
    wide, widest_ok = torch.randn(1, 300, 6), torch.randn(1, 256, 6)
    assert torch.equal(self_attention(wide, wide, wide), self_attention_reference(wide, wide, wide))
    self_attention(widest_ok, widest_ok, widest_ok)
    assert reasons == ["300 channels (the Triton kernel takes up to 256)", None]


class _Gate(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_attention(x, self.conv.weight, self.conv.bias)


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_export_sees_the_reference(interpreter: None) -> None:
    # torch.export (what the ONNX exporter runs) must record standard aten ops, not a Triton launch.
    x = _pa_inputs()[0]
    program = torch.export.export(_Gate(), (x,))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert {"aten.conv2d.default", "aten.sigmoid.default", "aten.mul.Tensor"} <= targets, targets


_NO_TRITON = r"""
import json, sys, warnings
sys.modules["triton"] = None          # what an environment without triton looks like to `import`
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import torch
    import kernels
    x, w = torch.randn(1, 4, 3, 3), torch.randn(4, 4, 1, 1)
    same = [torch.equal(kernels.pixel_attention(x, w, None), kernels.pixel_attention_reference(x, w, None))
            for _ in range(2)]
mentions = [str(c.message) for c in caught if "triton is not installed" in str(c.message)]
import os
os.environ["DEBLUR_KERNELS"] = "triton"
try:
    kernels.pixel_attention(x, w, None)
    forced = "ran"
except RuntimeError as error:
    forced = str(error)
print(json.dumps({"same": same, "warnings": mentions, "forced": forced}))
"""


def test_imports_and_warns_once_without_triton() -> None:
    env = {**os.environ, "DEBLUR_KERNELS": "auto", "PYTHONPATH": str(REPO)}
    env.pop("TRITON_INTERPRET", None)
    done = subprocess.run([sys.executable, "-c", _NO_TRITON], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["same"] == [True, True]
    assert len(report["warnings"]) == 1, report["warnings"]
    assert "not installed" in report["forced"]


def test_public_api() -> None:
    public = {"pixel_attention", "attention_fusion", "attention_fusion_with_map", "self_attention"}
    assert public <= set(kernels.__all__)
