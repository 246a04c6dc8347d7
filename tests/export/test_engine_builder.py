"""The TensorRT engine builder without TensorRT: profiles, cache keys, version gates, and the calls a build makes
(against a fake ``tensorrt`` module that records them). The ``trt`` test at the end builds and runs a real engine."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import export.tensorrt as T
from export.tensorrt import (
    BuildOptions,
    EngineBuildError,
    EngineCache,
    TensorRTUnavailableError,
    TensorRTVersion,
    TensorRTVersionError,
    align_profile,
    build_engine,
    engine_cache_key,
    ensure_engine,
    parse_shapes,
    parse_size,
    plan_build,
    to_float16_onnx,
)
from kernels import trt_plugins
from kernels.trt_plugins import PLUGINS
from sdk.backends.engine_file import read_engine
from sdk.manifest import Manifest, ShapeProfile

REPO = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef" * 4
PROFILE = parse_shapes("1x3x256x256:1x3x720x1280:1x3x1088x1920")


# --------------------------------------------------------------------------- pure logic
def test_versions_parse_and_gate_what_a_build_does():
    assert TensorRTVersion.parse("10.13.0.35") == TensorRTVersion(10, 13, 0) and str(TensorRTVersion(8, 6)) == "8.6.0"
    with pytest.raises(TensorRTVersionError, match="TensorRT 8.5.2 is too old: this builder supports TensorRT 8.6, 10.x and 11.x"):
        plan_build(TensorRTVersion(8, 5, 2), "fp16")
    with pytest.raises(ValueError, match="not a TensorRT version"):
        TensorRTVersion.parse("ten")

    trt8 = plan_build(TensorRTVersion(8, 6, 1), "fp16", ("conv",))
    trt10 = plan_build(TensorRTVersion(10, 3, 0), "fp16", ("conv",))
    trt11 = plan_build(TensorRTVersion(11, 1, 0), "fp16", ("conv",))
    assert (trt8.explicit_batch_flag, trt10.explicit_batch_flag, trt11.explicit_batch_flag) == (True, False, False)
    assert (trt8.fp16_flag, trt10.fp16_flag, trt11.fp16_flag) == (True, True, False)      # 11 removed BuilderFlag.FP16
    assert (trt10.pin_with_layer_precision, trt10.obey_precision_constraints) == (True, True)
    assert (trt11.convert_onnx_to_fp16, trt11.pin_with_layer_precision) == (True, False)
    assert plan_build(TensorRTVersion(10, 3), "fp32", ("conv",)) == T.BuildPlan(False, False, False, False, False, False)
    assert plan_build(TensorRTVersion(10, 3), "int8").int8_flag
    with pytest.raises(EngineBuildError, match="int8 on TensorRT 11.0.0 needs an explicitly quantised"):
        plan_build(TensorRTVersion(11, 0), "int8")
    # Each installed version reads the operator list of the release line it belongs to.
    assert [TensorRTVersion.parse(v).ops_target for v in ("8.6.1", "10.0.1", "10.3.0", "10.4.0", "10.16.1", "11.1.0")] \
        == ["8.6", "10.3", "10.3", "10.16", "10.16", "11.1"]


def test_from_tensorrt_10_12_fp16_is_strongly_typed_and_weak_typing_is_kept_only_where_it_is_the_only_way():
    # 10.12 deprecated BuilderFlag.FP16, OBEY_PRECISION_CONSTRAINTS, ILayer.precision and set_output_type.
    for version in ("10.12.0", "10.16.1"):
        plan = plan_build(TensorRTVersion.parse(version), "fp16", ("conv",))
        assert (plan.strongly_typed_flag, plan.convert_onnx_to_fp16) == (True, True)
        assert (plan.fp16_flag, plan.obey_precision_constraints, plan.pin_with_layer_precision) == (False, False, False)
    weak = plan_build(TensorRTVersion(10, 11, 0), "fp16", ("conv",))
    assert (weak.strongly_typed_flag, weak.fp16_flag, weak.pin_with_layer_precision) == (False, True, True)
    # 11.x: every network is strongly typed and the flag is deprecated and ignored, so it is not set.
    assert plan_build(TensorRTVersion(11, 1), "fp16").strongly_typed_flag is False
    # Calibrator int8 exists only weakly typed; on 10.12+ it is deprecated but still the only way there.
    int8 = plan_build(TensorRTVersion(10, 12), "int8", ("conv",))
    assert (int8.strongly_typed_flag, int8.int8_flag, int8.fp16_flag) == (False, True, True)


def test_shapes_sizes_and_options_are_validated_with_useful_messages():
    assert (PROFILE.min, PROFILE.opt, PROFILE.max) == ((1, 256, 256), (1, 720, 1280), (1, 1088, 1920))
    with pytest.raises(ValueError, match="expected MIN:OPT:MAX"):
        parse_shapes("1x3x720x1280")
    assert (parse_size("512M"), parse_size("1G"), parse_size("2GiB"), parse_size(4096)) == (512 << 20, 1 << 30, 2 << 30, 4096)
    with pytest.raises(ValueError, match="not a size: 'lots'"):
        parse_size("lots")
    # The runtime pads frames to the model's multiple, so the profile must admit the padded sizes.
    aligned = align_profile(ShapeProfile((1, 250, 250), (1, 720, 1280), (2, 1080, 1920)), 32)
    assert (aligned.min, aligned.opt, aligned.max) == ((1, 250, 250), (1, 736, 1280), (2, 1088, 1920))
    assert align_profile(PROFILE, 2) == PROFILE
    with pytest.raises(ValueError, match="int8 needs int8_calibrator"):
        BuildOptions(precision="int8").validate()
    with pytest.raises(ValueError, match="optimization_level must be 0..5"):
        BuildOptions(optimization_level=7).validate()


def test_cache_keys_name_everything_an_engine_depends_on():
    base = dict(onnx_sha256=SHA, tensorrt_version="10.13.0.35", compute_capability="8.7", precision="fp16",
                profile=PROFILE, fp32_layers=("/a/Conv",))
    key = engine_cache_key(**base)
    assert re.fullmatch(r"0123456789ab-trt10\.13\.0-sm87-fp16-[0-9a-f]{16}", key)
    assert engine_cache_key(**base) == key
    assert engine_cache_key(**{**base, "fp32_layers": ("/a/Conv",)}) == key
    variants = [{"onnx_sha256": "f" * 64}, {"tensorrt_version": "10.3.0"}, {"compute_capability": "8.6"},
                {"precision": "fp32"}, {"profile": parse_shapes("1x3x256x256:1x3x720x1280:2x3x1088x1920")},
                {"fp32_layers": ()}]
    keys = {engine_cache_key(**{**base, **v}) for v in variants}
    assert len(keys) == len(variants) and key not in keys
    with pytest.raises(ValueError, match="onnx_sha256 must be a SHA-256"):
        engine_cache_key(**{**base, "onnx_sha256": "abc"})
    with pytest.raises(ValueError, match="compute capability must look like '8.7'"):
        engine_cache_key(**{**base, "compute_capability": "sm_87"})


def test_the_cache_only_trusts_an_engine_with_a_readable_manifest(tmp_path):
    cache = EngineCache(tmp_path)
    key = engine_cache_key(SHA, "10.3.0", "8.7", "fp16", PROFILE)
    assert cache.lookup(key) is None
    cache.engine_path(key).write_bytes(b"plan")
    assert cache.lookup(key) is None                                   # no manifest beside it: rebuild
    Path(str(cache.engine_path(key)) + ".json").write_text("{truncated")
    assert cache.lookup(key) is None
    Manifest(architecture="a", variant="b", value_range=(0.0, 1.0), pad_multiple=1).write_sidecar(cache.engine_path(key))
    assert cache.lookup(key) == cache.engine_path(key)
    assert cache.timing_cache_path("10.3.0.30", "8.7").name == "timing-trt10.3.0-sm87.cache"


def test_without_tensorrt_the_error_says_so(monkeypatch):
    # Whatever this machine has installed: hide TensorRT (None in sys.modules makes the import fail) ...
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(TensorRTUnavailableError, match="TensorRT is not installed"):
        T.import_tensorrt()
    # ... or offer only what tensorrt-stubs installs: a package without Builder or __version__.
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    with pytest.raises(TensorRTUnavailableError, match="only its type stubs"):
        T.import_tensorrt()


# --------------------------------------------------------------------------- a fake TensorRT
def conv_onnx(path: Path, manifest: Manifest | None = None) -> Path:
    """input -> Conv(/a/Conv) -> Relu(/a/Relu) -> Conv(/b/Conv) -> output, with dynamic H/W."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((3, 3, 3, 3)).astype(np.float32) * 0.1, name)
             for name in ("wa", "wb")]
    nodes = [helper.make_node("Conv", ["input", "wa"], ["a"], name="/a/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"], name="/a/Relu"),
             helper.make_node("Conv", ["r", "wb"], ["output"], name="/b/Conv", pads=[1, 1, 1, 1])]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    manifest = manifest or Manifest(architecture="toy", variant="conv", value_range=(-1.0, 1.0), pad_multiple=2,
                                    fp32_layers=("/a/Conv",), toolchain={"opset": "17"})
    helper.set_model_props(model, manifest.onnx_metadata())
    onnx.save(model, str(path))
    return path


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []


