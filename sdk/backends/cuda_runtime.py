"""Device memory, streams and CUDA graphs for the TensorRT backend, without PyTorch.

One small interface, :class:`CudaApi`, with two implementations: :class:`CudaPythonApi` on NVIDIA's
cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` in cuda-python < 12.6), which is what
TensorRT's own samples use since 10.14, and :class:`PyCudaApi` for devices (older JetPacks) that have
pycuda instead. Tests substitute a fake :class:`CudaApi` to check the backend's logic without a GPU.

CUDA's "current device" is per thread (cuda-python: the device's primary context, made current by
``cudaSetDevice``; pycuda: a context stack per thread). A backend may be made on one thread and run on
another (``sdk.run`` infers on its own thread), so every call that touches the GPU runs inside
:meth:`CudaApi.activate`, which makes the device current on the calling thread.

A failure to reach the driver (none installed, one too old for this cuda-python, no GPU visible) is a
:class:`CudaDriverError` whose message names CUDA's own error and says how to fix it.

Example::

    >>> cuda = load_cuda_api()
    >>> with cuda.activate(0):
    ...     ptr = cuda.malloc(1 << 20); stream = cuda.stream_create()
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class GpuInfo:
    """The facts an engine is tied to."""

    name: str
    compute_capability: tuple[int, int]
    total_memory: int = 0

    @property
    def sm(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


class CudaApi(Protocol):
    """What the TensorRT backend needs from CUDA. Handles (pointers, streams, graphs) are ints."""

    def device_count(self) -> int: ...                        # raises CudaDriverError when the driver fails
    def activate(self, index: int) -> contextlib.AbstractContextManager[None]: ...   # device current on this thread
    def device_info(self, index: int) -> GpuInfo: ...
    def malloc(self, nbytes: int) -> int: ...
    def free(self, ptr: int) -> None: ...
    def host_alloc(self, nbytes: int) -> np.ndarray: ...       # page-locked, uint8
    def host_free(self, buffer: np.ndarray) -> None: ...
    def stream_create(self) -> int: ...
    def stream_destroy(self, stream: int) -> None: ...
    def stream_synchronize(self, stream: int) -> None: ...
    def copy_to_device(self, dst: int, src: np.ndarray, stream: int) -> None: ...
    def copy_to_host(self, dst: np.ndarray, src: int, stream: int) -> None: ...
    def capture_begin(self, stream: int) -> None: ...
    def capture_end(self, stream: int) -> int: ...            # returns an instantiated graph
    def graph_launch(self, graph: int, stream: int) -> None: ...
    def graph_destroy(self, graph: int) -> None: ...


class CudaError(RuntimeError):
    """A CUDA runtime call failed; the message names the call and CUDA's own error string."""


class CudaDriverError(CudaError):
    """The CUDA driver cannot be used: none installed, too old for this cuda-python, or no GPU visible."""


# Error names (runtime API, driver API) that mean "the driver or GPU is not usable", not "this call was wrong".
_NO_DEVICE = ("cudaErrorNoDevice", "CUDA_ERROR_NO_DEVICE", "no cuda-capable device")
_OLD_DRIVER = ("cudaErrorInsufficientDriver", "CUDA_ERROR_INSUFFICIENT_DRIVER",
               "driver version is insufficient")
_DRIVER_MISMATCH = ("cudaErrorSystemDriverMismatch", "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
                    "system has unsupported display driver")
_COMPAT = ("cudaErrorCompatNotSupportedOnDevice", "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
           "forward compatibility was attempted on non supported hw")
_NO_DRIVER_LIBRARY = ("DynamicLibNotFoundError", "libcuda.so")
JETSON_INSTALL = "pip install 'deblur-sdk[jetson]'"


