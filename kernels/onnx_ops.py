"""Opt-in export of the fused ops as custom ONNX nodes (domain ``deblur``) for TensorRT plugins.

By default nothing here is used: exported ONNX keeps standard ops (Conv, Sigmoid, Mul, MatMul,
Softmax), which every runtime runs and TensorRT fuses itself. Inside :func:`fused_op_export` the
public ops instead record ``torch.ops.deblur.*`` custom ops, and the returned translation table
turns each into one node of domain ``deblur`` whose ``op_type`` is the TensorRT plugin name and
which carries ``plugin_namespace="deblur"`` (how TensorRT's ONNX parser finds a plugin; see
:mod:`kernels.trt_plugins`). Such a model runs only where those plugins are registered: ONNX
Runtime rejects it.

=======================  ==========================================  =================
node (domain deblur)     inputs                                      outputs
=======================  ==========================================  =================
pixel_attention          x, weight, bias                             y
pixel_attention_map      x, weight, bias                             y, map
attention_fusion         maps (concatenated), fuse_weight,           out
                         fuse_bias, dw_weight, pw_weight, features
self_attention           q, k, v  (attribute ``scale``)              out
=======================  ==========================================  =================

A plugin has a fixed number of inputs, so the fusion node takes the maps as one tensor: the graph
concatenates them (a standard Concat) in front of it. A missing bias is exported as zeros.

Example::

    >>> from kernels.onnx_ops import fused_op_export
    >>> with fused_op_export() as table:                          # doctest: +SKIP
    ...     torch.onnx.export(model, (x,), "model.onnx", dynamo=True, custom_translation_table=table)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from .attention_fusion import attention_fusion_reference
from .dispatch import custom_op_export
from .pixel_attention import pixel_attention_reference
from .self_attention import self_attention_reference
from .trt_plugins import AOT_PLUGINS

DOMAIN = "deblur"
DOMAIN_VERSION = 1
FLOAT_TYPES = ["tensor(float)", "tensor(float16)", "tensor(bfloat16)"]

# op_type -> (input names, output names, extra float attributes)
NODES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "pixel_attention": (("x", "weight", "bias"), ("y",), ()),
    "pixel_attention_map": (("x", "weight", "bias"), ("y", "map"), ()),
    "attention_fusion": (("maps", "fuse_weight", "fuse_bias", "dw_weight", "pw_weight", "features"), ("out",), ()),
    "self_attention": (("q", "k", "v"), ("out",), ("scale",)),
}


# --- PyTorch side: custom ops that torch.export records as single graph nodes ------------------------

@torch.library.custom_op("deblur::pixel_attention", mutates_args=())
def _pixel_attention_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    out = pixel_attention_reference(x, weight, bias)
    assert isinstance(out, torch.Tensor)
    return out


@_pixel_attention_op.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("deblur::pixel_attention_map", mutates_args=())
def _pixel_attention_map_op(x: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out, attn = pixel_attention_reference(x, weight, bias, return_map=True)
    return out, attn


@_pixel_attention_map_op.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.empty_like(x), torch.empty_like(x)


@torch.library.custom_op("deblur::attention_fusion", mutates_args=())
def _attention_fusion_op(maps: list[torch.Tensor], fuse_weight: torch.Tensor, fuse_bias: torch.Tensor,
                         dw_weight: torch.Tensor, pw_weight: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    return attention_fusion_reference(maps, fuse_weight, fuse_bias, dw_weight, pw_weight, features)


@_attention_fusion_op.register_fake
def _(maps: list[torch.Tensor], fuse_weight: torch.Tensor, fuse_bias: torch.Tensor, dw_weight: torch.Tensor,
      pw_weight: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(features)


@torch.library.custom_op("deblur::self_attention", mutates_args=())
def _self_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    return self_attention_reference(q, k, v, scale)


@_self_attention_op.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    return q.new_empty((q.shape[0], v.shape[1], q.shape[2]))


def _bias_or_zeros(bias: torch.Tensor | None, weight: torch.Tensor) -> torch.Tensor:
    return bias if bias is not None else weight.new_zeros(weight.shape[0])


def pixel_attention_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       return_map: bool) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """What :func:`kernels.pixel_attention` records inside :func:`fused_op_export`."""
    bias = _bias_or_zeros(bias, weight)
    if return_map:
        out, attn = torch.ops.deblur.pixel_attention_map(x, weight, bias)
        return out, attn
    return torch.ops.deblur.pixel_attention(x, weight, bias)


def attention_fusion_op(maps: Sequence[torch.Tensor], fuse_weight: torch.Tensor, fuse_bias: torch.Tensor | None,
                        dw_weight: torch.Tensor, pw_weight: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """What :func:`kernels.attention_fusion` records inside :func:`fused_op_export`."""
    return torch.ops.deblur.attention_fusion(list(maps), fuse_weight, _bias_or_zeros(fuse_bias, fuse_weight),
                                             dw_weight, pw_weight, features)


def self_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """What :func:`kernels.self_attention` records inside :func:`fused_op_export`."""
    return torch.ops.deblur.self_attention(q, k, v, float(scale))


# --- ONNX side: schemas (so onnxscript can build the nodes) and translations ------------------------

_schemas_registered = False


def register_onnx_schemas() -> None:
    """Declare the ``deblur`` node types to onnx (once per process); onnxscript needs a schema."""
    global _schemas_registered
    if _schemas_registered:
        return
    import onnx
    from onnx.defs import OpSchema

    def parameter(name: str) -> Any:
        return OpSchema.FormalParameter(name, "T")

    for op_type, (inputs, outputs, floats) in NODES.items():
        if onnx.defs.has(op_type, DOMAIN):
            continue
        attributes = [OpSchema.Attribute("plugin_namespace", OpSchema.AttrType.STRING,
                                         "TensorRT plugin namespace"),
                      OpSchema.Attribute("aot", OpSchema.AttrType.INT,
                                         "1: TensorRT uses the plugin's ahead-of-time kernel, 0: the JIT one; "
                                         "absent where the plugin has only one", required=False)]
        attributes += [OpSchema.Attribute(name, OpSchema.AttrType.FLOAT, name) for name in floats]
        onnx.defs.register_schema(OpSchema(
            op_type, DOMAIN, DOMAIN_VERSION, inputs=[parameter(n) for n in inputs],
            outputs=[parameter(n) for n in outputs],
            type_constraints=[("T", FLOAT_TYPES, "floating-point tensors")], attributes=attributes))
    _schemas_registered = True


def node_aot_attribute(op_type: str, aot: bool) -> dict[str, int]:
    """The ``aot`` attribute of one node: TensorRT's parser takes ``aot=1`` as "use the AOT
    implementation or fail" and ``aot=0`` as "use the JIT one", so a plugin without an ``aot_impl``
    (attention_fusion) gets no attribute and runs the only implementation it has."""
    return {"aot": int(aot)} if op_type in AOT_PLUGINS else {}


def translation_table(aot: bool = False) -> dict[Callable[..., Any], Callable[..., Any]]:
    """``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)``."""
    register_onnx_schemas()
    from onnxscript import opset18
    from onnxscript.values import Op, Opset

    deblur = Opset(DOMAIN, DOMAIN_VERSION)

    def plugin(op_type: str) -> dict[str, Any]:
        return {"plugin_namespace": DOMAIN, **node_aot_attribute(op_type, aot)}

    def pixel_attention(x: Any, weight: Any, bias: Any) -> Any:
        return Op(deblur, "pixel_attention")(x, weight, bias, **plugin("pixel_attention"))

    def pixel_attention_map(x: Any, weight: Any, bias: Any) -> Any:
        return Op(deblur, "pixel_attention_map")(x, weight, bias, **plugin("pixel_attention_map"))

    def attention_fusion(maps: Sequence[Any], fuse_weight: Any, fuse_bias: Any, dw_weight: Any,
                         pw_weight: Any, features: Any) -> Any:
        stacked = opset18.Concat(*maps, axis=1)
        return Op(deblur, "attention_fusion")(stacked, fuse_weight, fuse_bias, dw_weight, pw_weight, features,
                                              **plugin("attention_fusion"))

    def self_attention(q: Any, k: Any, v: Any, scale: float) -> Any:
        return Op(deblur, "self_attention")(q, k, v, scale=float(scale), **plugin("self_attention"))

    ops = torch.ops.deblur
    return {
        ops.pixel_attention.default: pixel_attention,
        ops.pixel_attention_map.default: pixel_attention_map,
        ops.attention_fusion.default: attention_fusion,
        ops.self_attention.default: self_attention,
    }


@contextmanager
def fused_op_export(aot: bool = False) -> Iterator[dict[Callable[..., Any], Callable[..., Any]]]:
    """Within the block the public ops export as ``deblur`` custom nodes; yields the translation table.

    ``aot=True`` marks the nodes whose plugin has an ahead-of-time implementation so TensorRT
    (>= 10.9) embeds their Triton kernels in the engine instead of calling back into Python;
    ``attention_fusion`` stays JIT either way (see :func:`node_aot_attribute`).
    """
    table = translation_table(aot)
    with custom_op_export():
        yield table


# --- the same nodes for onnx's reference evaluator (parity checks without TensorRT) -------------------

def reference_ops() -> list[type]:
    """``new_ops`` for :class:`onnx.reference.ReferenceEvaluator`: each ``deblur`` node computed by the
    PyTorch reference of its kernel, so a fused-op ONNX can be checked against PyTorch on a CPU.

    Example::

        >>> from onnx.reference import ReferenceEvaluator
        >>> session = ReferenceEvaluator("fused.onnx", new_ops=reference_ops())    # doctest: +SKIP
        >>> (y,) = session.run(None, {"input": x})                                  # doctest: +SKIP
    """
    import numpy as np
    from onnx.reference.op_run import OpRun

    def tensor(a: Any) -> torch.Tensor:
        return torch.from_numpy(np.array(a, copy=True))

    def numpy(t: torch.Tensor, like: Any) -> Any:
        return t.detach().numpy().astype(like.dtype, copy=False)

    class PixelAttention(OpRun):
        op_domain = DOMAIN

        def _run(self, x: Any, weight: Any, bias: Any, plugin_namespace: Any = None, aot: Any = None) -> Any:
            out = pixel_attention_reference(tensor(x), tensor(weight), tensor(bias))
            assert isinstance(out, torch.Tensor)
            return (numpy(out, x),)

    class PixelAttentionMap(OpRun):
        op_domain = DOMAIN

        def _run(self, x: Any, weight: Any, bias: Any, plugin_namespace: Any = None, aot: Any = None) -> Any:
            out, attn = pixel_attention_reference(tensor(x), tensor(weight), tensor(bias), return_map=True)
            return numpy(out, x), numpy(attn, x)

    class AttentionFusion(OpRun):
        op_domain = DOMAIN

        def _run(self, maps: Any, fuse_weight: Any, fuse_bias: Any, dw_weight: Any, pw_weight: Any,
                 features: Any, plugin_namespace: Any = None, aot: Any = None) -> Any:
            # The node's single maps input is the concatenation of the k maps: one map of k*C channels.
            out = attention_fusion_reference([tensor(maps)], tensor(fuse_weight), tensor(fuse_bias), tensor(dw_weight),
                                             tensor(pw_weight), tensor(features))
            return (numpy(out, features),)

    class SelfAttention(OpRun):
        op_domain = DOMAIN

        def _run(self, q: Any, k: Any, v: Any, scale: Any = None, plugin_namespace: Any = None,
                 aot: Any = None) -> Any:
            return (numpy(self_attention_reference(tensor(q), tensor(k), tensor(v), float(scale)), q),)

    classes = {"pixel_attention": PixelAttention, "pixel_attention_map": PixelAttentionMap,
               "attention_fusion": AttentionFusion, "self_attention": SelfAttention}
    assert set(classes) == set(NODES)
    for name, cls in classes.items():
        cls.__name__ = name          # the evaluator matches a class to a node by (op_domain, __name__)
    return list(classes.values())
