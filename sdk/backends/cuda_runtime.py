"""Device memory, streams and CUDA graphs for the TensorRT backend, without PyTorch.

One small interface, :class:`CudaApi`, with two implementations: :class:`CudaPythonApi` on NVIDIA's
cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` in cuda-python < 12.6), which is what
TensorRT's own samples use since 10.14, and :class:`PyCudaApi` for devices (older JetPacks) that have
pycuda instead. Tests substitute a fake :class:`CudaApi` to check the backend's logic without a GPU.

Example::

    >>> cuda = load_cuda_api()
    >>> ptr = cuda.malloc(1 << 20); stream = cuda.stream_create()
"""

from __future__ import annotations

import ctypes
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

    def device_count(self) -> int: ...
    def set_device(self, index: int) -> None: ...
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
            "the TensorRT backend needs cuda-python (pip install 'cuda-python>=12') or pycuda for device memory"
        ) from None


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

    def _check(self, call: str, result: Any) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, text = self._rt.cudaGetErrorString(err)
            raise CudaError(f"{call} failed: {text.decode() if isinstance(text, bytes) else text} ({int(err)})")
        return rest[0] if len(rest) == 1 else rest

    def device_count(self) -> int:
        try:
            return int(self._check("cudaGetDeviceCount", self._rt.cudaGetDeviceCount()))
        except CudaError:
            return 0  # no driver, or no device: the caller says what that means

    def set_device(self, index: int) -> None:
        self._check("cudaSetDevice", self._rt.cudaSetDevice(index))

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
        executable = self._check("cudaGraphInstantiate", self._rt.cudaGraphInstantiate(graph, 0))
        self._graphs[int(executable)] = (graph, executable)
        return int(executable)

    def graph_launch(self, graph: int, stream: int) -> None:
        self._check("cudaGraphLaunch", self._rt.cudaGraphLaunch(self._graphs[graph][1], self._streams[stream]))

    def graph_destroy(self, graph: int) -> None:
        template, executable = self._graphs.pop(graph)
        self._check("cudaGraphExecDestroy", self._rt.cudaGraphExecDestroy(executable))
        self._check("cudaGraphDestroy", self._rt.cudaGraphDestroy(template))


class PyCudaApi:
    """:class:`CudaApi` on pycuda (what older JetPack images ship); CUDA graphs need cuda-python."""

    def __init__(self) -> None:
        import pycuda.driver as driver

        driver.init()
        self._driver: Any = driver
        self._context: Any = None
        self._allocations: dict[int, Any] = {}
        self._streams: dict[int, Any] = {}

    def device_count(self) -> int:
        return int(self._driver.Device.count())

    def set_device(self, index: int) -> None:
        if self._context is None:
            self._context = self._driver.Device(index).retain_primary_context()
            self._context.push()

    def device_info(self, index: int) -> GpuInfo:
        device = self._driver.Device(index)
        major, minor = device.compute_capability()
        return GpuInfo(device.name(), (int(major), int(minor)), int(device.total_memory()))

    def malloc(self, nbytes: int) -> int:
        allocation = self._driver.mem_alloc(nbytes)
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