# NetworkDefinitionCreationFlag's values as NvInfer.h of each line numbers them (8.6: EXPLICIT_BATCH 0,
# EXPLICIT_PRECISION 1; 10.x: EXPLICIT_BATCH 0, STRONGLY_TYPED 1, PREFER_JIT/AOT_PYTHON_PLUGINS 2/3 from 10.9;
# 11.x: STRONGLY_TYPED 0, PREFER_JIT/AOT 1/2).
FLAG_VALUES = {8: {"EXPLICIT_BATCH": 0, "EXPLICIT_PRECISION": 1},
               10: {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1, "PREFER_JIT_PYTHON_PLUGINS": 2,
                    "PREFER_AOT_PYTHON_PLUGINS": 3},
               11: {"STRONGLY_TYPED": 0, "PREFER_JIT_PYTHON_PLUGINS": 1, "PREFER_AOT_PYTHON_PLUGINS": 2}}


def _api_table(version: str) -> dict:
    """The committed API table of the newest release <= ``version`` (export/data/trt_api)."""
    from export import trt_api

    wanted = TensorRTVersion.parse(version)
    return trt_api.load(max((v for v in trt_api.VERSIONS if TensorRTVersion.parse(v) <= wanted),
                            key=TensorRTVersion.parse))


def make_fake_tensorrt(version: str, rec: Recorder, *, parse_ok: bool = True, build_ok: bool = True,
                       cache_matches: bool = True) -> types.ModuleType:
    """Records what a build does. Enum members exist only where TensorRT's bindings of that release have them
    (the API tables), and a strongly typed network refuses layer precisions, as NvInfer.h documents."""
    from export import trt_api

    table = _api_table(version)
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.float32, trt.float16, trt.int64 = "float32", "float16", "int64"
    trt.Logger = type("Logger", (), {"WARNING": "warning", "__init__": lambda self, level: None})
    flags = FLAG_VALUES[int(version.split(".")[0])]
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(
        **{k: v for k, v in flags.items() if k in trt_api.members(table, "NetworkDefinitionCreationFlag")})
    builder_flags = {"FP16": "FP16", "INT8": "INT8", "OBEY_PRECISION_CONSTRAINTS": "OBEY"}
    trt.BuilderFlag = types.SimpleNamespace(**{k: v for k, v in builder_flags.items()
                                               if k in trt_api.members(table, "BuilderFlag")})
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    trt.Dims = lambda dims: tuple(dims)
    trt.plugins_registered = set()      # what the parser finds in the plugin registry, by op name

    class Tensor:
        def __init__(self, name, dtype="float32"):
            self.name, self.dtype = name, dtype

    class Layer:
        def __init__(self, node, network):
            self.name, self.outputs, self.network = node.name, [Tensor(o) for o in node.output], network
            self._precision = None

        @property
        def precision(self):
            return self._precision

        @precision.setter
        def precision(self, value):
            if self.network.strongly_typed:
                raise RuntimeError("setting layer precision is not allowed in a strongly typed network")
            self._precision = value

        @property
        def num_outputs(self):
            return len(self.outputs)

        def get_output(self, i):
            return self.outputs[i]

        def set_output_type(self, i, dtype):
            if self.network.strongly_typed:
                raise RuntimeError("setting layer output types is not allowed in a strongly typed network")
            rec.calls.append(("set_output_type", self.name, i, dtype))

    class Network:
        def __init__(self, flags):
            rec.calls.append(("create_network", flags))
            self.layers, self.inputs = [], []
            strong = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
            self.strongly_typed = int(version.split(".")[0]) >= 11 or (strong is not None and bool(flags >> strong & 1))

        num_layers = property(lambda self: len(self.layers))
        num_inputs = property(lambda self: len(self.inputs))
        get_layer = lambda self, i: self.layers[i]   # noqa: E731
        get_input = lambda self, i: self.inputs[i]   # noqa: E731

    class OnnxParser:
        def __init__(self, network, logger):
            self.network = network

        def parse_from_file(self, path):
            model = onnx.load(path)
            rec.calls.append(("parse", {t.name: t.data_type for t in model.graph.initializer}))
            self.network.inputs = [Tensor(i.name) for i in model.graph.input]
            self.network.layers = [Layer(n, self.network) for n in model.graph.node]
            # The ONNX parser maps a custom-domain node to the registered plugin of the same name.
            self.missing = [n.op_type for n in model.graph.node
                            if n.domain not in ("", "ai.onnx") and n.op_type not in trt.plugins_registered]
            return parse_ok and not self.missing

        num_errors = property(lambda self: 0 if parse_ok and not self.missing else 1)
        get_error = lambda self, i: (f"Plugin not found: {self.missing[0]}" if self.missing   # noqa: E731
                                     else "In node 0 (/a/Conv): UNSUPPORTED_NODE")

    class TimingCache:
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return self.data + b"+timings"

    class Config:
        def __init__(self):
            self.cache = None

        def set_memory_pool_limit(self, pool, size):
            rec.calls.append(("workspace", size))

        def set_flag(self, flag):
            rec.calls.append(("flag", flag))

        def create_timing_cache(self, data):
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            rec.calls.append(("timing_cache", cache.data, ignore_mismatch))
            self.cache = cache
            return cache_matches or cache.data == b""

        def get_timing_cache(self):
            return self.cache

        def add_optimization_profile(self, profile):
            rec.calls.append(("profile", profile.shapes))

    class Profile:
        def set_shape(self, name, lo, opt, hi):
            self.shapes = (name, lo, opt, hi)

    class Builder:
        def __init__(self, logger):
            rec.calls.append(("builder",))

        create_network = lambda self, flags=0: Network(flags)   # noqa: E731
        create_builder_config = lambda self: Config()            # noqa: E731
        create_optimization_profile = lambda self: Profile()     # noqa: E731

        def build_serialized_network(self, network, config):
            rec.calls.append(("build", [(layer.name, layer.precision) for layer in network.layers]))
            return b"PLAN" if build_ok else None

    trt.Builder, trt.OnnxParser = Builder, OnnxParser
    return trt


