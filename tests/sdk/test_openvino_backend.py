"""The OpenVINO backend on tiny ONNX graphs: manifest, parity with ONNX Runtime, per-size compile cache,
bf16 where the CPU has it, int8 only from a quantised IR."""

from __future__ import annotations

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
