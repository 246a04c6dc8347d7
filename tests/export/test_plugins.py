"""One fused ONNX, either plugin flavour: the C++ library (kernels/csrc) and the Python plugins register
the same ops, the builder registers the chosen flavour before parsing and records it in the manifest."""

from __future__ import annotations

import contextlib
import re
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_engine_builder import Recorder, calls, make_fake_tensorrt

import export.tensorrt as T
import sdk.plugin_library as plugin_library
from export.plugins import default_flavour, prepare_plugins, provided_ops, required_plugins
from export.tensorrt import BuildOptions, build_engine, parse_shapes
from kernels import trt_plugins
from kernels.onnx_ops import DOMAIN, NODES
from sdk.manifest import Manifest

CSRC_PLUGINS = Path(__file__).resolve().parents[2] / "kernels" / "csrc" / "plugins"
C = 3


def fused_onnx(path: Path) -> Path:
    """input -> pixel_attention_map -> Concat(maps) -> attention_fusion -> self_attention (as (B, C, N))
    -> pixel_attention -> output: every deblur node kind, with the inputs and attributes kernels.onnx_ops writes."""
    rng = np.random.default_rng(0)

    def init(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.1, name)

    inits = [init("w", C, C, 1, 1), init("b", C), init("fw", C, 2 * C, 1, 1), init("fb", C), init("dw", C, 1, 3, 3),
             init("pw", C, C, 1, 1), numpy_helper.from_array(np.array([0, C, -1], np.int64), "flat")]
    plugin = {"plugin_namespace": DOMAIN}

    def deblur(op: str, inputs: list[str], outputs: list[str], **attrs: float) -> onnx.NodeProto:
        assert (len(inputs), len(outputs)) == (len(NODES[op][0]), len(NODES[op][1])) and set(attrs) == set(NODES[op][2])
        return helper.make_node(op, inputs, outputs, name=f"/{op}", domain=DOMAIN, **plugin, **attrs)

    nodes = [deblur("pixel_attention_map", ["input", "w", "b"], ["y", "map"]),
             helper.make_node("Concat", ["map", "map"], ["maps"], name="/cat", axis=1),
             deblur("attention_fusion", ["maps", "fw", "fb", "dw", "pw", "y"], ["f"]),
             helper.make_node("Shape", ["input"], ["shape"], name="/shape"),
             helper.make_node("Reshape", ["f", "flat"], ["tokens"], name="/flat"),
             deblur("self_attention", ["tokens", "tokens", "tokens"], ["attended"], scale=1.0),
             helper.make_node("Reshape", ["attended", "shape"], ["g"], name="/unflat"),
             deblur("pixel_attention", ["g", "w", "b"], ["output"])]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", C, "height", "width"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", C, "height", "width"])
    model = helper.make_model(helper.make_graph(nodes, "fused", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)], ir_version=8)
    helper.set_model_props(model, Manifest(architecture="toy", variant="fused", value_range=(-1.0, 1.0),
                                           pad_multiple=2).onnx_metadata())
    onnx.save(model, str(path))
    return path


def test_the_cpp_library_registers_exactly_the_ops_and_attributes_the_export_writes():
    sources = "\n".join(p.read_text() for p in sorted(CSRC_PLUGINS.glob("*_plugin.cpp")))
    registered = set(re.findall(r'kName = "(\w+)"', sources))
    assert registered == set(NODES) == set(plugin_library.CPP_PLUGIN_OPS) == set(trt_plugins.PLUGINS)
    fields = set(re.findall(r'PluginField\("(\w+)"', sources))
    assert fields == {a for _, _, floats in NODES.values() for a in floats} == {"scale"}
    assert re.search(r'kNamespace = "(\w+)"', (CSRC_PLUGINS / "plugin_base.h").read_text()).group(1) == DOMAIN
    assert set(provided_ops("cpp")) == set(provided_ops("python")) == {f"{DOMAIN}::{n}" for n in NODES}


@pytest.mark.parametrize(("version", "flavour"), [((10, 3), "cpp"), ((10, 5), "cpp"), ((10, 6), "python"),
                                                  ((10, 16), "python"), ((11, 1), "python")])
def test_default_flavour_is_python_where_tensorrt_has_it(version, flavour):
    assert default_flavour(*version) == flavour


class FakeRegistry:
    def __init__(self, trt: types.ModuleType, rec: Recorder, ok: bool = True) -> None:
        self.trt, self.rec, self.ok = trt, rec, ok

    def load_library(self, path: str):
        self.rec.calls.append(("load_library", Path(path).name))
        if not self.ok:
            return None
        self.trt.plugins_registered.update(plugin_library.CPP_PLUGIN_OPS)   # what the fake parser then finds
        return object()


@pytest.fixture
def library(tmp_path, monkeypatch) -> Path:
    """A (fake) plugin library found through $DEBLUR_TRT_PLUGIN_LIBRARY; no library loaded yet."""
    so = tmp_path / plugin_library.LIBRARY_NAME
    so.write_bytes(b"\x7fELF")
    monkeypatch.setenv(plugin_library.ENV_VAR, str(so))
    monkeypatch.setattr(plugin_library, "_loaded", {})
    monkeypatch.setattr(plugin_library, "__file__", str(tmp_path / "pkg" / "sdk" / "plugin_library.py"))
    return so


@pytest.fixture
def fake_trt(monkeypatch):
    def install(version: str, ok: bool = True) -> Recorder:
        rec = Recorder()
        trt = make_fake_tensorrt(version, rec)
        trt.get_plugin_registry = lambda: FakeRegistry(trt, rec, ok)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr(T, "gpu_compute_capability", lambda device=0: ("8.7", "Orin"))
        monkeypatch.setattr(T, "use_device", lambda device: contextlib.nullcontext())

        def register_python_plugins(aot=True):
            rec.calls.append(("register_python_plugins",))
            trt.plugins_registered.update(trt_plugins.PLUGINS)
            return [f"{DOMAIN}::{name}" for name in trt_plugins.PLUGINS]

        monkeypatch.setattr(trt_plugins, "register_plugins", register_python_plugins)
        return rec
    return install


