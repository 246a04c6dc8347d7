"""The CUDA layer of the TensorRT backend: per-thread devices, graph clean-up and driver errors.

Three kinds of evidence, none needing a GPU: fakes of cuda-python's runtime module and of pycuda that
keep CUDA's per-thread state (so a call from a thread with no device current is caught), and the real
cuda-python bindings, which on a machine without an NVIDIA driver return real error codes.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from enum import IntEnum

import numpy as np
import pytest

from sdk.backends.cuda_runtime import (
    CudaDriverError,
    CudaError,
    CudaPythonApi,
    PyCudaApi,
    explain_driver_error,
    gpu_compute_capability,
)


class FakeError(IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100


def fake_cudart(*, count_error: FakeError = FakeError.cudaSuccess, driver: int = 12060, runtime: int = 12090,
                instantiate_error: FakeError = FakeError.cudaSuccess) -> types.ModuleType:
    """cuda-python's runtime module as far as CudaPythonApi uses it: (error, value) tuples, a current
    device per thread (cudaSetDevice), and allocations that record which device was current."""
    rt = types.ModuleType("cudart")
    ok = FakeError.cudaSuccess
    local = threading.local()
    rt.allocations, rt.destroyed_graphs = [], []
    rt.cudaError_t = FakeError
    rt.cudaGetErrorString = lambda err: (ok, f"text of {err.name}".encode())
    rt.cudaDriverGetVersion = lambda: (ok, driver)
    rt.cudaRuntimeGetVersion = lambda: (ok, runtime)
    rt.cudaGetDeviceCount = lambda: (count_error, None if count_error else 2)

    def set_device(index):
        local.device = index
        return (ok,)

    def malloc(nbytes):
        device = getattr(local, "device", None)
        rt.allocations.append((threading.current_thread().name, device))
        return (ok, 0x1000 + len(rt.allocations))

    rt.cudaSetDevice = set_device
    rt.cudaMalloc = malloc
    rt.cudaStreamCreateWithFlags = lambda flags: (ok, 77)
    rt.cudaStreamNonBlocking = 1
    rt.cudaStreamEndCapture = lambda stream: (ok, "captured-graph")
    rt.cudaGraphInstantiate = lambda graph, flags: (instantiate_error, None if instantiate_error else "exec")
    rt.cudaGraphDestroy = lambda graph: rt.destroyed_graphs.append(graph) or (ok,)
    rt.cudaGraphExecDestroy = lambda graph: (ok,)
    return rt


def cuda_python_api(rt: types.ModuleType) -> CudaPythonApi:
    api = CudaPythonApi.__new__(CudaPythonApi)
    api.__init__()                                    # the real one, to set up its tables...
    api._rt = rt                                      # ...then talking to the fake runtime
    return api


needs_cuda_python = pytest.mark.skipif(importlib.util.find_spec("cuda") is None
                                       or importlib.util.find_spec("cuda.bindings") is None,
                                       reason="needs cuda-python (pip install 'cuda-python>=12.3,<13')")


@needs_cuda_python
def test_cuda_python_activate_makes_the_device_current_on_the_calling_thread():
    rt = fake_cudart()
    api = cuda_python_api(rt)

    def worker():
        with api.activate(1):
            api.malloc(64)

    thread = threading.Thread(target=worker, name="infer")
    thread.start()
    thread.join()
    api.malloc(64)                                    # the main thread never activated: no device current
    assert rt.allocations == [("infer", 1), ("MainThread", None)]


@needs_cuda_python
def test_failed_graph_instantiation_frees_the_captured_graph():
    rt = fake_cudart(instantiate_error=FakeError.cudaErrorInvalidValue)
    api = cuda_python_api(rt)
    stream = api.stream_create()
    with pytest.raises(CudaError, match=r"cudaGraphInstantiate failed: text of cudaErrorInvalidValue"):
        api.capture_end(stream)
    assert rt.destroyed_graphs == ["captured-graph"] and api._graphs == {}


@needs_cuda_python
def test_a_too_old_driver_is_reported_as_such_with_the_pin_that_fixes_it():
    api = cuda_python_api(fake_cudart(count_error=FakeError.cudaErrorInsufficientDriver, driver=12020,
                                      runtime=13000))
    with pytest.raises(CudaDriverError) as info:
        api.device_count()
    message = str(info.value)
    assert "driver supports CUDA 12.2, but cuda-python is built for CUDA 13.0" in message
    assert "pip install 'cuda-python>=12.0,<13'" in message and "deblur-sdk[jetson]" in message
    assert "found 0" not in message


@needs_cuda_python
def test_no_device_is_reported_with_what_to_check(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    api = cuda_python_api(fake_cudart(count_error=FakeError.cudaErrorNoDevice))
    with pytest.raises(CudaDriverError, match=r"driver \(CUDA 12.6\) sees no GPU \(cudaErrorNoDevice\).*"
                                              r"CUDA_VISIBLE_DEVICES=''"):
        api.device_count()


# --------------------------------------------------------------------------- the real cuda-python, no driver
def _real_runtime():
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime
    return runtime


@needs_cuda_python
def test_real_cuda_python_without_a_driver_says_no_driver_not_found_0():
    api = CudaPythonApi()
    try:
        count = api.device_count()
    except CudaDriverError as exc:
        message = str(exc)
    else:
        pytest.skip(f"this machine has a working NVIDIA driver ({count} GPU(s))")
    assert message.startswith("cudaGetDeviceCount failed: no NVIDIA driver is loaded on this machine "
                              "(cudaErrorInsufficientDriver; driver version 0)")
    assert "nvidia-smi" in message and "JetPack 6" in message
    with pytest.raises(CudaDriverError, match="no NVIDIA driver is loaded"):
        gpu_compute_capability(0)


@needs_cuda_python
@pytest.mark.parametrize("name, says", [
    ("cudaErrorNoDevice", "sees no GPU"),
    ("cudaErrorInsufficientDriver", None),          # driver version decides: see the test above
    ("cudaErrorSystemDriverMismatch", "kernel driver and its user-space library"),
    ("cudaErrorCompatNotSupportedOnDevice", "forward-compatibility"),
])
def test_real_cuda_python_error_codes_become_clear_messages(name, says, monkeypatch):
    """The real bindings' error objects (enum members, cudaGetErrorString) through our check."""
    runtime = _real_runtime()
    code = getattr(runtime.cudaError_t, name)
    api = CudaPythonApi()
    monkeypatch.setattr(api, "_version", lambda query: 12060 if query == "cudaDriverGetVersion" else 12090)
    with pytest.raises(CudaDriverError) as info:
        api._check("cudaGetDeviceCount", (code, None))
    message = str(info.value)
    assert f"({name}" in message
    assert says is None or says in message
    if says is None:
        assert "driver supports CUDA 12.6, but cuda-python is built for CUDA 12.9" in message
    # an ordinary error stays an ordinary CudaError carrying CUDA's own text
    with pytest.raises(CudaError) as plain:
        api._check("cudaMalloc", (runtime.cudaError_t.cudaErrorMemoryAllocation, None))
    assert not isinstance(plain.value, CudaDriverError) and "out of memory" in str(plain.value)