@pytest.fixture
def fake(monkeypatch):
    def install(version: str, **kw) -> Recorder:
        rec = Recorder()
        trt = make_fake_tensorrt(version, rec, **kw)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)

        def capability(device=0):
            rec.calls.append(("capability", device))
            return "8.7", "Orin"

        def register_plugins(aot=True):
            # kernels.trt_plugins.register_plugins, as far as the parser sees it: names in the registry.
            rec.calls.append(("register_plugins", aot))
            trt.plugins_registered.update(PLUGINS)
            return [f"deblur::{name}" for name in PLUGINS]

        monkeypatch.setattr(T, "gpu_compute_capability", capability)
        monkeypatch.setattr(T, "use_device", lambda device: (rec.calls.append(("use_device", device)),
                                                             contextlib.nullcontext())[1])
        monkeypatch.setattr(trt_plugins, "register_plugins", register_plugins)
        return rec
    return install


def calls(rec: Recorder, kind: str) -> list[tuple]:
    return [c[1:] for c in rec.calls if c[0] == kind]


def test_a_tensorrt_10_fp16_build_pins_layers_sets_the_profile_and_writes_engine_manifest_and_timing_cache(tmp_path, fake):
    rec = fake("10.3.0.30")
    onnx_path = conv_onnx(tmp_path / "m.onnx")
    timing = tmp_path / "timing.cache"
    timing.write_bytes(b"old")
    options = BuildOptions(precision="fp16", profile=parse_shapes("1x3x64x64:1x3x720x1280:2x3x1088x1920"),
                           workspace_bytes=parse_size("256M"), timing_cache=timing)
    result = build_engine(onnx_path, tmp_path / "m.engine", options)

    # Expected calls derived from the inputs: the ONNX's nodes and pinned layers, the options, the cache file.
    pinned = Manifest.read_onnx(onnx_path).fp32_layers
    nodes = [n.name for n in onnx.load(str(onnx_path)).graph.node]
    # TensorRT 10 networks are always explicit-batch: its NetworkDefinitionCreationFlag.EXPLICIT_BATCH is deprecated.
    assert calls(rec, "create_network") == [(0,)]
    assert calls(rec, "flag") == [("FP16",), ("OBEY",)]        # half precision, and obey the fp32 pins
    assert calls(rec, "workspace") == [(256 * 2**20,)]          # "256M"
    channels = Manifest.read_onnx(onnx_path).in_channels       # NxCxHxW: the profile's (N, H, W) with C put in
    dims = [(p[0], channels, *p[1:]) for p in (options.profile.min, options.profile.opt, options.profile.max)]
    assert calls(rec, "profile") == [(("input", *dims),)]
    assert calls(rec, "build") == [([(n, "float32" if n in pinned else None) for n in nodes],)]
    assert calls(rec, "set_output_type") == [(n, 0, "float32") for n in pinned] and pinned == ("/a/Conv",)
    assert calls(rec, "timing_cache") == [(b"old", False)]       # the bytes written to timing.cache above
    assert timing.read_bytes() == b"old+timings"                        # reused, then written back
    assert read_engine(tmp_path / "m.engine") == (result.manifest, b"PLAN")    # manifest header, then the plan

    manifest = Manifest.read_sidecar(tmp_path / "m.engine")
    assert manifest == result.manifest
    assert (manifest.precision, manifest.fp32_layers, manifest.shape_profile) == ("fp16", ("/a/Conv",), options.profile)
    assert manifest.toolchain == {"opset": "17", "tensorrt": "10.3.0", "compute_capability": "8.7", "gpu": "Orin"}
    assert manifest.onnx_sha256 == T.file_sha256(onnx_path)
    assert result.pinned_layers == ["/a/Conv"] and result.unmatched_fp32_layers == []
    assert "TensorRT compatibility (10.3): OK" in result.op_check


