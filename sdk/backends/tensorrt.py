"""TensorRT backend: a serialized engine, one execution context, device buffers reused across frames.

Per call: set the input shape only when it changed, copy the batch into a page-locked staging buffer,
copy it to the device on a non-default CUDA stream, ``execute_async_v3``, copy the result back and
synchronise once. Device and staging buffers are allocated for the largest shape seen and reused;
with ``cuda_graph=True`` the enqueue for a fixed shape is captured once into a CUDA graph and replayed
(a capture that fails turns graphs off, with a warning, and the frame runs without one).
Device memory comes from cuda-python or pycuda (:mod:`sdk.backends.cuda_runtime`): no PyTorch import.

The manifest comes from the engine file's own header (:mod:`sdk.backends.engine_file`), else from the
sidecar ``<engine>.json``, else from the caller (``manifest=``); a plan with none of them is refused,
because guessed value ranges give silently wrong frames.

Every call that touches the GPU runs inside ``cuda.activate(device)``, which makes the engine's GPU
current on the calling thread: a backend made on one thread may infer on another (``sdk.run`` does).

An engine runs only on the TensorRT version and the GPU (compute capability) that built it; when
deserialisation fails, the error names the mismatch (from the engine's manifest and TensorRT's own
log) and prints the ``deblur export`` command that rebuilds the engine on this device.

Not run in CI: TensorRT cannot be installed there. This module is type-checked with mypy against
``tensorrt-stubs``; ``tests/sdk/test_tensorrt_backend.py`` checks its logic (mismatch messages, profile
checks, buffer reuse, graph capture) with a fake ``tensorrt`` module and a fake :class:`CudaApi`, and
its ``trt``-marked tests run a real engine where TensorRT and a GPU exist.

Example::

    >>> backend = TensorRTBackend("rdafnet-nano.engine", cuda_graph=True)
    >>> backend.infer(batch, out)          # batch, out: (1, 3, H, W) float32 numpy arrays
"""

from __future__ import annotations

import os
import shlex
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from ..manifest import Manifest
from .base import Backend, EngineCompatibilityError, ModelLoadError, ShapeLimits
from .cuda_runtime import CudaApi, GpuInfo, load_cuda_api
from .engine_file import load_engine, missing_manifest_message

if TYPE_CHECKING:
    import tensorrt as trt

# Keys of Manifest.toolchain that record what built an engine (sdk.manifest.TOOLCHAIN_KEYS).
TOOLCHAIN_TENSORRT = "tensorrt"
TOOLCHAIN_COMPUTE_CAPABILITY = "compute_capability"
TOOLCHAIN_GPU_NAME = "gpu"

# Phrases TensorRT logs when a plan is from another version or another GPU (TRT 8.x-11.x wording).
_VERSION_PHRASES = ("version tag does not match", "kserialization_version", "serialization version",
                    "was built with tensorrt", "version mismatch")
_DEVICE_PHRASES = ("incompatible device", "expecting compute", "compute capability", "platform (",
                   "hardware compatibility")
# ... and when the plan holds plugin layers whose creators this process has not registered.
_PLUGIN_PHRASES = ("iplugincreator not found", "could not find plugin", "cannot deserialize plugin",
                   "plugin creator")


class TensorRTUnavailableError(ImportError):
    """TensorRT (the real library, not only its type stubs) is not importable here."""


def import_tensorrt() -> Any:
    """The real ``tensorrt`` module, else :class:`TensorRTUnavailableError` saying how to get it.

    The one way the runtime and ``export`` import TensorRT. ``tensorrt-stubs`` installs a bare
    ``tensorrt`` namespace for type checkers; it imports but has no ``__version__``, which is what
    tells the real library apart.
    """
    trt_module: Any
    try:
        import tensorrt as trt_module
    except ImportError:
        trt_module = None
    if trt_module is None or not hasattr(trt_module, "__version__"):
        what = "only its type stubs (tensorrt-stubs) are" if trt_module is not None else "it is not"
        raise TensorRTUnavailableError(
            f"TensorRT is not installed ({what} importable here): pip install 'deblur-sdk[trt]' on a desktop GPU, "
            "or on a Jetson use JetPack's TensorRT (python3-libnvinfer) with pip install 'deblur-sdk[jetson]'; "
            "or run the .onnx model instead (ONNX Runtime)")
    return trt_module


def rebuild_command(engine: Path, manifest: Manifest | None) -> str:
    """The ``deblur export`` command that rebuilds ``engine`` (same precision and profile) from the ONNX
    file beside it."""
    args = ["deblur", "export", str(engine.with_suffix(".onnx")), "--to", "engine"]
    if manifest is None or manifest.precision in ("fp16", "mixed"):
        args.append("--fp16")
    if manifest is not None and manifest.shape_profile is not None:
        args += ["--shapes", manifest.shape_profile.to_spec(channels=manifest.in_channels)]
    return shlex.join([*args, "--out", str(engine)])