@needs_cuda_python
def test_driver_api_names_are_understood_too():
    try:
        from cuda.bindings import driver
    except ImportError:
        from cuda import cuda as driver
    name = driver.CUresult.CUDA_ERROR_NO_DEVICE.name
    assert "sees no GPU (CUDA_ERROR_NO_DEVICE)" in explain_driver_error(name, driver_version=12020,
                                                                        runtime_version=None)
    assert explain_driver_error("CUDA_ERROR_OUT_OF_MEMORY", driver_version=12020, runtime_version=None) is None


# --------------------------------------------------------------------------- pycuda: a context stack per thread
class _Allocation(int):
    """pycuda's DeviceAllocation: int() is the device pointer."""

    def free(self):
        pass


def fake_pycuda(monkeypatch, *, init_error: str | None = None) -> types.ModuleType:
    driver = types.ModuleType("pycuda.driver")
    local = threading.local()
    driver.allocations = []

    class Error(Exception):
        pass

    def stack():
        if not hasattr(local, "stack"):
            local.stack = []
        return local.stack

    class Context:
        def __init__(self, device):
            self.device = device

        def push(self):
            stack().append(self)

        @staticmethod
        def pop():
            stack().pop()

    class Device:
        def __init__(self, index):
            self.index = index

        @staticmethod
        def count():
            return 2

        def retain_primary_context(self):
            return Context(self.index)

    def init():
        if init_error:
            raise Error(init_error)

    def mem_alloc(nbytes):
        if not stack():
            raise Error("cuMemAlloc failed: invalid device context")
        driver.allocations.append((threading.current_thread().name, stack()[-1].device))
        return _Allocation(0x2000 + len(driver.allocations))

    driver.Error, driver.Context, driver.Device = Error, Context, Device
    driver.init, driver.mem_alloc = init, mem_alloc
    driver.get_driver_version = lambda: 12020
    driver.context_depth = lambda: len(stack())
    package = types.ModuleType("pycuda")
    package.driver = driver
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    return driver