@pytest.mark.parametrize(("version", "asked", "expected"), [("10.3.0.30", None, "cpp"), ("10.3.0.30", "cpp", "cpp"),
                                                           ("10.16.0.1", None, "python"), ("10.16.0.1", "cpp", "cpp"),
                                                           ("11.1.0.2", "python", "python")])
def test_a_fused_onnx_builds_with_either_flavour_registered_before_parsing(tmp_path, library, fake_trt, version,
                                                                           asked, expected):
    rec = fake_trt(version)
    onnx_path = fused_onnx(tmp_path / "fused.onnx")
    needed = tuple(sorted(f"{DOMAIN}::{op}" for op in NODES))
    assert required_plugins(onnx_path) == needed

    result = build_engine(onnx_path, tmp_path / "fused.engine",
                          BuildOptions(precision="fp32", profile=parse_shapes("1x3x16x16:1x3x32x32:1x3x64x64")),
                          plugins=asked)
    order = [c[0] for c in rec.calls if c[0] in ("load_library", "register_python_plugins", "parse")]
    registered = "load_library" if expected == "cpp" else "register_python_plugins"
    assert order == [registered, "parse"]                           # plugins first, then the parser
    assert "OK" in result.op_check and "custom-domain" not in result.op_check
    manifest = Manifest.read_sidecar(tmp_path / "fused.engine")
    assert (manifest.plugins, manifest.plugin_flavour) == (needed, expected)
    assert calls(rec, "load_library") == ([(plugin_library.LIBRARY_NAME,)] if expected == "cpp" else [])


def test_the_op_check_accepts_the_plugin_ops_where_the_chosen_flavour_runs_them(tmp_path):
    onnx_path = fused_onnx(tmp_path / "fused.onnx")
    with pytest.raises(T.EngineBuildError, match="custom-domain op"):
        T._static_op_check(onnx_path, T.TensorRTVersion(10, 3))                  # no plugins registered
    assert "OK" in T._static_op_check(onnx_path, T.TensorRTVersion(10, 3), "cpp")
    with pytest.raises(T.EngineBuildError, match=r"needs TensorRT >= 10\.6"):
        T._static_op_check(onnx_path, T.TensorRTVersion(10, 3), "python")        # JetPack 6 has no tensorrt.plugin
    assert "OK" in T._static_op_check(onnx_path, T.TensorRTVersion(10, 16), "python")


def test_a_missing_or_refused_library_and_impossible_choices_say_what_to_do(tmp_path, library, fake_trt, monkeypatch):
    onnx_path = fused_onnx(tmp_path / "fused.onnx")
    options = BuildOptions(precision="fp32", profile=parse_shapes("1x3x16x16:1x3x32x32:1x3x64x64"))
    rec = fake_trt("10.3.0.30")
    library.unlink()
    with pytest.raises(plugin_library.PluginLibraryError, match=r"(?s)not found.*cmake --build build --target deblur_trt_plugins"):
        build_engine(onnx_path, tmp_path / "a.engine", options, plugins="cpp")
    assert not calls(rec, "parse")
    with pytest.raises(plugin_library.PluginLibraryError, match="plugin library not found: /nowhere/x.so"):
        build_engine(onnx_path, tmp_path / "a.engine", options, plugin_library="/nowhere/x.so")

    library.write_bytes(b"\x7fELF")
    fake_trt("10.3.0.30", ok=False)
    with pytest.raises(plugin_library.PluginLibraryError, match="could not load .*another TensorRT or CUDA version"):
        build_engine(onnx_path, tmp_path / "a.engine", options, plugins="cpp")

    fake_trt("8.6.1.6")
    with pytest.raises(ValueError, match=r"need TensorRT >= 10\.3"):
        build_engine(onnx_path, tmp_path / "a.engine", options, plugins="cpp")
    fake_trt("10.16.0.1")
    with pytest.raises(ValueError, match="is for --plugins cpp"):
        build_engine(onnx_path, tmp_path / "a.engine", options, plugins="python", plugin_library=library)
    with pytest.raises(ValueError, match="plugins must be one of"):
        prepare_plugins(types.SimpleNamespace(), (10, 16), (), "rust")
    with pytest.raises(ValueError, match=r"\['other::op'\].*cpp plugins do not provide"):
        prepare_plugins(types.SimpleNamespace(), (10, 3), ("deblur::pixel_attention", "other::op"), "cpp")
    assert prepare_plugins(types.SimpleNamespace(), (10, 3), ()) is None          # a standard-op graph: nothing


def test_deblur_export_plugins_option_reaches_the_builder(tmp_path, library, fake_trt, capsys):
    from sdk.cli import main

    fake_trt("10.16.0.1")                                      # python would be the default here
    onnx_path = fused_onnx(tmp_path / "fused.onnx")
    engine = tmp_path / "fused.engine"
    assert main(["export", str(onnx_path), "--to", "engine", "--plugins", "cpp", "--plugin-library", str(library),
                 "--shapes", "1x3x16x16:1x3x32x32:1x3x64x64", "--out", str(engine)]) == 0
    assert Manifest.read_sidecar(engine).plugin_flavour == "cpp"
    assert "4 cpp plugin ops" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["export", str(onnx_path), "--to", "engine", "--plugins", "rust"])
    assert "invalid choice: 'rust'" in capsys.readouterr().err