def _cuda_version(encoded: int) -> str:
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def explain_driver_error(error: str, *, driver_version: int | None, runtime_version: int | None,
                         binding: str = "cuda-python") -> str | None:
    """What a driver-level CUDA error means and how to fix it, or ``None`` for any other error.

    ``error``: CUDA's error name or message (``cudaErrorInsufficientDriver``, ``CUDA_ERROR_NO_DEVICE``,
    pycuda's "cuInit failed: no CUDA-capable device is detected"). Versions are CUDA's encoding
    (12060 = 12.6); ``driver_version`` 0 means no driver is loaded.

    >>> explain_driver_error("cudaErrorNoDevice", driver_version=12060, runtime_version=12090).startswith(
    ...     "the NVIDIA driver (CUDA 12.6) sees no GPU (cudaErrorNoDevice)")
    True
    """
    lowered = error.lower()

    def says(names: tuple[str, ...]) -> bool:
        return any(n.lower() in lowered for n in names)

    cpu = "or run the .onnx model on CPU with ONNX Runtime"
    if says(_NO_DRIVER_LIBRARY) or (says(_OLD_DRIVER) and not driver_version):
        return (f"no NVIDIA driver is loaded on this machine ({error}; driver version 0): TensorRT engines need an "
                "NVIDIA GPU and its driver. Desktop: install the NVIDIA driver and check `nvidia-smi`; Jetson: "
                f"flash a JetPack 6 image; in a container: run it with `--gpus all` (or `--runtime nvidia`); {cpu}")
    if says(_OLD_DRIVER):
        built = f"CUDA {_cuda_version(runtime_version)}" if runtime_version else "a newer CUDA"
        major = driver_version // 1000 if driver_version else 12
        match = (f"pip install 'cuda-python>={major}.0,<{major + 1}' (on Jetson with JetPack 6: {JETSON_INSTALL})"
                 if binding == "cuda-python" else f"rebuild {binding} with the CUDA {major} toolkit")
        return (f"the NVIDIA driver supports CUDA {_cuda_version(driver_version or 0)}, but {binding} is built for "
                f"{built} ({error}). Install the {binding} that matches the driver: {match}, "
                "or update the NVIDIA driver")
    if says(_NO_DEVICE):
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        driver = f" (CUDA {_cuda_version(driver_version)})" if driver_version else ""
        hint = f"; CUDA_VISIBLE_DEVICES={visible!r} is set and may hide it" if visible is not None else ""
        return (f"the NVIDIA driver{driver} sees no GPU ({error}): check `nvidia-smi` (Jetson: `tegrastats`), "
                f"that this user may use the GPU (the 'video' group){hint}; in a container run it with "
                f"`--gpus all`; {cpu}")
    if says(_DRIVER_MISMATCH):
        return (f"the NVIDIA kernel driver and its user-space library (libcuda) are different versions ({error}): "
                "reboot after a driver update, or reinstall the driver")
    if says(_COMPAT):
        return (f"a CUDA forward-compatibility library (cuda-compat) is on the library path, but this GPU does not "
                f"support it ({error}): remove it from LD_LIBRARY_PATH, or install the cuda-python that matches "
                f"the driver ({JETSON_INSTALL} on Jetson)")
    return None


def load_cuda_api() -> CudaApi:
    """cuda-python when installed, else pycuda; a clear ImportError when neither is."""
    try:
        return CudaPythonApi()
    except ImportError:
        pass
    try:
        return PyCudaApi()
    except ImportError:
        raise ImportError(
            "the TensorRT backend needs cuda-python for device memory: pip install 'deblur-sdk[trt]' (desktop) "
            f"or {JETSON_INSTALL} (Jetson, JetPack 6); pycuda works too"
        ) from None


def gpu_compute_capability(device: int = 0, cuda: CudaApi | None = None) -> tuple[str, str]:
    """``("8.7", "Orin")``: compute capability and name of CUDA device ``device`` (the one query for it).

    Raises :class:`CudaDriverError` (with the fix) when there is no usable driver, and ``RuntimeError``
    when ``device`` is not one of the GPUs here.
    """
    cuda = cuda if cuda is not None else load_cuda_api()
    count = cuda.device_count()
    if not 0 <= device < count:
        raise RuntimeError(f"no CUDA GPU {device} here: this machine has {count} GPU(s), numbered from 0")
    info = cuda.device_info(device)
    return info.sm, info.name


def _pinned_array(ptr: int, nbytes: int) -> np.ndarray:
    return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))


