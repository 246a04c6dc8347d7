"""TensorRT plugins for the fused ops, through ``tensorrt.plugin`` ("quickly deployable plugins").

Optional, and **not executed by our CI** (no GPU, no TensorRT there): the code follows NVIDIA's
``samples/python/quickly_deployable_plugins`` API and is type-checked; ``tests/kernels/test_trt_plugins.py``
builds real engines only on a machine with TensorRT and a GPU (``@pytest.mark.trt``).

What it provides, once :func:`register_plugins` has run in the process that builds (and, for JIT
plugins, runs) the engine:

=========================  ======  ===================================================================
plugin (namespace deblur)  AOT     kernel
=========================  ======  ===================================================================
pixel_attention            yes     ``_pixel_attention_kernel`` (C <= 128) / ``..._tiled_kernel``
pixel_attention_map        yes     same, also writing the sigmoid map (second output)
self_attention             yes     ``_attention_fwd_kernel`` (scale baked in at build time)
attention_fusion           no      two kernels (fuse 1x1, then depthwise/pointwise/gate); an AOT plugin
                                   carries exactly one kernel, so this one is JIT (Python at run time)
=========================  ======  ===================================================================

Use: ``deblur export MODEL --to engine --fused`` (or :func:`export.fused.export_fused_onnx`, then
:func:`export.tensorrt.build_engine`, which calls :func:`register_plugins` before parsing); TensorRT's ONNX
parser maps each ``deblur`` node to the plugin of the same name. Nodes whose plugin has an AOT kernel carry
``aot=1`` (or ``aot=0`` for ``--jit``); attention_fusion carries no ``aot`` attribute, since an ``aot=1`` on a
plugin without ``aot_impl`` makes TensorRT refuse the node. Inputs and outputs are LINEAR (NCHW / (B, C, N))
FP16 or FP32. The AOT PTX is written in the ISA :func:`ptx_version` pins (8.0), which every driver a
TensorRT 10.x for CUDA 12 runs on loads (and JetPack 6's CUDA 12.2/12.6 drivers, should a TensorRT >= 10.9
ever run there).

Versions: ``tensorrt.plugin`` needs TensorRT >= 10.6; ahead-of-time plugins (the Triton PTX is
embedded in the engine, so ``trtexec`` or C++ can run it without Python) need >= 10.9. Triton >= 3.3
appends two scratch-pointer parameters to every kernel; NVIDIA's sample (pinned to triton 3.5) relies
on TensorRT handling them, which we have not verified ourselves.

**Jetson (JetPack 6 ships TensorRT 10.3): none of this is available.** Jetson users export the
default ONNX (standard Conv/Sigmoid/Mul/MatMul/Softmax ops; just don't use ``fused_op_export``) and
TensorRT fuses those itself: conv + pointwise chains become one kernel (``PWN(...)`` layers) and
attention subgraphs go to its Myelin compiler. In PyTorch on Jetson, the Triton kernels run wherever
triton itself runs (PyPI has aarch64 wheels up to 3.8 for Python 3.10; untested on Tegra by us).
"""

# No ``from __future__ import annotations`` here: TensorRT's decorators inspect the annotation
# *objects* (``issubclass(param.annotation, TensorDesc)``), so they must not be strings.

import importlib.util
from dataclasses import dataclass
from typing import Any

NAMESPACE = "deblur"
JIT_MIN_VERSION = (10, 6)
AOT_MIN_VERSION = (10, 9)
PLUGINS = ("pixel_attention", "pixel_attention_map", "self_attention", "attention_fusion")
# The plugins with an ``aot_impl``; attention_fusion runs two kernels, so it has only the JIT one.
AOT_PLUGINS = frozenset({"pixel_attention", "pixel_attention_map", "self_attention"})

# PTX ISA of the AOT kernels, as ``ptx_version`` (major * 10 + minor). The driver JIT-compiles the
# embedded PTX and refuses an ISA newer than itself; Triton otherwise writes its bundled ptxas's ISA
# (9.x with triton 3.9). 8.0 is what a CUDA 12.0 driver takes, the oldest TensorRT 10.x for CUDA 12
# runs on, and below JetPack 6's drivers (CUDA 12.2 in 6.0: ISA 8.2; 12.6 in 6.1/6.2: ISA 8.5).
# Newer architectures need a newer ISA than that floor (sm_90a: 8.0, sm_100: 8.6, sm_120: 8.7).
PTX_ISA_FLOOR = 80
_PTX_ISA_MIN = {90: 80, 100: 86, 101: 86, 103: 88, 120: 87, 121: 88}