def _version_key(version: str) -> tuple[str, ...]:
    # Engines are tied to major.minor.patch; the build number does not matter.
    return tuple(version.split("+")[0].split(".")[:3])


def explain_engine_failure(engine: Path, manifest: Manifest | None, *, tensorrt_version: str, gpu: GpuInfo,
                           log: list[str]) -> Exception:
    """Turn a failed deserialisation into an error that says why and how to rebuild.

    Evidence, in order: the manifest sidecar (what built the engine) against this machine, then the
    phrases TensorRT logged. Returns the exception; the caller raises it.
    """
    toolchain = manifest.toolchain if manifest is not None else {}
    built_trt = toolchain.get(TOOLCHAIN_TENSORRT)
    built_sm = toolchain.get(TOOLCHAIN_COMPUTE_CAPABILITY)
    built_gpu = toolchain.get(TOOLCHAIN_GPU_NAME)
    said = " | ".join(m.strip() for m in log if m.strip())[-600:]
    said_lower = said.lower()
    fix = f"Rebuild it on this device:\n  {rebuild_command(engine, manifest)}"
    tensorrt_said = f"\nTensorRT said: {said}" if said else ""

    if built_trt and _version_key(built_trt) != _version_key(tensorrt_version):
        return EngineCompatibilityError(
            f"{engine} was built by TensorRT {built_trt}, but this machine runs TensorRT {tensorrt_version}; "
            f"an engine runs only on the TensorRT version that built it. {fix}{tensorrt_said}")
    if built_sm and built_sm != gpu.sm:
        where = f" ({built_gpu})" if built_gpu else ""
        return EngineCompatibilityError(
            f"{engine} was built for a GPU of compute capability {built_sm}{where}, but this GPU, {gpu.name}, "
            f"is compute capability {gpu.sm}; an engine runs only on the GPU kind that built it. {fix}{tensorrt_said}")
    if any(p in said_lower for p in _PLUGIN_PHRASES):
        return ModelLoadError(
            f"{engine} contains TensorRT plugin layers that are not registered in this process. An engine built "
            "with `deblur export --fused` needs deblur's plugins first: `from kernels.trt_plugins import "
            f"register_plugins; register_plugins()` (TensorRT >= 10.6); or rebuild it without --fused. "
            f"{fix}{tensorrt_said}")
    if any(p in said_lower for p in _VERSION_PHRASES):
        return EngineCompatibilityError(
            f"{engine} was built by another TensorRT version (this machine runs TensorRT {tensorrt_version}). "
            f"{fix}{tensorrt_said}")
    if any(p in said_lower for p in _DEVICE_PHRASES):
        return EngineCompatibilityError(
            f"{engine} was built for another GPU (this one is {gpu.name}, compute capability {gpu.sm}). "
            f"{fix}{tensorrt_said}")
    return ModelLoadError(
        f"{engine} could not be deserialised by TensorRT {tensorrt_version}: the file is corrupt or truncated, "
        f"or not a TensorRT engine. {fix}{tensorrt_said}")


H = TypeVar("H")


class BufferPool(Generic[H]):
    """Named buffers that grow to the largest request and are otherwise reused.

    ``alloc(nbytes) -> handle`` and ``free(handle)`` are the device's (or page-locked host) allocator.
    ``get`` returns the handle and whether it is new, so the caller knows when addresses changed.
    """

    def __init__(self, alloc: Callable[[int], H], free: Callable[[H], None]) -> None:
        self._alloc, self._free = alloc, free
        self._buffers: dict[str, tuple[H, int]] = {}
        self.allocations = 0

    def get(self, name: str, nbytes: int) -> tuple[H, bool]:
        held = self._buffers.get(name)
        if held is not None and held[1] >= nbytes:
            return held[0], False
        if held is not None:
            self._free(held[0])
            del self._buffers[name]
        handle = self._alloc(max(nbytes, 1))
        self._buffers[name] = (handle, nbytes)
        self.allocations += 1
        return handle, True

    def release(self) -> None:
        for handle, _ in self._buffers.values():
            self._free(handle)
        self._buffers.clear()


def _numpy_dtype(dtype: trt.DataType) -> np.dtype:
    import tensorrt as trt

    table = {trt.float32: np.float32, trt.float16: np.float16}
    if dtype not in table:
        raise ModelLoadError(f"engine tensor type {dtype} is not supported; expected float32 or float16 I/O")
    return np.dtype(table[dtype])


def _dims(dims: trt.Dims) -> tuple[int, ...]:
    return tuple(int(dims[i]) for i in range(len(dims)))


