"""The C++ plugin library at run time: found in a fixed order, registered once, loaded before a fused
engine is deserialised, and a clear error (where it looked, how to build it) when it is missing."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from test_tensorrt_backend import PLAN, FakeCuda, make_fake_tensorrt

import sdk
import sdk.backends.tensorrt as trt_backend
import sdk.plugin_library as plugin_library
from sdk.backends.cuda_runtime import GpuInfo
from sdk.backends.engine_file import pack_engine
from sdk.manifest import Manifest, ManifestError, ShapeProfile
from sdk.plugin_library import (
    ENV_VAR,
    LIBRARY_NAME,
    PluginLibraryError,
    find_plugin_library,
    load_plugin_library,
)


@pytest.fixture
def package(tmp_path, monkeypatch) -> Path:
    """Pretend sdk lives in tmp_path/pkg/sdk (a source checkout), with no library anywhere yet."""
    monkeypatch.setattr(plugin_library, "__file__", str(tmp_path / "pkg" / "sdk" / "plugin_library.py"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(plugin_library, "_loaded", {})
    return tmp_path / "pkg"


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF")
    return path


def test_the_library_is_found_in_order_and_a_miss_lists_where_it_looked(package, tmp_path, monkeypatch):
    with pytest.raises(PluginLibraryError) as missing:
        find_plugin_library()
    for place in (package / "sdk" / "lib" / LIBRARY_NAME, package / "build" / "kernels" / "csrc" / LIBRARY_NAME):
        assert str(place) in str(missing.value)
    assert "cmake" in str(missing.value) and "--plugins python" in str(missing.value)

    built = touch(package / "build" / "kernels" / "csrc" / LIBRARY_NAME)
    assert find_plugin_library() == built
    beside = touch(package / "sdk" / "lib" / LIBRARY_NAME)
    assert find_plugin_library() == beside
    env = touch(tmp_path / "elsewhere" / LIBRARY_NAME)
    monkeypatch.setenv(ENV_VAR, str(env))
    assert find_plugin_library() == env
    explicit = touch(tmp_path / "mine.so")
    assert find_plugin_library(explicit) == explicit
    with pytest.raises(PluginLibraryError, match="plugin library not found: .*gone.so"):
        find_plugin_library(tmp_path / "gone.so")            # an explicit path is not silently replaced


def registry_trt(loads: list[str], ok: bool = True) -> types.SimpleNamespace:
    def load_library(path: str):
        loads.append(path)
        return object() if ok else None
    registry = types.SimpleNamespace(load_library=load_library)
    return types.SimpleNamespace(__version__="10.3.0.30", get_plugin_registry=lambda: registry)


def test_loading_registers_once_per_process_and_explains_a_refusal(package, tmp_path):
    loads: list[str] = []
    first = touch(package / "sdk" / "lib" / LIBRARY_NAME)
    assert load_plugin_library(registry_trt(loads)) == first.resolve()
    assert load_plugin_library(registry_trt(loads)) == first.resolve()
    assert loads == [str(first.resolve())]                      # TensorRT refuses a second registration
    assert plugin_library.loaded_libraries() == [first.resolve()]
    with pytest.raises(PluginLibraryError, match="already loaded"):
        load_plugin_library(registry_trt(loads), touch(tmp_path / "other.so"))

    plugin_library._loaded.clear()
    with pytest.raises(PluginLibraryError, match=r"TensorRT 10\.3\.0\.30 could not load .*another TensorRT"):
        load_plugin_library(registry_trt(loads, ok=False))
    assert plugin_library.loaded_libraries() == []


def fused_engine(path: Path, flavour: str = "cpp") -> Path:
    path.write_bytes(PLAN)
    Manifest(architecture="rdafnet", variant="rdafnet-nano-fused", value_range=(-1.0, 1.0), pad_multiple=8,
             precision="fp16", shape_profile=ShapeProfile(min=(1, 16, 16), opt=(1, 64, 64), max=(1, 128, 128)),
             plugins=("deblur::attention_fusion", "deblur::pixel_attention_map"), plugin_flavour=flavour,
             toolchain={"tensorrt": "10.13.0.35", "compute_capability": "8.7", "gpu": "Orin"}).write_sidecar(path)
    return path


def install_fake_tensorrt(monkeypatch, events: list[str]) -> None:
    cuda = FakeCuda()
    trt = make_fake_tensorrt(cuda)
    deserialize = trt.Runtime.deserialize_cuda_engine

    def recording_deserialize(self, plan):
        events.append("deserialize")
        return deserialize(self, plan)

    trt.Runtime.deserialize_cuda_engine = recording_deserialize
    registry = types.SimpleNamespace(load_library=lambda path: events.append(f"load {Path(path).name}") or object())
    trt.get_plugin_registry = lambda: registry
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(trt_backend, "load_cuda_api", lambda: cuda)


def test_deblurrer_loads_the_library_before_deserialising_a_cpp_plugin_engine(package, tmp_path, monkeypatch):
    events: list[str] = []
    install_fake_tensorrt(monkeypatch, events)
    touch(package / "build" / "kernels" / "csrc" / LIBRARY_NAME)
    deblur = sdk.Deblurrer(fused_engine(tmp_path / "fused.engine"), tile_overlap=8)
    assert events == [f"load {LIBRARY_NAME}", "deserialize"]
    assert deblur.backend.manifest.plugin_flavour == "cpp"

    events.clear()
    sdk.Deblurrer(fused_engine(tmp_path / "again.engine"), tile_overlap=8)   # a second engine: the library stays registered
    assert events == ["deserialize"]


def test_the_plugins_come_from_the_engine_files_own_manifest_even_when_the_caller_passes_another(package, tmp_path,
                                                                                                 monkeypatch):
    events: list[str] = []
    install_fake_tensorrt(monkeypatch, events)
    touch(package / "build" / "kernels" / "csrc" / LIBRARY_NAME)
    sidecar = fused_engine(tmp_path / "sidecar.engine")
    built = Manifest.read_sidecar(sidecar)
    engine = tmp_path / "packed.engine"
    engine.write_bytes(pack_engine(PLAN, built))                  # manifest in the header, no sidecar
    plain = built.replace(plugins=(), plugin_flavour=None)
    backend = trt_backend.TensorRTBackend(engine, manifest=plain)
    assert events == [f"load {LIBRARY_NAME}", "deserialize"] and backend.manifest_source == "given"


def test_an_unregistered_plugin_failure_says_what_the_manifest_named(tmp_path):
    manifest = Manifest.read_sidecar(fused_engine(tmp_path / "fused.engine"))
    err = trt_backend.explain_engine_failure(tmp_path / "fused.engine", manifest, tensorrt_version="10.13.0.35",
                                             gpu=GpuInfo("Orin", (8, 7)), log=["IPluginCreator not found in Plugin Registry"])
    assert isinstance(err, sdk.ModelLoadError)
    assert "['deblur::attention_fusion', 'deblur::pixel_attention_map'] (cpp plugins)" in str(err)
    assert "DEBLUR_TRT_PLUGIN_LIBRARY" in str(err) and "without --fused" in str(err)


def test_deblurrer_says_clearly_when_the_library_is_missing(package, tmp_path, monkeypatch):
    events: list[str] = []
    install_fake_tensorrt(monkeypatch, events)
    with pytest.raises(PluginLibraryError, match=r"(?s)libdeblur_trt_plugins\.so\) was not found.*"
                                                 r"DEBLUR_TRT_PLUGIN_LIBRARY.*--plugins python"):
        sdk.Deblurrer(fused_engine(tmp_path / "fused.engine"), tile_overlap=8)
    assert events == []                                         # nothing deserialised without the plugins


def test_a_python_plugin_engine_without_the_kernels_package_warns_what_would_fail(package, tmp_path, monkeypatch):
    events: list[str] = []
    install_fake_tensorrt(monkeypatch, events)
    monkeypatch.setitem(sys.modules, "kernels.trt_plugins", None)      # a torch-free robot install
    with pytest.warns(UserWarning, match=r"(?s)Python plugins.*JIT-plugin engine will fail.*--plugins cpp"):
        sdk.Deblurrer(fused_engine(tmp_path / "fused.engine", flavour="python"), tile_overlap=8)
    assert events == ["deserialize"]                            # AOT plugins live inside the engine


def test_a_standard_engine_loads_no_plugins(package, tmp_path, monkeypatch):
    events: list[str] = []
    install_fake_tensorrt(monkeypatch, events)
    engine = tmp_path / "plain.engine"
    engine.write_bytes(PLAN)
    Manifest(architecture="rdafnet", variant="rdafnet-nano", value_range=(-1.0, 1.0), pad_multiple=8,
             toolchain={"tensorrt": "10.13.0.35", "compute_capability": "8.7"}).write_sidecar(engine)
    sdk.Deblurrer(engine, tile_overlap=8)
    assert events == ["deserialize"]


def test_the_manifest_keeps_plugins_and_flavour_together():
    base = {"architecture": "rdafnet", "variant": "x", "value_range": (-1.0, 1.0), "pad_multiple": 8}
    m = Manifest(**base, plugins=["deblur::self_attention"], plugin_flavour="cpp")
    assert Manifest.from_json(m.to_json()) == m and m.plugins == ("deblur::self_attention",)
    for bad in ({"plugins": ["deblur::self_attention"]}, {"plugin_flavour": "cpp"},
                {"plugins": ["self_attention"], "plugin_flavour": "cpp"},
                {"plugins": ["deblur::self_attention"], "plugin_flavour": "rust"}, {"plugins": "deblur::x"}):
        with pytest.raises(ManifestError, match="plugin"):
            Manifest(**base, **bad)
