"""The backend registry: one table decides which backend opens which file on which device."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk.backends import REGISTRY, open_backend, registry
from sdk.backends.registry import BackendSpec, resolve


@pytest.fixture
def installed(monkeypatch):
    """Pretend exactly the named backends' libraries are installed, and say whether a GPU runtime is."""

    def setup(*names: str, gpu: bool = False) -> None:
        monkeypatch.setattr(BackendSpec, "installed", lambda self: self.name in names)
        monkeypatch.setattr(registry, "gpu_runtime_available", lambda: gpu)

    return setup


def test_auto_on_a_cpu_picks_openvino_for_onnx_when_installed(installed):
    installed("openvino", "onnxruntime")
    assert resolve(Path("m.onnx"), "auto", "cpu").name == "openvino"
    assert resolve(Path("m.onnx"), "auto", "auto").name == "openvino"


def test_auto_keeps_onnx_on_onnxruntime_without_openvino_or_with_a_gpu(installed):
    installed("onnxruntime")
    assert resolve(Path("m.onnx"), "auto", "cpu").name == "onnxruntime"
    installed("openvino", "onnxruntime", gpu=True)
    assert resolve(Path("m.onnx"), "auto", "auto").name == "onnxruntime"     # auto device means the GPU here
    assert resolve(Path("m.onnx"), "auto", "cuda").name == "onnxruntime"
    assert resolve(Path("m.onnx"), "auto", "cpu").name == "openvino"


def test_auto_passes_over_a_backend_without_the_precision_asked(installed):
    installed("openvino", "onnxruntime")
    assert resolve(Path("m.onnx"), "auto", "cpu", "fp16").name == "onnxruntime"
    assert resolve(Path("m.onnx"), "auto", "cpu", "bf16").name == "openvino"


def test_a_format_only_an_uninstalled_backend_opens_still_names_it(installed):
    installed("onnxruntime")
    assert resolve(Path("m.xml"), "auto", "cpu").name == "openvino"   # opening it raises the install hint


def test_explicit_backend_must_open_the_suffix_and_run_on_the_device():
    with pytest.raises(ValueError, match="opened by openvino; backend='onnxruntime' cannot run it"):
        resolve(Path("m.xml"), "onnxruntime", "cpu")
    with pytest.raises(ValueError, match="runs on cpu, not device='cuda'"):
        resolve(Path("m.onnx"), "openvino", "cuda")
    with pytest.raises(ValueError, match="unknown model type '.bin'"):
        resolve(Path("m.bin"))
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve(Path("m.onnx"), "tflite")


def test_every_entry_names_a_backend_class_with_its_own_name():
    for entry in REGISTRY:
        assert entry.suffixes and entry.devices and entry.install
        if entry.name in ("onnxruntime", "openvino"):   # the two whose libraries this suite installs
            assert entry.load().name == entry.name


def test_open_backend_checks_precision_against_the_table(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read: the precision is checked first")
    with pytest.raises(ValueError, match="runs precision fp32, fp16, not 'int8'"):
        open_backend(model, backend="onnxruntime", precision="int8")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    with pytest.raises(ValueError, match="fixed when it is built"):
        open_backend(engine, precision="fp16")