class CudaPythonApi:
    """:class:`CudaApi` on cuda-python's runtime bindings."""

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart  # cuda-python < 12.6 spelled the module this way
        self._rt: Any = cudart
        self._graphs: dict[int, tuple[Any, Any]] = {}
        self._streams: dict[int, Any] = {}
        self._host: dict[int, int] = {}

    def _version(self, query: str) -> int | None:
        try:
            err, value = getattr(self._rt, query)()
        except Exception:  # noqa: BLE001 — only used to word an error message
            return None
        return int(value) if int(err) == 0 else None

    def _check(self, call: str, result: Any) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, text = self._rt.cudaGetErrorString(err)
            text = text.decode() if isinstance(text, bytes) else str(text)
            name = getattr(err, "name", str(int(err)))
            driver = explain_driver_error(name, driver_version=self._version("cudaDriverGetVersion"),
                                          runtime_version=self._version("cudaRuntimeGetVersion"))
            if driver is not None:
                raise CudaDriverError(f"{call} failed: {driver}")
            raise CudaError(f"{call} failed: {text} ({name} = {int(err)})")
        return rest[0] if len(rest) == 1 else rest

    def device_count(self) -> int:
        return int(self._check("cudaGetDeviceCount", self._rt.cudaGetDeviceCount()))

    @contextlib.contextmanager
    def activate(self, index: int) -> Iterator[None]:
        # cudaSetDevice makes the device's primary context current on this thread only; it costs well
        # under a microsecond when the device is already current, so it is done on every call rather
        # than remembered per thread (other code on the thread may have switched devices in between).
        self._check("cudaSetDevice", self._rt.cudaSetDevice(index))
        yield

    def device_info(self, index: int) -> GpuInfo:
        prop = self._check("cudaGetDeviceProperties", self._rt.cudaGetDeviceProperties(index))
        name = prop.name.split(b"\0", 1)[0].decode() if isinstance(prop.name, bytes) else str(prop.name)
        return GpuInfo(name, (int(prop.major), int(prop.minor)), int(prop.totalGlobalMem))

    def malloc(self, nbytes: int) -> int:
        return int(self._check("cudaMalloc", self._rt.cudaMalloc(nbytes)))

    def free(self, ptr: int) -> None:
        self._check("cudaFree", self._rt.cudaFree(ptr))

    def host_alloc(self, nbytes: int) -> np.ndarray:
        ptr = int(self._check("cudaMallocHost", self._rt.cudaMallocHost(nbytes)))
        array = _pinned_array(ptr, nbytes)
        self._host[array.ctypes.data] = ptr
        return array

    def host_free(self, buffer: np.ndarray) -> None:
        self._check("cudaFreeHost", self._rt.cudaFreeHost(self._host.pop(buffer.ctypes.data)))

    def stream_create(self) -> int:
        stream = self._check("cudaStreamCreateWithFlags",
                             self._rt.cudaStreamCreateWithFlags(self._rt.cudaStreamNonBlocking))
        self._streams[int(stream)] = stream
        return int(stream)

    def stream_destroy(self, stream: int) -> None:
        self._check("cudaStreamDestroy", self._rt.cudaStreamDestroy(self._streams.pop(stream)))

    def stream_synchronize(self, stream: int) -> None:
        self._check("cudaStreamSynchronize", self._rt.cudaStreamSynchronize(self._streams[stream]))

    def copy_to_device(self, dst: int, src: np.ndarray, stream: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check("cudaMemcpyAsync", self._rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind,
                                                                 self._streams[stream]))

    def copy_to_host(self, dst: np.ndarray, src: int, stream: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check("cudaMemcpyAsync", self._rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind,
                                                                 self._streams[stream]))

    def capture_begin(self, stream: int) -> None:
        mode = self._rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._check("cudaStreamBeginCapture", self._rt.cudaStreamBeginCapture(self._streams[stream], mode))

    def capture_end(self, stream: int) -> int:
        graph = self._check("cudaStreamEndCapture", self._rt.cudaStreamEndCapture(self._streams[stream]))
        try:
            executable = self._check("cudaGraphInstantiate", self._rt.cudaGraphInstantiate(graph, 0))
        except BaseException:
            self._rt.cudaGraphDestroy(graph)   # the captured graph is ours to free when it cannot be used
            raise
        self._graphs[int(executable)] = (graph, executable)
        return int(executable)

    def graph_launch(self, graph: int, stream: int) -> None:
        self._check("cudaGraphLaunch", self._rt.cudaGraphLaunch(self._graphs[graph][1], self._streams[stream]))

    def graph_destroy(self, graph: int) -> None:
        template, executable = self._graphs.pop(graph)
        try:
            self._check("cudaGraphExecDestroy", self._rt.cudaGraphExecDestroy(executable))
        finally:
            self._check("cudaGraphDestroy", self._rt.cudaGraphDestroy(template))