def test_tensorrt_8_6_needs_explicit_batch_and_unknown_pins_are_reported(tmp_path, fake):
    rec = fake("8.6.1.6")
    onnx_path = conv_onnx(tmp_path / "m.onnx")
    result = build_engine(onnx_path, tmp_path / "m.engine",
                          BuildOptions(precision="fp16", fp32_layers=("/b/Conv", "/gone/Conv"),
                                       profile=parse_shapes("1x3x64x64:1x3x64x64:1x3x128x128")))
    assert calls(rec, "create_network") == [(1 << 0,)]
    assert result.pinned_layers == ["/b/Conv"] and result.unmatched_fp32_layers == ["/gone/Conv"]
    assert "1 fp32 layer name(s) not found" in result.format()


def test_tensorrt_11_builds_strongly_typed_from_a_float16_onnx_with_float32_islands(tmp_path, fake):
    rec = fake("11.1.0.5")
    onnx_path = conv_onnx(tmp_path / "m.onnx")
    result = build_engine(onnx_path, tmp_path / "m.engine",
                          BuildOptions(precision="fp16", profile=parse_shapes("1x3x64x64:1x3x64x64:1x3x128x128")))
    assert calls(rec, "flag") == []                                     # BuilderFlag.FP16 no longer exists
    (parsed,) = calls(rec, "parse")
    assert parsed[0] == {"wa": TensorProto.FLOAT, "wb": TensorProto.FLOAT16}   # /a/Conv pinned: its weight stays fp32
    assert result.manifest.precision == "fp16" and result.pinned_layers == ["/a/Conv"]