AOT_ATTENTION_WARPS = 8


def ptx_version(capability: int) -> int:
    """The PTX ISA the AOT kernels for ``sm_<capability>`` are written in: ``ptx_version(87) == 80``."""
    return max(PTX_ISA_FLOOR, _PTX_ISA_MIN.get(capability, 0))

_registered: list = []


def tensorrt_version() -> "tuple[int, int] | None":
    """(major, minor) of the importable TensorRT, or None (type stubs alone do not count)."""
    if importlib.util.find_spec("tensorrt") is None:
        return None
    import tensorrt

    version = getattr(tensorrt, "__version__", None)
    if not isinstance(version, str):
        return None
    major, minor = (int(part) for part in version.split(".")[:2])
    return major, minor


def register_plugins(aot: bool = True) -> list:
    """Register the ``deblur::*`` plugins with TensorRT (once per process); returns their ids.

    ``aot``: also register the ahead-of-time implementations (TensorRT >= 10.9). Raises
    ``RuntimeError`` naming the alternative when TensorRT is missing or too old.
    """
    if _registered:
        return list(_registered)
    version = tensorrt_version()
    if version is None:
        raise RuntimeError("TensorRT is not installed: export the standard-op ONNX (no fused_op_export) and "
                           "let TensorRT fuse it, or install TensorRT >= 10.6 for the deblur plugins")
    if version < JIT_MIN_VERSION:
        raise RuntimeError(f"TensorRT {version[0]}.{version[1]} has no tensorrt.plugin (needs >= 10.6; JetPack 6 "
                           "ships 10.3): export the standard-op ONNX instead, which TensorRT fuses itself")
    _define_plugins(aot=aot and version >= AOT_MIN_VERSION)
    _registered.extend(f"{NAMESPACE}::{name}" for name in PLUGINS)
    return list(_registered)


def _type_string(trt: Any, dtype: Any) -> str:
    if dtype == trt.float16:
        return "fp16"
    if dtype == trt.float32:
        return "fp32"
    raise ValueError(f"deblur plugins take FP16 or FP32 tensors, got {dtype}")


def _constant(expr: Any, what: str) -> int:
    # Channel counts pick the kernel's block sizes, so they must be fixed when the engine is built.
    if expr.is_fake or not expr.is_constant:
        raise ValueError(f"{what} must be a build-time constant for the AOT kernel")
    return int(expr.constant_value())


@dataclass(frozen=True)
class AotKernel:
    """A Triton kernel specialised for an ahead-of-time plugin: LINEAR layout, dynamic shapes.

    ``runtime``: the parameters TensorRT passes at run time (name -> triton type); every other
    parameter is a constexpr baked into the PTX. TensorRT requires the runtime ones in the order
    input pointers, int scalars (the plugin's "extra args"), output pointers, which the kernels'
    signatures follow.
    """

    kernel: Any
    runtime: "dict[str, str]"
    constexprs: "dict[str, Any]"
    num_warps: int
    num_stages: int
    config: "dict[str, int]"

    @property
    def scalars(self) -> "list[str]":
        """The int parameters, in kernel order: what the plugin's SymIntExprs must supply."""
        from .triton_common import compilable

        return [n for n in compilable(self.kernel).arg_names if self.runtime.get(n, "*").startswith("i")]

    def source(self) -> Any:
        from triton.compiler import ASTSource

        from .triton_common import compilable

        fn = compilable(self.kernel)
        signature: dict = {}
        constants: dict = {}
        for index, name in enumerate(fn.arg_names):
            if name in self.runtime:
                signature[name] = self.runtime[name]
            elif name in self.constexprs:
                signature[name] = "constexpr"
                constants[(index,)] = self.constexprs[name]
            else:
                raise KeyError(f"{fn.__name__}: parameter {name!r} is neither runtime nor constexpr")
        return ASTSource(fn=fn, signature=signature, constexprs=constants)

    def compile(self, target: Any = None) -> Any:
        """PTX and metadata; ``target`` (a ``GPUTarget``) defaults to the GPU of this process.
        The PTX ISA is pinned by :func:`ptx_version`, so the driver that runs the engine can load it."""
        import triton

        from .triton_common import LAUNCH_OPTIONS, stdlib_flavour

        if target is None:
            target = triton.runtime.driver.active.get_current_target()
        options = {"num_warps": self.num_warps, "num_stages": self.num_stages, **LAUNCH_OPTIONS,
                   "ptx_version": ptx_version(int(target.arch))}
        with stdlib_flavour(False):
            return triton.compile(self.source(), target=target, options=options)


