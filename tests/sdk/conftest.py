"""Fixtures for the runtime tests: tiny ONNX models (built once per session) and small frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import sdk_onnx_models as M

    d = tmp_path_factory.mktemp("onnx")
    plain = M.manifest()
    return {
        "identity": M.identity(d / "identity.onnx", plain),
        "affine": M.affine(d / "affine.onnx", 0.5, 0.25, plain),
        "affine_pm1": M.affine(d / "affine_pm1.onnx", 0.5, 0.0, M.manifest(value_range=(-1.0, 1.0), pad_multiple=4)),
        "gain": M.channel_gain(d / "gain.onnx", (0.0, 1.0, 1.0), plain),
        "gain_bgr": M.channel_gain(d / "gain_bgr.onnx", (0.0, 1.0, 1.0), M.manifest(color_order="BGR")),
        "conv": M.conv3x3(d / "conv.onnx", plain),
        "nan": M.nan_model(d / "nan.onnx", plain),
        "residual": M.zero_model(d / "residual.onnx", M.manifest(residual="add", value_range=(-1.0, 1.0))),
        "bare": M.identity(d / "bare.onnx"),
        "bare_affine": M.affine(d / "bare_affine.onnx", 0.5, 0.25),
        "fp16": M.fp16_identity(d / "fp16.onnx", M.manifest(precision="fp16")),
        "static": M.static_identity(d / "static.onnx", 64, plain),
        "profiled": M.identity(d / "profiled.onnx", M.manifest(shape_profile=M.profile((16, 16), (64, 96)))),
        "gray": M.affine_gray(d / "gray.onnx", 0.5, 0.25, M.manifest(in_channels=1)),
    }


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)