def test_tensorrt_10_12_builds_a_strongly_typed_network_from_a_float16_onnx(tmp_path, fake):
    rec = fake("10.12.0.36")
    result = build_engine(conv_onnx(tmp_path / "m.onnx"), tmp_path / "m.engine",
                          BuildOptions(precision="fp16", profile=parse_shapes("1x3x64x64:1x3x64x64:1x3x128x128")))
    assert calls(rec, "create_network") == [(1 << 1,)]                  # STRONGLY_TYPED, NvInfer.h's value 1 on 10.x
    assert calls(rec, "flag") == [] and calls(rec, "set_output_type") == []   # no deprecated weak-typing calls
    (parsed,) = calls(rec, "parse")
    assert parsed[0] == {"wa": TensorProto.FLOAT, "wb": TensorProto.FLOAT16}
    assert result.pinned_layers == ["/a/Conv"] and result.manifest.precision == "fp16"


def test_the_engine_is_built_on_the_device_asked_for(tmp_path, fake):
    rec = fake("10.3.0")
    build_engine(conv_onnx(tmp_path / "m.onnx"), tmp_path / "m.engine",
                 BuildOptions(profile=parse_shapes("1x3x64x64:1x3x64x64:1x3x128x128")), device=1)
    order = [c for c in rec.calls if c[0] in ("capability", "use_device", "builder")]
    # TensorRT builds on the current CUDA device: select GPU 1 before the builder exists.
    assert order == [("capability", 1), ("use_device", 1), ("builder",)]


