"""TensorRT plugins: import-safe without TensorRT; real engines only where TensorRT and a GPU exist."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest
import torch
from kernel_testing import HAS_TRITON, assert_close

from kernels import trt_plugins


def test_register_without_tensorrt_says_what_to_do_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trt_plugins, "tensorrt_version", lambda: None)
    with pytest.raises(RuntimeError, match="standard-op ONNX"):
        trt_plugins.register_plugins()


def test_jetpack6_tensorrt_is_too_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trt_plugins, "tensorrt_version", lambda: (10, 3))
    with pytest.raises(RuntimeError, match=r"10\.3 has no tensorrt\.plugin"):
        trt_plugins.register_plugins()


DECORATORS = ("register", "impl", "autotune", "aot_impl")


def _fake_tensorrt(monkeypatch: pytest.MonkeyPatch, version: str) -> dict[str, list[str]]:
    """``tensorrt`` and ``tensorrt.plugin`` with exactly the names TensorRT ``version``'s sources define
    (export/data/trt_api); the decorators record which plugin ids got which implementation."""
    from export import trt_api

    table = trt_api.load(version)
    aot_enabled = "QuickPluginCreationRequest" in table["module"]
    seen: dict[str, list[str]] = {name: [] for name in DECORATORS}
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)       # what find_spec reports for an import
    trt.__version__ = f"{version}.0"
    trt.float16, trt.float32 = "float16", "float32"
    plugin = types.ModuleType("tensorrt.plugin")
    for name, kind in table["plugin"].items():
        if kind == "aot" and not aot_enabled:
            continue                        # tensorrt.plugin defines these under IS_AOT_ENABLED only
        if name in DECORATORS:
            def decorator(plugin_id: str, _kind: str = name) -> Callable[[Any], Any]:
                seen[_kind].append(plugin_id)
                return lambda fn: fn
            setattr(plugin, name, decorator)
        else:
            setattr(plugin, name, type(name, (), {}))
    trt.plugin = plugin
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "tensorrt.plugin", plugin)
    monkeypatch.setattr(trt_plugins, "_registered", [])
    return seen


@pytest.mark.parametrize("version", ["10.6", "10.8"])
def test_tensorrt_10_6_to_10_8_registers_the_jit_plugins(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    # tensorrt.plugin there has no KernelLaunchParams/SymIntExprs/aot_impl: touching them raised AttributeError.
    seen = _fake_tensorrt(monkeypatch, version)
    ids = trt_plugins.register_plugins(aot=True)
    assert ids == [f"deblur::{name}" for name in trt_plugins.PLUGINS]
    assert sorted(seen["impl"]) == sorted(ids) and sorted(seen["register"]) == sorted(ids)
    assert seen["aot_impl"] == []


def test_tensorrt_10_9_adds_aot_implementations_except_for_attention_fusion(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _fake_tensorrt(monkeypatch, "10.9")
    trt_plugins.register_plugins(aot=True)
    assert sorted(seen["aot_impl"]) == sorted(f"deblur::{n}" for n in trt_plugins.AOT_PLUGINS)
    assert "deblur::attention_fusion" not in seen["aot_impl"] and "deblur::attention_fusion" in seen["impl"]


def test_the_aot_ptx_is_pinned_below_what_the_target_drivers_load() -> None:
    assert trt_plugins.ptx_version(87) == 80 and trt_plugins.ptx_version(90) == 80     # CUDA 12.0 driver's ISA
    assert trt_plugins.ptx_version(100) == 86          # sm_100 needs ISA 8.6, above the floor
    assert trt_plugins.ptx_version(87) <= 85           # JetPack 6.1/6.2: CUDA 12.6 driver, ISA 8.5


def _ptx_parameter_kinds(ptx: str) -> list[str]:
    """'ptr' or 'int' for each parameter of the PTX entry point, in order."""
    entry = ptx[ptx.index(".entry"):ptx.index(")", ptx.index(".entry"))]
    return ["ptr" if ".ptr" in line else "int" for line in entry.splitlines() if ".param" in line]


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
@pytest.mark.parametrize(("build", "inputs", "outputs"), [
    (lambda: trt_plugins.pixel_attention_aot("fp16", 128, write_map=False), 3, 1),
    (lambda: trt_plugins.self_attention_aot("fp16", 128, 128, scale=1.0), 3, 1),
])
def test_aot_kernels_take_inputs_then_scalars_then_outputs(build: Callable[[], Any], inputs: int,
                                                          outputs: int) -> None:
    # What TensorRT's AOT plugins require of the PTX: input pointers, the int "extra args" in the order
    # the plugin supplies them, output pointers (then triton's own two scratch pointers).
    from triton.backends.compiler import GPUTarget

    aot_kernel = build()
    ptx = aot_kernel.compile(GPUTarget("cuda", 90, 32)).asm["ptx"]
    expected = ["ptr"] * inputs + ["int"] * len(aot_kernel.scalars) + ["ptr"] * outputs + ["ptr", "ptr"]
    assert _ptx_parameter_kinds(ptx) == expected


def _engine_outputs(build_inputs: list[tuple[str, torch.Tensor, bool]], plugin_call: Callable[..., Any],
                    outputs: int, aot: bool) -> list[torch.Tensor]:
    """Build a one-plugin network (weights as constants), run it on CUDA tensors, return the outputs."""
    import numpy as np
    import tensorrt as trt
    import tensorrt.plugin as trtp

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.PREFER_AOT_PYTHON_PLUGINS if aot
                      else trt.NetworkDefinitionCreationFlag.PREFER_JIT_PYTHON_PLUGINS)
    network = builder.create_network(flags)
    tensors, feeds = [], {}
    for name, value, constant in build_inputs:
        if constant:
            layer = network.add_constant(tuple(value.shape), trt.Weights(np.ascontiguousarray(value.cpu().numpy())))
            tensors.append(layer.get_output(0))
        else:
            tensors.append(network.add_input(name, trt.float32, tuple(value.shape)))
            feeds[name] = value
    layer = network.add_plugin(plugin_call(trtp, *tensors), aot=aot)
    for i in range(outputs):
        out = layer.get_output(i)
        out.name = f"out{i}"
        network.mark_output(out)
    engine = trt.Runtime(logger).deserialize_cuda_engine(
        builder.build_serialized_network(network, builder.create_builder_config()))
    context = engine.create_execution_context()
    results = []
    for name, value in feeds.items():
        context.set_tensor_address(name, value.data_ptr())
    for i in range(outputs):
        buffer = torch.empty(tuple(context.get_tensor_shape(f"out{i}")), device="cuda")
        context.set_tensor_address(f"out{i}", buffer.data_ptr())
        results.append(buffer)
    stream = torch.cuda.current_stream()
    assert context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    return results


@pytest.mark.trt
@pytest.mark.parametrize("aot", [False, True])
def test_pixel_attention_plugin_matches_reference(aot: bool) -> None:
    from kernels import pixel_attention_reference

    trt_plugins.register_plugins(aot=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 32, 19, 23, generator=g).cuda()
    w, b = (torch.randn(32, 32, 1, 1, generator=g) / 6).cuda(), torch.randn(32, generator=g).cuda()
    out, attn = _engine_outputs([("x", x, False), ("w", w, True), ("b", b, True)],
                                lambda trtp, *t: trtp.op.deblur.pixel_attention_map(*t), 2, aot)
    ref_out, ref_attn = pixel_attention_reference(x.double(), w.double(), b.double(), return_map=True)
    assert_close(out, ref_out, torch.float32, "y")
    assert_close(attn, ref_attn, torch.float32, "map")


@pytest.mark.trt
@pytest.mark.parametrize("aot", [False, True])
def test_self_attention_plugin_matches_reference(aot: bool) -> None:
    from kernels import self_attention_reference

    trt_plugins.register_plugins(aot=True)
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 64, 300, generator=g).cuda() for _ in range(3))
    (out,) = _engine_outputs([("q", q, False), ("k", k, False), ("v", v, False)],
                             lambda trtp, *t: trtp.op.deblur.self_attention(*t, scale=0.125), 1, aot)
    assert_close(out, self_attention_reference(q.double(), k.double(), v.double(), 0.125), torch.float32)
