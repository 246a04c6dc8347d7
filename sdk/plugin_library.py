"""The C++ TensorRT plugin library (``libdeblur_trt_plugins.so``): where it is, and loading it.

An engine built from a fused ONNX (``deblur export --fused``) contains ``deblur::*`` plugin layers.
With ``--plugins cpp`` their code lives in the library built by the top-level ``CMakeLists.txt``
(``kernels/csrc``); TensorRT needs it loaded, through its plugin registry, in the process that
builds the engine and in every process that deserialises it. The manifest names the flavour
(``plugin_flavour``) and the ops (``plugins``), so :class:`sdk.Deblurrer` loads it first.

Where the library is looked for, first hit wins:

1. the path given by the caller (``build_engine(..., plugin_library=...)``, ``--plugin-library``);
2. ``$DEBLUR_TRT_PLUGIN_LIBRARY``;
3. beside the package: ``sdk/lib/libdeblur_trt_plugins.so``;
4. a source checkout's CMake build: ``build/kernels/csrc/libdeblur_trt_plugins.so``.

Standard library only (``tensorrt`` is passed in), like the rest of ``sdk`` at import time.

Example::

    >>> import tensorrt as trt
    >>> from sdk.plugin_library import load_plugin_library
    >>> path = load_plugin_library(trt)          # PluginLibraryError says where it looked and how to build it
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

ENV_VAR = "DEBLUR_TRT_PLUGIN_LIBRARY"
LIBRARY_NAME = "libdeblur_trt_plugins.so"
NAMESPACE = "deblur"
# The ops the library registers (kernels/csrc/plugins), the same names as kernels/onnx_ops.py writes.
CPP_PLUGIN_OPS = ("pixel_attention", "pixel_attention_map", "attention_fusion", "self_attention")
FLAVOURS = ("cpp", "python")
BUILD_HINT = ("build it with CMake (JetPack 6: cmake -S . -B build -DCMAKE_CUDA_ARCHITECTURES=87 && "
              "cmake --build build --target deblur_trt_plugins; see kernels/csrc/README.md) and set "
              f"{ENV_VAR} to the .so, or rebuild the engine with --plugins python (TensorRT >= 10.6)")

_lock = threading.Lock()
_loaded: dict[str, Any] = {}   # resolved path -> TensorRT's library handle (one registration per process)


class PluginLibraryError(RuntimeError):
    """The C++ plugin library is missing, or TensorRT refused to load it."""


def candidate_paths(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where :func:`find_plugin_library` looks, in order."""
    paths = []
    if explicit is not None:
        paths.append(Path(explicit).expanduser())
    if os.environ.get(ENV_VAR):
        paths.append(Path(os.environ[ENV_VAR]).expanduser())
    package = Path(__file__).resolve().parent
    paths.append(package / "lib" / LIBRARY_NAME)
    paths.append(package.parent / "build" / "kernels" / "csrc" / LIBRARY_NAME)
    return paths


def find_plugin_library(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The first existing library of :func:`candidate_paths`; an explicit path must exist itself."""
    if explicit is not None and not Path(explicit).expanduser().is_file():
        raise PluginLibraryError(f"plugin library not found: {explicit}; {BUILD_HINT}")
    searched = candidate_paths(explicit)
    for path in searched:
        if path.is_file():
            return path
    where = "\n".join(f"  {p}" for p in searched)
    raise PluginLibraryError(f"the deblur C++ plugin library ({LIBRARY_NAME}) was not found; looked in:\n{where}\n"
                             f"{BUILD_HINT}")


def load_plugin_library(trt: Any, explicit: str | os.PathLike[str] | None = None) -> Path:
    """Register the library's plugins with TensorRT's plugin registry (once per process); returns its path.

    ``trt``: the imported ``tensorrt`` module.
    """
    path = find_plugin_library(explicit).resolve()
    with _lock:
        if str(path) in _loaded:
            return path
        if _loaded:
            first = next(iter(_loaded))
            raise PluginLibraryError(f"another deblur plugin library is already loaded in this process ({first}); "
                                     f"TensorRT registers a plugin name once, so {path} cannot be loaded too")
        handle = trt.get_plugin_registry().load_library(str(path))
        if handle is None:
            raise PluginLibraryError(
                f"TensorRT {getattr(trt, '__version__', '?')} could not load {path}: it was built for another "
                "TensorRT or CUDA version, or the deblur plugins are already registered in this process (the Python "
                f"flavour, kernels.trt_plugins); {BUILD_HINT}")
        _loaded[str(path)] = handle
    return path


def loaded_libraries() -> list[Path]:
    """The plugin libraries this process has registered with TensorRT."""
    with _lock:
        return [Path(p) for p in _loaded]


def load_engine_plugins(trt: Any, flavour: str | None, plugins: tuple[str, ...],
                        library: str | os.PathLike[str] | None = None) -> Path | None:
    """Make the plugins an engine's manifest names available before it is deserialised.

    ``cpp``: load the C++ library (:class:`PluginLibraryError` when it is missing). ``python``:
    register :mod:`kernels.trt_plugins` when it can be imported (JIT plugins run Python; AOT ones are
    inside the engine, so a torch-free install can still run them). Returns the library's path for ``cpp``.
    """
    if not plugins:
        return None
    if flavour == "cpp":
        return load_plugin_library(trt, library)
    if flavour != "python":
        raise PluginLibraryError(f"the engine needs plugins {list(plugins)} of unknown flavour {flavour!r}; "
                                 f"known: {FLAVOURS}")
    try:
        from kernels.trt_plugins import register_plugins
    except ImportError:
        warnings.warn(f"the engine uses the Python plugins {list(plugins)} and kernels.trt_plugins cannot be imported "
                      "here: ahead-of-time plugins run without it, a JIT-plugin engine will fail to deserialise "
                      "(install deblur-sdk[kernels], or rebuild the engine with --plugins cpp)", stacklevel=3)
        return None
    try:
        register_plugins()
    except RuntimeError as exc:
        raise PluginLibraryError(f"the engine was built with the Python plugins {list(plugins)}: {exc}; or rebuild it "
                                 "with --plugins cpp") from None
    return None