def test_use_device_makes_the_device_current_through_the_sdk_cuda_layer(monkeypatch):
    import sdk.backends.cuda_runtime as cuda_runtime

    events = []

    class FakeCuda:
        @contextlib.contextmanager
        def activate(self, index):
            if index >= 2:
                raise RuntimeError(f"cudaSetDevice({index}) failed: cudaErrorInvalidDevice")
            events.append(("enter", index))
            yield
            events.append(("exit", index))

    monkeypatch.setattr(cuda_runtime, "load_cuda_api", FakeCuda)
    with T.use_device(1):
        events.append(("build",))
    assert events == [("enter", 1), ("build",), ("exit", 1)]
    with pytest.raises(RuntimeError, match="cudaSetDevice\\(5\\)"):
        with T.use_device(5):
            pass


def fused_onnx(path: Path, aot: int | None) -> Path:
    """input -> deblur::pixel_attention (a plugin node, as kernels.onnx_ops writes it) -> output."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((3, 3, 1, 1)).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(3, np.float32), "b")]
    attrs = {"plugin_namespace": "deblur", **({} if aot is None else {"aot": aot})}
    nodes = [helper.make_node("pixel_attention", ["input", "w", "b"], ["output"], name="/pa", domain="deblur", **attrs)]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits), ir_version=8,
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("deblur", 1)])
    helper.set_model_props(model, Manifest(architecture="toy", variant="fused", value_range=(-1.0, 1.0),
                                           pad_multiple=2).onnx_metadata())
    onnx.save(model, str(path))
    return path


def test_a_fused_onnx_registers_the_plugins_before_parsing_and_passes_the_op_check(tmp_path, fake):
    rec = fake("10.9.0")
    small = BuildOptions(profile=parse_shapes("1x3x64x64:1x3x64x64:1x3x128x128"))
    result = build_engine(fused_onnx(tmp_path / "f.onnx", aot=1), tmp_path / "f.engine", small)
    kinds = [c[0] for c in rec.calls]
    assert rec.calls[kinds.index("register_plugins")] == ("register_plugins", True)   # aot=1 nodes: AOT kernels
    assert kinds.index("register_plugins") < kinds.index("parse")
    assert "TensorRT compatibility (10.16): OK" in result.op_check
    assert (result.manifest.plugins, result.manifest.plugin_flavour) == (("deblur::pixel_attention",), "python")
    assert "trt_plugins" not in result.manifest.toolchain        # one record of the plugins: the fields above
    # JIT nodes need no AOT support: TensorRT 10.6 registers the JIT implementations only.
    rec = fake("10.6.0")
    build_engine(fused_onnx(tmp_path / "j.onnx", aot=0), tmp_path / "j.engine", small)
    assert calls(rec, "register_plugins") == [(False,)]


def test_a_fused_onnx_on_a_tensorrt_without_its_plugins_fails_before_the_build_saying_what_to_do(tmp_path, fake):
    small = BuildOptions(profile=parse_shapes("1x3x64x64:1x3x64x64:1x3x128x128"))
    rec = fake("10.3.0")                          # JetPack 6: no tensorrt.plugin
    with pytest.raises(EngineBuildError, match=r"(?s)TensorRT 10.3.0.*needs TensorRT >= 10.6.*without --fused"):
        build_engine(fused_onnx(tmp_path / "f.onnx", aot=1), tmp_path / "f.engine", small, plugins="python")
    # There the C++ plugins are the default; they have no ahead-of-time kernels, so aot=1 nodes are refused.
    with pytest.raises(EngineBuildError, match="aot=1 but this plugin has no ahead-of-time implementation"):
        build_engine(fused_onnx(tmp_path / "f.onnx", aot=1), tmp_path / "f.engine", small)
    rec = fake("10.8.0")                          # plugins, but no ahead-of-time ones yet
    with pytest.raises(EngineBuildError, match="need TensorRT >= 10.9.*--fused --jit"):
        build_engine(fused_onnx(tmp_path / "f.onnx", aot=1), tmp_path / "f.engine", small)
    assert calls(rec, "builder") == [] and calls(rec, "register_plugins") == []


def test_the_fake_parser_like_tensorrt_rejects_a_plugin_node_nobody_registered(tmp_path, fake):
    # Guards the fake itself: without the registration the build above could not pass.
    fake("10.9.0")
    trt = sys.modules["tensorrt"]
    parser = trt.OnnxParser(trt.Builder(None).create_network(0), None)
    assert not parser.parse_from_file(str(fused_onnx(tmp_path / "f.onnx", aot=1)))
    assert parser.get_error(0) == "Plugin not found: pixel_attention"


def test_float16_conversion_keeps_pinned_nodes_in_float32_and_runs(tmp_path):
    import onnxruntime as ort

    onnx_path = conv_onnx(tmp_path / "m.onnx")
    out = to_float16_onnx(onnx_path, tmp_path / "m16.onnx", keep_fp32=("/a/Conv",))
    model = onnx.load(str(out))
    assert {i.name: i.type.tensor_type.elem_type for i in model.graph.input} == {"input": TensorProto.FLOAT}
    assert any(n.op_type == "Cast" for n in model.graph.node)
    x = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    (ref,) = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    (half,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    assert half.dtype == np.float32 and float(np.abs(half - ref).max()) < 5e-3
    with pytest.raises(EngineBuildError, match=r"fp32 layers not in .*: \['/nope'\]"):
        to_float16_onnx(onnx_path, tmp_path / "x.onnx", keep_fp32=("/nope",))


def test_parse_and_build_failures_and_bad_graphs_say_what_to_do(tmp_path, fake):
    onnx_path = conv_onnx(tmp_path / "m.onnx")
    small = BuildOptions(profile=parse_shapes("1x3x64x64:1x3x64x64:1x3x128x128"))
    fake("10.3.0", parse_ok=False)
    with pytest.raises(EngineBuildError, match=r"could not parse .*m.onnx:\n  In node 0 \(/a/Conv\): UNSUPPORTED_NODE"):
        build_engine(onnx_path, tmp_path / "m.engine", small)
    fake("10.3.0", build_ok=False)
    with pytest.raises(EngineBuildError, match="could not build .*A smaller max shape or a larger --workspace"):
        build_engine(onnx_path, tmp_path / "m.engine", small)
    assert not (tmp_path / "m.engine").exists()
    bad = onnx.load(str(onnx_path))
    bad.graph.node[1].op_type = "DFT"
    onnx.save(bad, str(tmp_path / "dft.onnx"))
    with pytest.raises(EngineBuildError, match="(?s)cannot be parsed by TensorRT 10.3.0:.*node '/a/Relu' \\(DFT\\)"):
        build_engine(tmp_path / "dft.onnx", tmp_path / "m.engine", small)
    with pytest.raises(FileNotFoundError, match="ONNX file not found"):
        build_engine(tmp_path / "absent.onnx", tmp_path / "m.engine", small)


def test_ensure_engine_builds_once_then_reuses_with_a_shared_timing_cache(tmp_path, fake):
    rec = fake("10.3.0.30")
    onnx_path = conv_onnx(tmp_path / "m.onnx")
    options = BuildOptions(profile=parse_shapes("1x3x64x64:1x3x64x64:1x3x128x128"))
    first = ensure_engine(onnx_path, tmp_path / "cache", options)
    second = ensure_engine(onnx_path, tmp_path / "cache", options)
    assert first == second and len(calls(rec, "build")) == 1
    assert first.name.startswith(T.file_sha256(onnx_path)[:12] + "-trt10.3.0-sm87-fp16-")
    assert (tmp_path / "cache" / "timing-trt10.3.0-sm87.cache").read_bytes() == b"+timings"
    ensure_engine(onnx_path, tmp_path / "cache", BuildOptions(precision="fp32", profile=options.profile))
    assert len(calls(rec, "build")) == 2                                # another precision is another engine


# --------------------------------------------------------------------------- typing against the real stubs
def test_the_builder_type_checks_against_the_tensorrt_stubs(tmp_path):
    """tensorrt-stubs installs ``tensorrt/`` without ``py.typed`` (so plain mypy treats it as Any) and has
    parameters named ``in``; a patched copy lets mypy check every TensorRT call here against its signature."""
    stubs = [Path(p) / "tensorrt_bindings" / "tensorrt.pyi" for p in sys.path]
    stub = next((s for s in stubs if s.is_file()), None)
    if stub is None or not _has_module("mypy"):
        pytest.skip("tensorrt-stubs or mypy not installed")
    target = tmp_path / "stubs"
    shutil.copytree(stub.parent.parent / "tensorrt", target / "tensorrt")
    shutil.copytree(stub.parent, target / "tensorrt_bindings")
    text = (target / "tensorrt_bindings" / "tensorrt.pyi").read_text()
    text = re.sub(r"\bin: list", "in_: list", text)
    text = re.sub(r"(, channel_axis: int)\)", r"\1 = ...)", text)
    (target / "tensorrt_bindings" / "tensorrt.pyi").write_text(text)
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\npython_version = 3.10\nignore_missing_imports = True\nfollow_imports = silent\n"
                      f"mypy_path = {target}\n[mypy-sdk.*,torch.*,numpy.*,onnx.*,onnxconverter_common.*,cuda.*]\n"
                      "follow_imports = skip\n")
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config), "--cache-dir",
                          str(tmp_path / "cache"), "export/tensorrt.py"], cwd=REPO, capture_output=True, text=True)
    if "errors prevented further checking" in run.stdout:
        pytest.skip(f"this tensorrt-stubs version does not parse after patching: {run.stdout[-300:]}")
    ours = [line for line in run.stdout.splitlines() if line.startswith("export/")]
    assert ours == []
    assert "tensorrt_bindings" in run.stdout       # the stubs were really analysed (their own errors are listed)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# --------------------------------------------------------------------------- real TensorRT
@pytest.mark.trt
@pytest.mark.gpu
def test_a_real_engine_builds_and_matches_onnx_runtime(tmp_path):
    import onnxruntime as ort
    import tensorrt as trt
    import torch

    onnx_path = conv_onnx(tmp_path / "m.onnx")
    result = build_engine(onnx_path, tmp_path / "m.engine",
                          BuildOptions(precision="fp16", profile=parse_shapes("1x3x16x16:1x3x32x32:2x3x64x64"),
                                       timing_cache=tmp_path / "timing.cache"))
    assert result.pinned_layers == ["/a/Conv"] and (tmp_path / "timing.cache").stat().st_size > 0
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(read_engine(result.engine_path)[1])
    context = engine.create_execution_context()
    x = torch.rand(1, 3, 32, 48, device="cuda")
    y = torch.empty_like(x)
    context.set_input_shape("input", tuple(x.shape))
    context.set_tensor_address("input", x.data_ptr())
    context.set_tensor_address("output", y.data_ptr())
    stream = torch.cuda.Stream()
    assert context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    (ref,) = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": x.cpu().numpy()})
    assert float(np.abs(y.cpu().numpy() - ref).max()) < 1e-2