def _torch_dtype(type_string: str) -> Any:
    import torch

    return {"fp16": torch.float16, "fp32": torch.float32}[type_string]


def pixel_attention_aot(type_string: str, channels: int, write_map: bool) -> AotKernel:
    """The pixel-attention kernel for NCHW tensors; one program per pixel tile (the grid is not persistent)."""
    from . import triton_pixel_attention as pa
    from .triton_common import accumulator, dot_precision

    dtype = _torch_dtype(type_string)
    cfg = pa._config(channels, pixels=1 << 30)          # the pixel count is dynamic: full-size blocks
    ptr = f"*{type_string}"
    runtime = {"x_ptr": ptr, "w_ptr": ptr, "b_ptr": ptr, "n_pixels": "i32", "tiles_per_image": "i32",
               "stride_xb": "i32", "stride_xc": "i32", "stride_yb": "i32", "stride_yc": "i32", "y_ptr": ptr}
    constexprs: dict = {"channels": channels, "stride_xp": 1, "stride_yp": 1, "HAS_BIAS": True, "WRITE_OUT": True,
                        "WRITE_MAP": write_map, "DOT_PRECISION": dot_precision(dtype), "ACC": accumulator(dtype)}
    if write_map:
        runtime["map_ptr"] = ptr
    else:
        constexprs["map_ptr"] = None
    if channels <= pa.SINGLE_TILE_MAX_CHANNELS:
        runtime["total_tiles"] = "i32"
        return AotKernel(pa._pixel_attention_kernel, runtime,
                         {**constexprs, "BLOCK_P": cfg["BLOCK_P"], "BLOCK_C": cfg["BLOCK_C"]},
                         cfg["num_warps"], cfg["num_stages"], cfg)
    return AotKernel(pa._pixel_attention_tiled_kernel, runtime,
                     {**constexprs, "BLOCK_P": cfg["BLOCK_P"], "BLOCK_CO": cfg["BLOCK_CO"], "BLOCK_K": cfg["BLOCK_K"]},
                     cfg["num_warps"], cfg["num_stages"], cfg)


def self_attention_aot(type_string: str, qk_channels: int, v_channels: int, scale: float) -> AotKernel:
    """The flash-attention forward for contiguous (B, C, N) tensors, ``scale`` baked in."""
    from . import triton_self_attention as sa
    from .triton_common import accumulator, dot_precision

    dtype = _torch_dtype(type_string)
    cfg = sa._config(qk_channels, v_channels)
    ptr = f"*{type_string}"
    runtime = {"q_ptr": ptr, "k_ptr": ptr, "v_ptr": ptr, "n_queries": "i32", "n_keys": "i32",
               **{f"stride_{t}{k}": "i32" for t in "qkvo" for k in "bc"}, "out_ptr": ptr}
    constexprs = {"qk_channels": qk_channels, "v_channels": v_channels, "qk_scale": float(scale) * sa.LOG2E,
                  **{f"stride_{t}n": 1 for t in "qkvo"}, "lse_ptr": None, "WRITE_LSE": False,
                  "BLOCK_M": cfg["BLOCK_M"], "BLOCK_N": cfg["BLOCK_N"], "BLOCK_D": cfg["BLOCK_D"],
                  "BLOCK_DV": cfg["BLOCK_DV"], "DOT_PRECISION": dot_precision(dtype), "ACC": accumulator(dtype)}
    # The AOT kernel's strides are runtime values without Triton's 16-divisibility hints (the shapes are
    # dynamic), so its addressing costs registers: at the JIT path's 4 warps C=128 spills 120 B at sm_87
    # (255 registers); 8 warps share the tile and stay spill-free (201 at sm_87, 155 at sm_90).
    return AotKernel(sa._attention_fwd_kernel, runtime, constexprs, AOT_ATTENTION_WARPS, cfg["num_stages"], cfg)


