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
    >>> flavour = prepare_plugins(trt, (10, 3), needed)            # 'cpp': library loaded
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernels.trt_plugins import JIT_MIN_VERSION as PYTHON_MIN_VERSION
from sdk.plugin_library import CPP_PLUGIN_OPS, FLAVOURS, NAMESPACE, load_plugin_library

if TYPE_CHECKING:
    from .opcheck import PluginOp

CPP_MIN_VERSION = (10, 3)      # IPluginV3 through the ONNX parser; JetPack 6 ships 10.3


def default_flavour(major: int, minor: int) -> str:
    """``python`` on TensorRT >= 10.6 (``tensorrt.plugin`` exists), ``cpp`` before (JetPack 6's 10.3)."""
    return "python" if (major, minor) >= PYTHON_MIN_VERSION else "cpp"


def _custom_nodes(onnx_path: str | os.PathLike[str]) -> dict[str, bool]:
    """``{"namespace::op": aot}`` of every custom-domain node; ``aot``: some node of that op has ``aot=1``."""
    path = Path(onnx_path)
    try:
        import onnx

        from .opcheck import ONNX_DOMAINS
    except ImportError:
        # A runtime-only install: a fused export names its plugin namespace in every custom node.
        if b"plugin_namespace" in path.read_bytes():
            from .tensorrt import EngineBuildError

            raise EngineBuildError(f"{path} has TensorRT plugin nodes; building it needs the onnx package "
                                   "(pip install onnx) to find them") from None
        return {}
    model = onnx.load(os.fspath(path), load_external_data=False)
    found: dict[str, bool] = {}
    for node in model.graph.node:
        if node.domain not in ONNX_DOMAINS:
            key = f"{node.domain}::{node.op_type}"
            aot = any(a.name == "aot" and onnx.helper.get_attribute_value(a) == 1 for a in node.attribute)
            found[key] = found.get(key, False) or aot
    return found


def required_plugins(onnx_path: str | os.PathLike[str]) -> tuple[str, ...]:
    """``namespace::op`` of every custom-domain node of the graph (sorted, unique); () for a standard export."""
    return tuple(sorted(_custom_nodes(onnx_path)))


def plugin_nodes(onnx_path: str | os.PathLike[str]) -> dict[str, bool]:
    """``{op_type: aot}`` of the fused-op (``deblur`` domain) nodes of an ONNX file; empty for a standard export."""
    prefix = f"{NAMESPACE}::"
    return {key[len(prefix):]: aot for key, aot in _custom_nodes(onnx_path).items() if key.startswith(prefix)}


def provided_ops(flavour: str) -> tuple[str, ...]:
    """The ``namespace::op`` names a flavour registers."""
    return tuple(f"{op.domain}::{op.op_type}" for op in plugin_ops(flavour))


def plugin_ops(flavour: str | None) -> tuple[PluginOp, ...]:
    """The plugin ops a flavour registers, as the operator check takes them (None: no plugins).

    The C++ plugins have no ahead-of-time variant, so the check refuses their nodes with ``aot=1``."""
    from .opcheck import PluginOp, deblur_plugin_ops

    if flavour is None:
        return ()
    if flavour == "cpp":
        return tuple(PluginOp(NAMESPACE, name, CPP_MIN_VERSION, None) for name in CPP_PLUGIN_OPS)
    if flavour == "python":
        return deblur_plugin_ops()
    raise ValueError(f"plugins must be one of {FLAVOURS}, got {flavour!r}")


def choose_flavour(version: tuple[int, int], needed: tuple[str, ...], flavour: str | None = None,
                   library: str | os.PathLike[str] | None = None) -> str | None:
    """The flavour a build registers: as asked, else ``cpp`` when a ``library`` is given, else
    :func:`default_flavour`; None when the graph needs no plugins and none were asked for. Raises
    ``ValueError`` for a choice that cannot work (unknown, too old a TensorRT, ops it lacks)."""
    if not needed and flavour is None and library is None:
        return None
    if flavour is None:
        flavour = "cpp" if library is not None else default_flavour(*version)
    if flavour not in FLAVOURS:
        raise ValueError(f"plugins must be one of {FLAVOURS}, got {flavour!r}")
    missing = sorted(set(needed) - set(provided_ops(flavour)))
    if missing:
        raise ValueError(f"the graph needs plugins {missing} that the {flavour} plugins do not provide")
    if flavour == "cpp" and tuple(version) < CPP_MIN_VERSION:
        raise ValueError(f"the C++ plugins need TensorRT >= 10.3 (IPluginV3), this is {version[0]}.{version[1]}; "
                         "export without --fused for it")
    if flavour == "python" and library is not None:
        raise ValueError(f"a plugin library ({Path(library).name}) is for --plugins cpp, not python")
    return flavour


def prepare_plugins(trt: Any, version: tuple[int, int], needed: tuple[str, ...], flavour: str | None = None,
                    library: str | os.PathLike[str] | None = None, *, aot: bool = False) -> str | None:
    """Register the flavour's plugins with TensorRT before parsing (:func:`choose_flavour` picks it);
    returns the flavour, or None when the graph needs no plugins and none were asked for. ``aot``:
    some node asks for the Python plugins' ahead-of-time kernels."""
    flavour = choose_flavour(version, needed, flavour, library)
    if flavour == "cpp":
        load_plugin_library(trt, library)
    elif flavour == "python":
        _register_plugins(aot, version)
    return flavour


def _register_plugins(aot: bool, version: tuple[int, int]) -> list[str]:
    """Register the Python plugins before parsing: TensorRT's parser looks each custom node up by name
    in the plugin registry and fails on one it does not find. AOT only when a node asks for it."""
    from kernels import trt_plugins

    from .tensorrt import EngineBuildError

    shown = ".".join(map(str, version))
    if aot and tuple(version) < trt_plugins.AOT_MIN_VERSION:
        raise EngineBuildError(f"this ONNX asks for the ahead-of-time plugins (aot=1), which need TensorRT >= "
                               f"{'.'.join(map(str, trt_plugins.AOT_MIN_VERSION))}; TensorRT {shown} is installed: "
                               "re-export with `deblur export MODEL --to onnx --fused --jit`")
    try:
        return trt_plugins.register_plugins(aot=aot)
    except RuntimeError as exc:
        raise EngineBuildError(f"cannot build the fused-op ONNX: {exc}") from None