class PyCudaApi:
    """:class:`CudaApi` on pycuda (what older JetPack images ship); CUDA graphs need cuda-python."""

    def __init__(self) -> None:
        import pycuda.driver as driver

        self._driver: Any = driver
        self._call("cuInit", driver.init)
        self._contexts: dict[int, Any] = {}
        self._contexts_lock = threading.Lock()     # two threads' first calls must not retain a context twice
        self._allocations: dict[int, Any] = {}
        self._streams: dict[int, Any] = {}

    def _call(self, call: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self._driver.Error as exc:
            try:
                driver_version: int | None = int(self._driver.get_driver_version())
            except Exception:  # noqa: BLE001 — only used to word an error message
                driver_version = None
            explained = explain_driver_error(str(exc), driver_version=driver_version, runtime_version=None,
                                             binding="pycuda")
            raise (CudaDriverError(f"{call} failed: {explained}") if explained else
                   CudaError(f"{call} failed: {exc}")) from None

    def device_count(self) -> int:
        return int(self._call("cuDeviceGetCount", self._driver.Device.count))

    @contextlib.contextmanager
    def activate(self, index: int) -> Iterator[None]:
        # pycuda keeps a context stack per thread: push the device's primary context for this call and
        # pop it after, so any thread may call and none is left holding the context.
        with self._contexts_lock:
            context = self._contexts.get(index)
            if context is None:
                context = self._contexts[index] = self._call(
                    "cuDevicePrimaryCtxRetain", lambda: self._driver.Device(index).retain_primary_context())
        context.push()
        try:
            yield
        finally:
            self._driver.Context.pop()

    def device_info(self, index: int) -> GpuInfo:
        device = self._driver.Device(index)
        major, minor = device.compute_capability()
        return GpuInfo(device.name(), (int(major), int(minor)), int(device.total_memory()))

    def malloc(self, nbytes: int) -> int:
        allocation = self._call("cuMemAlloc", self._driver.mem_alloc, nbytes)
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, ptr: int) -> None:
        self._allocations.pop(ptr).free()

    def host_alloc(self, nbytes: int) -> np.ndarray:
        return self._driver.pagelocked_empty(nbytes, np.uint8)

    def host_free(self, buffer: np.ndarray) -> None:
        base = buffer.base
        if base is not None and hasattr(base, "free"):
            base.free()

    def stream_create(self) -> int:
        stream = self._driver.Stream()
        self._streams[int(stream.handle)] = stream
        return int(stream.handle)

    def stream_destroy(self, stream: int) -> None:
        self._streams.pop(stream)

    def stream_synchronize(self, stream: int) -> None:
        self._streams[stream].synchronize()

    def copy_to_device(self, dst: int, src: np.ndarray, stream: int) -> None:
        self._driver.memcpy_htod_async(dst, src, self._streams[stream])

    def copy_to_host(self, dst: np.ndarray, src: int, stream: int) -> None:
        self._driver.memcpy_dtoh_async(dst, src, self._streams[stream])

    def capture_begin(self, stream: int) -> None:
        raise CudaError("CUDA graphs need cuda-python (pip install cuda-python); run with cuda_graph=False")

    def capture_end(self, stream: int) -> int:
        raise CudaError("CUDA graphs need cuda-python")

    def graph_launch(self, graph: int, stream: int) -> None:
        raise CudaError("CUDA graphs need cuda-python")

    def graph_destroy(self, graph: int) -> None:
        raise CudaError("CUDA graphs need cuda-python")