def _define_plugins(aot: bool) -> None:
    import tensorrt as trt
    import tensorrt.plugin as trtp
    import torch

    from . import triton_attention_fusion as fusion
    from . import triton_pixel_attention as pa
    from . import triton_self_attention as sa
    from .triton_common import pixel_view

    formats = "LINEAR"
    if aot:
        # KernelLaunchParams/SymIntExprs exist only in TensorRT >= 10.9 with AOT support (tensorrt.plugin
        # defines KernelLaunchParams under IS_AOT_ENABLED); touching them on 10.6-10.8 raises AttributeError.
        KernelReturn = tuple[str | bytes, str | bytes, trtp.KernelLaunchParams, trtp.SymIntExprs]

    def on_stream(stream: int) -> Any:
        return torch.cuda.stream(torch.cuda.ExternalStream(stream))

    def as_torch(t: Any) -> torch.Tensor:
        return torch.as_tensor(t, device="cuda")

    # --- pixel attention (one or two outputs) ---------------------------------------------------------

    @trtp.register(f"{NAMESPACE}::pixel_attention")
    def _pa_desc(x: trtp.TensorDesc, weight: trtp.TensorDesc, bias: trtp.TensorDesc) -> trtp.TensorDesc:
        return x.like()

    @trtp.register(f"{NAMESPACE}::pixel_attention_map")
    def _pam_desc(x: trtp.TensorDesc, weight: trtp.TensorDesc,
                  bias: trtp.TensorDesc) -> tuple[trtp.TensorDesc, trtp.TensorDesc]:
        return x.like(), x.like()

    def define_pixel_attention(plugin_id: str, n_outputs: int) -> None:
        # ``outputs`` carries no annotation: its length differs between the two plugins.
        types = ", ".join(["FP16|FP32"] * (3 + n_outputs))

        @trtp.autotune(plugin_id)
        def _pa_tune(x: trtp.TensorDesc, weight: trtp.TensorDesc, bias: trtp.TensorDesc,
                     outputs) -> list[trtp.AutoTuneCombination]:
            return [trtp.AutoTuneCombination(types, formats)]

        @trtp.impl(plugin_id)
        def _pa_impl(x: trtp.Tensor, weight: trtp.Tensor, bias: trtp.Tensor,
                     outputs, stream: int) -> None:
            with on_stream(stream):
                out = as_torch(outputs[0])
                attn = as_torch(outputs[1]) if len(outputs) > 1 else None
                pa.launch_pixel_attention(as_torch(x), as_torch(weight), as_torch(bias), write_out=True,
                                          write_map=attn is not None, out=out, attn=attn)

        if aot:
            @trtp.aot_impl(plugin_id)
            def _pa_aot(x: trtp.TensorDesc, weight: trtp.TensorDesc, bias: trtp.TensorDesc,
                        outputs, tactic: int) -> KernelReturn:
                return _pixel_attention_aot(x, weight, outputs)

    if aot:
        def _pixel_attention_aot(x: Any, weight: Any, outputs: Any) -> Any:
            c = _constant(weight.shape_expr[0], "pixel_attention channel count")
            aot_kernel = pixel_attention_aot(_type_string(trt, x.dtype), c, write_map=len(outputs) > 1)
            cfg = aot_kernel.config
            batch, hw = x.shape_expr[0], x.shape_expr[2] * x.shape_expr[3]
            tiles = trtp.cdiv(hw, cfg["BLOCK_P"])
            values = {"n_pixels": hw, "tiles_per_image": tiles, "total_tiles": tiles * batch,
                      "stride_xb": hw * c, "stride_xc": hw, "stride_yb": hw * c, "stride_yc": hw}
            compiled = aot_kernel.compile()
            params = trtp.KernelLaunchParams()
            if "BLOCK_C" in aot_kernel.constexprs:
                # One program per tile: the persistent loop then runs exactly once.
                params.grid_x = tiles * batch
            else:
                params.grid_x = (c + cfg["BLOCK_CO"] - 1) // cfg["BLOCK_CO"]
                params.grid_y = tiles * batch
            params.block_x = compiled.metadata.num_warps * 32
            params.shared_mem = compiled.metadata.shared
            extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(values[name]) for name in aot_kernel.scalars])
            return compiled.metadata.name, compiled.asm["ptx"], params, extra

    define_pixel_attention(f"{NAMESPACE}::pixel_attention", 1)
    define_pixel_attention(f"{NAMESPACE}::pixel_attention_map", 2)

    # --- self attention --------------------------------------------------------------------------------

    @trtp.register(f"{NAMESPACE}::self_attention")
    def _sa_desc(q: trtp.TensorDesc, k: trtp.TensorDesc, v: trtp.TensorDesc, scale: float) -> trtp.TensorDesc:
        return trtp.from_shape_expr((q.shape_expr[0], v.shape_expr[1], q.shape_expr[2]), dtype=q.dtype)

    @trtp.autotune(f"{NAMESPACE}::self_attention")
    def _sa_tune(q: trtp.TensorDesc, k: trtp.TensorDesc, v: trtp.TensorDesc, scale: float,
                 outputs: tuple[trtp.TensorDesc]) -> list[trtp.AutoTuneCombination]:
        return [trtp.AutoTuneCombination("FP16|FP32, FP16|FP32, FP16|FP32, FP16|FP32", formats)]

    @trtp.impl(f"{NAMESPACE}::self_attention")
    def _sa_impl(q: trtp.Tensor, k: trtp.Tensor, v: trtp.Tensor, scale: float,
                 outputs: tuple[trtp.Tensor], stream: int) -> None:
        with on_stream(stream):
            sa.launch_attention_forward(as_torch(q), as_torch(k), as_torch(v), scale, write_lse=False,
                                        out=as_torch(outputs[0]))

    if aot:
        @trtp.aot_impl(f"{NAMESPACE}::self_attention")
        def _sa_aot(q: trtp.TensorDesc, k: trtp.TensorDesc, v: trtp.TensorDesc, scale: float,
                    outputs: tuple[trtp.TensorDesc], tactic: int) -> KernelReturn:
            d = _constant(q.shape_expr[1], "self_attention q/k channel count")
            dv = _constant(v.shape_expr[1], "self_attention v channel count")
            aot_kernel = self_attention_aot(_type_string(trt, q.dtype), d, dv, scale)
            batch, n, m = q.shape_expr[0], q.shape_expr[2], k.shape_expr[2]
            values = {"n_queries": n, "n_keys": m, "stride_qb": n * d, "stride_qc": n, "stride_kb": m * d,
                      "stride_kc": m, "stride_vb": m * dv, "stride_vc": m, "stride_ob": n * dv, "stride_oc": n}
            compiled = aot_kernel.compile()
            params = trtp.KernelLaunchParams()
            params.grid_x = trtp.cdiv(n, aot_kernel.config["BLOCK_M"])
            params.grid_y = batch
            params.block_x = compiled.metadata.num_warps * 32
            params.shared_mem = compiled.metadata.shared
            extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(values[name]) for name in aot_kernel.scalars])
            return compiled.metadata.name, compiled.asm["ptx"], params, extra

    # --- attention fusion (JIT only) -------------------------------------------------------------------

    @trtp.register(f"{NAMESPACE}::attention_fusion")
    def _af_desc(maps: trtp.TensorDesc, fuse_weight: trtp.TensorDesc, fuse_bias: trtp.TensorDesc,
                 dw_weight: trtp.TensorDesc, pw_weight: trtp.TensorDesc, features: trtp.TensorDesc) -> trtp.TensorDesc:
        return features.like()

    @trtp.autotune(f"{NAMESPACE}::attention_fusion")
    def _af_tune(maps: trtp.TensorDesc, fuse_weight: trtp.TensorDesc, fuse_bias: trtp.TensorDesc,
                 dw_weight: trtp.TensorDesc, pw_weight: trtp.TensorDesc, features: trtp.TensorDesc,
                 outputs: tuple[trtp.TensorDesc]) -> list[trtp.AutoTuneCombination]:
        return [trtp.AutoTuneCombination(", ".join(["FP16|FP32"] * 7), formats)]

    @trtp.impl(f"{NAMESPACE}::attention_fusion")
    def _af_impl(maps: trtp.Tensor, fuse_weight: trtp.Tensor, fuse_bias: trtp.Tensor, dw_weight: trtp.Tensor,
                 pw_weight: trtp.Tensor, features: trtp.Tensor, outputs: tuple[trtp.Tensor], stream: int) -> None:
        with on_stream(stream):
            feats = pixel_view(as_torch(features), "features")
            # The concatenated maps are one "map" of k*C channels: the same 1x1 GEMM, no copy.
            f, _ = fusion.launch_fuse_maps([as_torch(maps)], as_torch(fuse_weight), as_torch(fuse_bias), feats)
            fusion.launch_refine_gate(f, as_torch(dw_weight), as_torch(pw_weight), feats,
                                      out=as_torch(outputs[0]))
