"""The OpenVINO backend on tiny ONNX graphs: manifest, parity with ONNX Runtime, per-size compile cache,
bf16 where the CPU has it, int8 only from a quantised IR."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import sdk
from sdk.backends import ModelLoadError, open_backend

pytest.importorskip("openvino")

from sdk.backends import openvino as ov_backend  # noqa: E402


def test_same_frames_as_onnxruntime_and_manifest_from_metadata(onnx_models, rng):
    frame = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    ov = sdk.Deblurrer(onnx_models["conv"], backend="openvino", device="cpu", threads=1)
    ort = sdk.Deblurrer(onnx_models["conv"], backend="onnxruntime", device="cpu", threads=1)
    assert ov.info.backend == "openvino" and ov.info.manifest_source == "metadata_props"
    assert ov.manifest == ort.manifest
    diff = np.abs(ov.process(frame).astype(int) - ort.process(frame).astype(int))
    assert diff.max() <= 1          # float32 on both; rounding to uint8 may differ by one step


def test_each_size_compiles_once_and_the_cache_is_bounded(onnx_models):
    backend = open_backend(onnx_models["affine"], backend="openvino", device="cpu", threads=1)
    compiles = []
    real = backend.core.compile_model
    backend.core.compile_model = lambda *a, **k: compiles.append(1) or real(*a, **k)
    for h in (8, 16, 8, 8, 16):
        x = np.full((1, 3, h, 24), 0.5, np.float32)
        out = np.empty_like(x)
        backend.infer(x, out)
        np.testing.assert_allclose(out, 0.5 * 0.5 + 0.25, atol=1e-6)   # the affine model: 0.5 x + 0.25
    assert len(compiles) == 2
    for h in range(24, 24 + 8 * ov_backend.MAX_COMPILED_SIZES, 8):
        backend.infer(np.zeros((1, 3, h, 8), np.float32), np.empty((1, 3, h, 8), np.float32))
    assert len(backend._compiled) == ov_backend.MAX_COMPILED_SIZES


def test_bf16_without_native_support_falls_back_to_fp32_with_a_warning(onnx_models, monkeypatch):
    monkeypatch.setattr(ov_backend, "cpu_precisions", lambda core: ("FP32", "INT8"))
    with pytest.warns(RuntimeWarning, match="no native bf16"):
        backend = open_backend(onnx_models["affine"], backend="openvino", precision="bf16")
    assert backend.precision == "fp32" and "not native" in backend.describe()["bf16"]


def test_bf16_where_native(onnx_models, monkeypatch):
    monkeypatch.setattr(ov_backend, "cpu_precisions", lambda core: ("BF16", "FP32"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend = open_backend(onnx_models["affine"], backend="openvino", precision="bf16")
    assert backend.precision == "bf16" and backend._config["INFERENCE_PRECISION_HINT"] == "bf16"


def test_int8_needs_a_quantised_model(onnx_models):
    with pytest.raises(ValueError, match="not quantised: int8 needs an NNCF-quantised IR"):
        open_backend(onnx_models["affine"], backend="openvino", precision="int8")


def test_ir_without_its_weights_is_refused(tmp_path):
    xml = tmp_path / "m.xml"
    xml.write_text("<net/>")
    with pytest.raises(ModelLoadError, match=r"m.bin are missing"):
        open_backend(xml, device="cpu")


_SIGNAL_STACK_CHECK = r"""
import ctypes, gc, os, signal, sys
import numpy as np
import sdk

class Stack(ctypes.Structure):
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]

def signal_stack_is_usable():
    stack = Stack()
    ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack))
    if stack.flags & 2 or not stack.sp:          # SS_DISABLE: signals run on the thread's own stack
        return True
    for line in open("/proc/self/maps"):
        lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
        if lo <= stack.sp < hi:
            return True
    return False

first = sdk.Deblurrer(sys.argv[1], backend="openvino", device="cpu")
first.process(np.zeros((64, 64, 3), np.uint8))
second = sdk.Deblurrer(sys.argv[1], backend="openvino", device="cpu")
second.process(np.zeros((64, 64, 3), np.uint8))
del first          # destroyed in creation order, as a garbage collector may well do
gc.collect()
del second
gc.collect()
print("usable", signal_stack_is_usable(), flush=True)
signal.signal(signal.SIGUSR1, lambda *args: print("handled", flush=True))
os.kill(os.getpid(), signal.SIGUSR1)                # what a child's SIGCHLD or a Ctrl-C does
"""


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/maps and calls sigaltstack")
def test_openvino_models_released_in_any_order_leave_signals_deliverable():
    # Found as a SIGSEGV of the whole test suite: each openvino.Core's CPU plugin swaps the thread's
    # alternate signal stack and restores the one it found, so two Cores released in creation order left
    # it unmapped and the next signal killed the process. The backends now share one Core.
    result = subprocess.run([sys.executable, "-c", _SIGNAL_STACK_CHECK, str(sdk.default_model_path())],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.split() == ["usable", "True", "handled"]


def test_backends_share_one_core():
    first = open_backend(sdk.default_model_path(), backend="openvino", device="cpu")
    second = open_backend(sdk.default_model_path(), backend="openvino", device="cpu")
    assert first.core is second.core is ov_backend.shared_core(None)
