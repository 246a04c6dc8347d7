"""Every bad input and bad model gets the named exception with a message that says what was expected."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import sdk


@pytest.fixture(scope="module")
def deblur(onnx_models):
    return sdk.Deblurrer(onnx_models["identity"], device="cpu", threads=1)


@pytest.mark.parametrize("frame, error, words", [
    (None, TypeError, "got None"),
    ([[1, 2], [3, 4]], TypeError, "got list"),
    (np.zeros((8, 8, 3), np.float64), TypeError, "dtype float64"),
    (np.zeros((8, 8, 3), np.int16), TypeError, "dtype int16"),
    (np.zeros((8,), np.uint8), ValueError, "shape (8,)"),
    (np.zeros((2, 8, 8, 3), np.uint8), ValueError, "shape (2, 8, 8, 3)"),
    (np.zeros((8, 8, 2), np.uint8), ValueError, "shape (8, 8, 2)"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, "empty"),
    (np.full((4, 4, 3), np.nan, np.float32), ValueError, "NaN"),
])
def test_bad_frames_raise_naming_what_was_expected(deblur, frame, error, words):
    with pytest.raises(error) as info:
        deblur.process(frame)
    message = str(info.value)
    assert words in message
    if "NaN" not in words:
        assert "HxWx3 uint8" in message and "BGR" in message


def test_absurdly_huge_frame_is_refused_before_touching_memory(deblur):
    # A 100k x 100k view of one byte: the check must not read (or allocate) it.
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=(100_000, 100_000, 3), strides=(0, 0, 0))
    with pytest.raises(ValueError, match="larger than this SDK handles"):
        deblur.process(huge)


def test_bad_arguments_are_refused(onnx_models):
    path = onnx_models["identity"]
    with pytest.raises(ValueError, match="color must be one of"):
        sdk.Deblurrer(path, color="yuv")
    with pytest.raises(ValueError, match="device must be"):
        sdk.Deblurrer(path, device="gpu0")
    with pytest.raises(ValueError, match="backend must be one of"):
        sdk.Deblurrer(path, backend="tflite")
    with pytest.raises(ValueError, match="backend='tensorrt' cannot run it"):
        sdk.Deblurrer(path, backend="tensorrt")
    with pytest.raises(ValueError, match="on_nonfinite"):
        sdk.Deblurrer(path, on_nonfinite="ignore")
    with pytest.raises(ValueError, match="tile must be"):
        sdk.Deblurrer(path, tile=(0, 5))


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        sdk.Deblurrer(tmp_path / "missing.onnx")
    with pytest.raises(FileNotFoundError, match="missing.engine"):
        sdk.Deblurrer(tmp_path / "missing.engine")


def test_unknown_model_type(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown model type '.tflite'"):
        sdk.Deblurrer(path)


def test_corrupt_and_truncated_onnx_models(onnx_models, tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(sdk.ModelLoadError, match="corrupt or truncated"):
        sdk.Deblurrer(garbage, device="cpu")
    data = onnx_models["conv"].read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(sdk.ModelLoadError, match="corrupt or truncated"):
        sdk.Deblurrer(truncated, device="cpu")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(sdk.ModelLoadError):
        sdk.Deblurrer(empty, device="cpu")


def test_model_errors_are_caught_by_the_builtin_classes_simple_callers_use(tmp_path, onnx_models):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ValueError) as caught:              # what a caller who imports nothing from sdk writes
        sdk.Deblurrer(bad, device="cpu")
    assert type(caught.value) is sdk.ModelLoadError
    nan = sdk.Deblurrer(onnx_models["nan"], device="cpu")
    with pytest.raises(FloatingPointError) as caught:
        nan.process(np.zeros((8, 8, 3), np.uint8))
    assert type(caught.value) is sdk.NonFiniteOutputError
    # Raised only where TensorRT runs (tests/sdk/test_tensorrt_backend.py): a RuntimeError for callers.
    assert issubclass(sdk.EngineCompatibilityError, RuntimeError)


def test_engine_without_tensorrt_says_how_to_get_it(tmp_path, monkeypatch):
    # sys.modules[name] = None makes `import tensorrt` fail, so this holds where TensorRT is installed too.
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\x00" * 64)
    sdk.Manifest(architecture="a", variant="b", value_range=(0.0, 1.0), pad_multiple=8).write_sidecar(engine)
    with pytest.raises(ImportError, match=r"TensorRT is not installed.*deblur-sdk\[trt\].*deblur-sdk\[jetson\]"):
        sdk.Deblurrer(engine)


def test_cuda_device_on_a_cpu_only_onnxruntime_is_refused(onnx_models):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
        sdk.Deblurrer(onnx_models["identity"], device="cuda")
