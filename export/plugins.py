"""The TensorRT plugins a fused ONNX needs, and registering them before a build.

A fused ONNX (``kernels.onnx_ops.fused_op_export``) has ``deblur`` nodes that TensorRT's ONNX parser
maps to plugins of the same name. Two implementations ("flavours") register the same names:

- ``python``: :mod:`kernels.trt_plugins` (``tensorrt.plugin``, TensorRT >= 10.6; Triton kernels);
- ``cpp``: the C++ library ``libdeblur_trt_plugins.so`` (``kernels/csrc``, TensorRT >= 10.3, so
  JetPack 6), loaded through TensorRT's plugin registry (:mod:`sdk.plugin_library`).

The default is ``python`` where TensorRT has it (>= 10.6), else ``cpp``. The engine's manifest
records the flavour and the plugins, so the runtime loads the same ones before deserialising.

Example::

    >>> needed = required_plugins("rdafnet-fused.onnx")           # ('deblur::attention_fusion', ...)
    >>> flavour = prepare_plugins(trt, TensorRTVersion(10, 3), needed)      # 'cpp': library loaded
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kernels.trt_plugins import JIT_MIN_VERSION as PYTHON_MIN_VERSION
from sdk.plugin_library import CPP_PLUGIN_OPS, FLAVOURS, NAMESPACE, load_plugin_library

CPP_MIN_VERSION = (10, 3)      # IPluginV3 through the ONNX parser; JetPack 6 ships 10.3


def default_flavour(major: int, minor: int) -> str:
    """``python`` on TensorRT >= 10.6 (``tensorrt.plugin`` exists), ``cpp`` before (JetPack 6's 10.3)."""
    return "python" if (major, minor) >= PYTHON_MIN_VERSION else "cpp"


def required_plugins(onnx_path: str | os.PathLike[str]) -> tuple[str, ...]:
    """``namespace::op`` of every custom-domain node of the graph (sorted, unique); () when the onnx
    package is absent (a runtime-only install), where plugins are registered only as asked."""
    try:
        import onnx

        from .opcheck import ONNX_DOMAINS
    except ImportError:
        return ()

    model = onnx.load(os.fspath(onnx_path), load_external_data=False)
    return tuple(sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ONNX_DOMAINS}))


def provided_ops(flavour: str) -> tuple[str, ...]:
    """The ``namespace::op`` names a flavour registers."""
    if flavour == "cpp":
        return tuple(f"{NAMESPACE}::{name}" for name in CPP_PLUGIN_OPS)
    if flavour == "python":
        from kernels.trt_plugins import NAMESPACE as PY_NAMESPACE
        from kernels.trt_plugins import PLUGINS

        return tuple(f"{PY_NAMESPACE}::{name}" for name in PLUGINS)
    raise ValueError(f"plugins must be one of {FLAVOURS}, got {flavour!r}")


def prepare_plugins(trt: Any, version: tuple[int, int], needed: tuple[str, ...], flavour: str | None = None,
                    library: str | os.PathLike[str] | None = None) -> str | None:
    """Register the flavour's plugins with TensorRT before parsing; returns the flavour, or None when
    the graph needs no plugins and none were asked for. ``library`` (a .so) implies ``cpp``."""
    if not needed and flavour is None and library is None:
        return None
    if flavour is None:
        flavour = "cpp" if library is not None else default_flavour(*version)
    if flavour not in FLAVOURS:
        raise ValueError(f"plugins must be one of {FLAVOURS}, got {flavour!r}")
    missing = sorted(set(needed) - set(provided_ops(flavour)))
    if missing:
        raise ValueError(f"the graph needs plugins {missing} that the {flavour} plugins do not provide")
    if flavour == "cpp":
        if tuple(version) < CPP_MIN_VERSION:
            raise ValueError(f"the C++ plugins need TensorRT >= 10.3 (IPluginV3), this is {version[0]}.{version[1]}; "
                             "export without --fused for it")
        load_plugin_library(trt, library)
    else:
        if library is not None:
            raise ValueError(f"a plugin library ({Path(library).name}) is for --plugins cpp, not python")
        from kernels.trt_plugins import register_plugins

        register_plugins()
    return flavour