def test_pycuda_pushes_the_context_on_the_calling_thread_and_pops_it(monkeypatch):
    driver = fake_pycuda(monkeypatch)
    api = PyCudaApi()
    depths = []

    def worker():
        with api.activate(1):
            api.malloc(64)
        depths.append(driver.context_depth())

    thread = threading.Thread(target=worker, name="infer")
    thread.start()
    thread.join()
    assert driver.allocations == [("infer", 1)] and depths == [0]
    with pytest.raises(CudaError, match="invalid device context"):
        api.malloc(64)                                # a thread that never activated has no context


def test_pycuda_without_a_device_is_a_driver_error(monkeypatch):
    fake_pycuda(monkeypatch, init_error="cuInit failed: no CUDA-capable device is detected")
    with pytest.raises(CudaDriverError, match=r"CUDA 12.2\) sees no GPU \(cuInit failed: no CUDA-capable"):
        PyCudaApi()


# --------------------------------------------------------------------------- a real GPU (deblur doctor --gpu runs these)
@pytest.mark.gpu
@needs_cuda_python
def test_real_gpu_copies_graphs_and_another_thread():
    api = CudaPythonApi()
    sm, name = gpu_compute_capability(0, api)
    assert api.device_count() >= 1 and len(sm.split(".")) == 2 and name
    with api.activate(0):
        stream = api.stream_create()
        device = api.malloc(4096)
        host, back = api.host_alloc(4096), api.host_alloc(4096)
        host[:] = np.arange(4096) % 251
        api.copy_to_device(device, host, stream)
        api.copy_to_host(back, device, stream)
        api.stream_synchronize(stream)
        np.testing.assert_array_equal(back, host)
        api.capture_begin(stream)                     # a graph of the two copies, replayed on new data
        api.copy_to_device(device, host, stream)
        api.copy_to_host(back, device, stream)
        graph = api.capture_end(stream)
        host[:], back[:] = 7, 0
        api.graph_launch(graph, stream)
        api.stream_synchronize(stream)
        assert (back == 7).all()
    seen = []

    def worker():                                     # the stream and memory, used from a thread of its own
        with api.activate(0):
            host[:] = 9
            api.graph_launch(graph, stream)
            api.stream_synchronize(stream)
            seen.append(int(back.max()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [9]
    with api.activate(0):
        api.graph_destroy(graph)
        api.free(device)
        api.host_free(host)
        api.host_free(back)
        api.stream_destroy(stream)


def test_pycuda_built_for_a_newer_cuda_says_to_rebuild_it(monkeypatch):
    fake_pycuda(monkeypatch, init_error="cuInit failed: CUDA driver version is insufficient for CUDA runtime version")
    with pytest.raises(CudaDriverError, match=r"supports CUDA 12.2, but pycuda is built for a newer CUDA.*"
                                              r"rebuild pycuda with the CUDA 12 toolkit"):
        PyCudaApi()