class TensorRTBackend(Backend):
    """A TensorRT engine behind the :class:`Backend` interface (see the module docstring).

    ``device``: "auto", "cuda" or "cuda:N". ``manifest``: used when the engine carries none (no header,
    no sidecar), and over the engine's own when given. ``cuda``: a :class:`CudaApi` (tests pass a fake).
    """

    name = "tensorrt"

    def __init__(self, path: str | os.PathLike[str], *, device: str = "auto", cuda_graph: bool = False,
                 manifest: Manifest | None = None, cuda: CudaApi | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"TensorRT engine not found: {self.path}")
        if self.path.stat().st_size == 0:
            raise ModelLoadError(f"{self.path} is empty (a truncated copy?); {rebuild_command(self.path, None)}")
        found, source, plan = load_engine(self.path)
        if manifest is not None:
            self.manifest, self.manifest_source = manifest, "given"
        elif found is not None:
            self.manifest, self.manifest_source = found, source
        else:
            raise ModelLoadError(missing_manifest_message(self.path))

        kind, _, index = device.partition(":")
        if kind not in ("auto", "cuda"):
            raise ValueError(f"TensorRT engines run on a CUDA GPU, not device={device!r}; run the .onnx model on CPU")
        trt_lib = import_tensorrt()

        self.cuda = cuda if cuda is not None else load_cuda_api()
        self._gpu_index = int(index) if index.isdigit() else 0
        count = self.cuda.device_count()
        if count <= self._gpu_index:
            raise RuntimeError(f"no CUDA GPU {self._gpu_index} here: this machine has {count} GPU(s), numbered "
                               "from 0; TensorRT engines need one")
        self.gpu = self.cuda.device_info(self._gpu_index)
        self.device = f"cuda:{self._gpu_index}"
        self.version = str(trt_lib.__version__)
        self._closed = False

        self._log: list[str] = []
        self._logger = self._make_logger()
        with self.cuda.activate(self._gpu_index):
            self._runtime = trt_lib.Runtime(self._logger)
            engine = self._runtime.deserialize_cuda_engine(plan)
            if engine is None:
                # What built the file is in the file's own manifest, even when the caller passed another.
                built_by = found if found is not None else self.manifest
                raise explain_engine_failure(self.path, built_by, tensorrt_version=self.version, gpu=self.gpu,
                                             log=self._log)
            self.engine: trt.ICudaEngine = engine
            self.context: trt.IExecutionContext = engine.create_execution_context()
            self._input, self._outputs = self._io_names()
            self._output = (self.manifest.final_output if self.manifest.final_output in self._outputs
                            else self._outputs[-1])
            self._dtypes = {n: _numpy_dtype(engine.get_tensor_dtype(n)) for n in (self._input, *self._outputs)}
            self.precision = self.manifest.precision
            self.limits = self._profile_limits()
            self._stream = self.cuda.stream_create()
        self._device_buffers: BufferPool[int] = BufferPool(self.cuda.malloc, self.cuda.free)
        self._host_buffers: BufferPool[np.ndarray] = BufferPool(self.cuda.host_alloc, self.cuda.host_free)
        self._shape: tuple[int, ...] | None = None
        self._addresses: dict[str, int] = {}
        self._use_graph = cuda_graph
        self._graph: int | None = None
        self._graph_ready = False    # one plain enqueue must precede a capture after any change

    # ------------------------------------------------------------------ set-up helpers
    def _make_logger(self) -> trt.ILogger:
        import tensorrt as trt

        log = self._log

        class CapturingLogger(trt.ILogger):
            """Keeps warnings and errors so a failed load can quote TensorRT's own reason."""

            def __init__(self) -> None:
                trt.ILogger.__init__(self)

            def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
                if severity <= trt.ILogger.Severity.WARNING:
                    log.append(msg)
                    del log[:-20]

        return CapturingLogger()

    def _io_names(self) -> tuple[str, list[str]]:
        import tensorrt as trt

        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or not outputs:
            raise ModelLoadError(f"{self.path}: expected one input and at least one output, got inputs {inputs}, "
                                 f"outputs {outputs}")
        return inputs[0], outputs

    def _profile_limits(self) -> ShapeLimits:
        profile = self.engine.get_tensor_profile_shape(self._input, 0)
        lo, hi = _dims(profile[0]), _dims(profile[2])
        if len(lo) != 4 or len(hi) != 4:
            raise ModelLoadError(f"{self.path}: input {self._input!r} is not NCHW (profile {lo}..{hi})")
        return ShapeLimits(min_batch=lo[0], max_batch=hi[0], min_hw=(lo[2], lo[3]), max_hw=(hi[2], hi[3]))

    # ------------------------------------------------------------------ inference
    def _prepare(self, shape: tuple[int, ...]) -> None:
        """Set the input shape and (re)bind device buffers; only does work when something changed."""
        changed = shape != self._shape
        if changed:
            if not self.context.set_input_shape(self._input, shape):
                raise ValueError(f"TensorRT rejected input shape {shape} (profile {self.limits})")
            self._shape = shape
        for name in (self._input, *self._outputs):
            dims = _dims(self.context.get_tensor_shape(name))
            if any(d < 0 for d in dims):
                raise RuntimeError(f"TensorRT could not infer the shape of {name!r} for input {shape}")
            nbytes = int(np.prod(dims)) * self._dtypes[name].itemsize
            ptr, _ = self._device_buffers.get(name, nbytes)
            if self._addresses.get(name) != ptr:
                if not self.context.set_tensor_address(name, ptr):
                    raise RuntimeError(f"TensorRT refused the device address of {name!r} ({nbytes} bytes); "
                                       f"TensorRT said: {' | '.join(self._log[-3:]) or 'nothing'}")
                self._addresses[name] = ptr
                changed = True
        if changed:
            self._drop_graph()

    def _drop_graph(self) -> None:
        if self._graph is not None:
            self.cuda.graph_destroy(self._graph)
        self._graph, self._graph_ready = None, False

    def _host(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        dtype = self._dtypes[name]
        nbytes = int(np.prod(shape)) * dtype.itemsize
        raw, _ = self._host_buffers.get(name, nbytes)
        return raw[:nbytes].view(dtype).reshape(shape)

    def _enqueue(self) -> None:
        if self._graph is not None:
            self.cuda.graph_launch(self._graph, self._stream)
            return
        graph = self._capture_graph() if self._use_graph and self._graph_ready else None
        if graph is not None:
            self.cuda.graph_launch(graph, self._stream)
            return
        if not self.context.execute_async_v3(self._stream):
            raise RuntimeError(f"TensorRT execute_async_v3 failed; TensorRT said: {' | '.join(self._log[-3:])}")
        self._graph_ready = True

    def _capture_graph(self) -> int | None:
        """Capture one enqueue into ``_graph`` and return it; on failure turn CUDA graphs off for good.

        Shapes and addresses are frozen into the graph; :meth:`_prepare` drops it when either changes.
        The capture is always ended, even when the enqueue raises: a stream left capturing would make
        every later call on it fail.
        """
        graph: int | None = None
        try:
            self.cuda.capture_begin(self._stream)
            try:
                ok = self.context.execute_async_v3(self._stream)
            finally:
                graph = self.cuda.capture_end(self._stream)
            if not ok:
                raise RuntimeError("TensorRT execute_async_v3 failed while capturing a CUDA graph")
        except BaseException as exc:
            if graph is not None:
                self.cuda.graph_destroy(graph)
            self._graph, self._graph_ready, self._use_graph = None, False, False
            if not isinstance(exc, Exception):
                raise   # Ctrl-C and friends still stop the program
            warnings.warn(f"CUDA graph capture failed ({exc}); running without CUDA graphs", RuntimeWarning,
                          stacklevel=6)
            return None
        self._graph = graph
        return graph

    def infer(self, batch: np.ndarray, out: np.ndarray) -> None:
        if self._closed:
            raise RuntimeError(f"the TensorRT backend for {self.path} is closed")
        shape = tuple(int(d) for d in batch.shape)
        self.limits.check(shape)
        with self.cuda.activate(self._gpu_index):
            self._infer(shape, batch, out)

    def _infer(self, shape: tuple[int, ...], batch: np.ndarray, out: np.ndarray) -> None:
        self._prepare(shape)
        out_shape = _dims(self.context.get_tensor_shape(self._output))
        if out_shape != out.shape:
            raise RuntimeError(f"engine output {self._output!r} is {out_shape}, expected {out.shape}")
        host_in = self._host(self._input, shape)
        np.copyto(host_in, batch, casting="unsafe")
        self.cuda.copy_to_device(self._addresses[self._input], host_in, self._stream)
        self._enqueue()
        host_out = self._host(self._output, out_shape)
        self.cuda.copy_to_host(host_out, self._addresses[self._output], self._stream)
        self.cuda.stream_synchronize(self._stream)
        np.copyto(out, host_out, casting="unsafe")

    def fp32_fallback(self) -> Backend:
        onnx = self.path.with_suffix(".onnx")
        if self.precision != "fp32" and onnx.is_file():
            from .onnxruntime import OnnxRuntimeBackend

            return OnnxRuntimeBackend(onnx, device=self.device, precision="fp32")
        return super().fp32_fallback()

    def describe(self) -> dict[str, str]:
        return {"tensorrt": self.version, "gpu": f"{self.gpu.name} (compute {self.gpu.sm})",
                "input": self._input, "output": self._output, "cuda_graph": str(self._use_graph)}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self.cuda.activate(self._gpu_index):
            self._drop_graph()
            self._device_buffers.release()
            self._host_buffers.release()
            self.cuda.stream_destroy(self._stream)
