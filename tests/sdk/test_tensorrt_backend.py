"""The TensorRT backend without TensorRT: a fake ``tensorrt`` module and a fake CUDA check its logic.

What the fakes pin down: the engine is deserialised and its profile read; input shapes are set only
when they change; device and page-locked buffers grow to the largest shape and are otherwise reused
(tensor addresses re-bound only when a buffer moves); a CUDA graph is captured after one plain run
and replayed, and dropped when the shape changes; mismatch errors name the versions/GPUs and the
``deblur export`` command. The ``trt``-marked test at the end runs a real engine where TensorRT exists.
"""

from __future__ import annotations

import contextlib
import enum
import importlib.util
import shutil
import subprocess
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

import sdk
from sdk.backends.cuda_runtime import GpuInfo
from sdk.backends.engine_file import pack_engine
from sdk.backends.tensorrt import BufferPool, TensorRTBackend, explain_engine_failure, rebuild_command
from sdk.manifest import Manifest, ShapeProfile

FAKE_VERSION = "10.13.0.35"
PLAN = b"FAKE-ENGINE-PLAN"


ORIN = GpuInfo("Orin", (8, 7))


class FakeCuda:
    """A CudaApi whose 'device memory' is host bytes; graphs record the enqueued work and replay it.

    Like CUDA, the current device is per thread: ``activate`` sets it for the calling thread only, every
    GPU call checks that the thread calling it has ``expect_device`` current, and ``activations``
    records (thread name, device) pairs.
    """

    def __init__(self, gpu: GpuInfo = ORIN, *, devices: int = 1, expect_device: int = 0) -> None:
        self.gpu, self.devices, self.expect_device = gpu, devices, expect_device
        self.memory: dict[int, np.ndarray] = {}
        self.next_ptr = 0x1000
        self.mallocs = self.frees = self.host_allocs = 0
        self.capturing: list | None = None
        self.graphs: dict[int, list] = {}
        self.captures = self.launches = 0
        self.current = threading.local()
        self.activations: list[tuple[str, int]] = []

    def on_device(self):
        device = getattr(self.current, "device", None)
        assert device == self.expect_device, (
            f"{threading.current_thread().name} called CUDA with device {device} current, not {self.expect_device}")

    def device_count(self):
        return self.devices

    @contextlib.contextmanager
    def activate(self, index):
        self.activations.append((threading.current_thread().name, index))
        self.current.device = index
        yield

    def device_info(self, index):
        return self.gpu

    def malloc(self, nbytes):
        self.on_device()
        ptr, self.next_ptr = self.next_ptr, self.next_ptr + nbytes + 256
        self.memory[ptr] = np.zeros(nbytes, np.uint8)
        self.mallocs += 1
        return ptr

    def free(self, ptr):
        self.on_device()
        del self.memory[ptr]
        self.frees += 1

    def host_alloc(self, nbytes):
        self.on_device()
        self.host_allocs += 1
        return np.zeros(nbytes, np.uint8)

    def host_free(self, buffer):
        self.on_device()

    def stream_create(self):
        self.on_device()
        self.streams = getattr(self, "streams", 0) + 1
        return 7

    def stream_destroy(self, stream):
        self.on_device()
        assert self.streams > 0, "stream destroyed twice"
        self.streams -= 1

    def stream_synchronize(self, stream):
        self.on_device()
        assert self.capturing is None

    def copy_to_device(self, dst, src, stream):
        self.on_device()
        self.memory[dst][: src.nbytes] = src.reshape(-1).view(np.uint8)

    def copy_to_host(self, dst, src, stream):
        self.on_device()
        dst.reshape(-1).view(np.uint8)[:] = self.memory[src][: dst.nbytes]

    def capture_begin(self, stream):
        self.on_device()
        self.capturing = []

    def capture_end(self, stream):
        self.on_device()
        graph = len(self.graphs) + 1
        self.graphs[graph], self.capturing = self.capturing, None
        self.captures += 1
        return graph

    def graph_launch(self, graph, stream):
        self.on_device()
        self.launches += 1
        for op in self.graphs[graph]:
            op()

    def graph_destroy(self, graph):
        del self.graphs[graph]


class FakeContext:
    """Doubles its input: out = 2 * in, reading and writing FakeCuda memory at the bound addresses."""

    def __init__(self, engine):
        self.engine, self.shape, self.addresses = engine, None, {}
        self.shape_sets = self.address_sets = self.executions = 0

    def set_input_shape(self, name, shape):
        self.shape, self.shape_sets = tuple(shape), self.shape_sets + 1
        return True

    def get_tensor_shape(self, name):
        return self.shape

    def set_tensor_address(self, name, ptr):
        self.addresses[name], self.address_sets = ptr, self.address_sets + 1
        return True

    def execute_async_v3(self, stream):
        cuda, shape = self.engine.cuda, self.shape
        cuda.on_device()
        src, dst = self.addresses["input"], self.addresses["output"]
        count = int(np.prod(shape))

        def run():
            x = cuda.memory[src][: count * 4].view(np.float32)
            cuda.memory[dst][: count * 4].view(np.float32)[:] = 2 * x
            self.executions += 1

        if cuda.capturing is not None:
            cuda.capturing.append(run)
        else:
            run()
        return True


def make_fake_tensorrt(cuda: FakeCuda, *, profile=((1, 3, 8, 8), (1, 3, 32, 32), (2, 3, 64, 64)),
                       fail_with: str | None = None) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = FAKE_VERSION

    class Severity(enum.IntEnum):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    class ILogger:
        def __init__(self):
            pass

    ILogger.Severity = Severity
    trt.ILogger = ILogger
    trt.TensorIOMode = enum.Enum("TensorIOMode", "NONE INPUT OUTPUT")
    trt.float32, trt.float16 = "float32", "float16"

    class Engine:
        num_io_tensors = 2

        def __init__(self):
            self.cuda, self.contexts = cuda, []

        def get_tensor_name(self, i):
            return ("input", "output")[i]

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.INPUT if name == "input" else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return trt.float32

        def get_tensor_profile_shape(self, name, index):
            return list(profile)

        def create_execution_context(self):
            self.contexts.append(FakeContext(self))
            return self.contexts[-1]

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, plan):
            if fail_with is not None or plan != PLAN:
                self.logger.log(Severity.ERROR, fail_with or "Serialization assertion magicTagRead == kMAGIC_TAG failed")
                return None
            return Engine()

    trt.Runtime = Runtime
    return trt


@pytest.fixture
def engine_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.engine"
    path.write_bytes(PLAN)
    Manifest(architecture="rdafnet", variant="rdafnet-nano", value_range=(0.0, 1.0), pad_multiple=8,
             residual="none", precision="fp16",
             shape_profile=ShapeProfile(min=(1, 16, 16), opt=(1, 720, 1280), max=(2, 1088, 1920)),
             toolchain={"tensorrt": FAKE_VERSION, "compute_capability": "8.7", "gpu": "Orin"}).write_sidecar(path)
    return path


def load(path: Path, monkeypatch, cuda: FakeCuda | None = None, **kw) -> tuple[TensorRTBackend, FakeCuda]:
    cuda = cuda or FakeCuda()
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt(cuda, **kw.pop("fake", {})))
    return TensorRTBackend(path, cuda=cuda, **kw), cuda


def test_engine_runs_and_reports_its_profile(engine_file, monkeypatch):
    backend, cuda = load(engine_file, monkeypatch)
    assert (backend.name, backend.device, backend.precision) == ("tensorrt", "cuda:0", "fp16")
    assert backend.limits.min_hw == (8, 8) and backend.limits.max_hw == (64, 64) and backend.limits.max_batch == 2
    x = np.random.default_rng(0).random((1, 3, 16, 24), dtype=np.float32)
    out = np.empty_like(x)
    backend.infer(x, out)
    np.testing.assert_array_equal(out, 2 * x)
    assert backend.describe()["tensorrt"] == FAKE_VERSION


def test_buffers_grow_to_the_largest_shape_and_are_reused(engine_file, monkeypatch):
    backend, cuda = load(engine_file, monkeypatch)
    context = backend.context
    rng = np.random.default_rng(1)
    for shape in [(1, 3, 32, 32), (1, 3, 32, 32), (1, 3, 16, 16), (1, 3, 32, 32)]:
        x = rng.random(shape, dtype=np.float32)
        out = np.empty_like(x)
        backend.infer(x, out)
        np.testing.assert_array_equal(out, 2 * x)
    # One device buffer per tensor, one staging buffer per tensor: the smaller frame reused them.
    assert (cuda.mallocs, cuda.frees, cuda.host_allocs) == (2, 0, 2)
    assert context.address_sets == 2              # addresses bound once, never again
    assert context.shape_sets == 3                 # shape set only when it changed: 32, 16, 32
    big = rng.random((2, 3, 64, 64), dtype=np.float32)
    out = np.empty_like(big)
    backend.infer(big, out)
    np.testing.assert_array_equal(out, 2 * big)
    assert (cuda.mallocs, cuda.frees) == (4, 2) and context.address_sets == 4
    backend.close()
    assert cuda.memory == {}


def test_buffer_pool_reuses_until_a_bigger_request():
    allocated, freed = [], []
    pool = BufferPool(lambda n: allocated.append(n) or len(allocated), freed.append)
    assert pool.get("x", 100) == (1, True)
    assert pool.get("x", 60) == (1, False)
    assert pool.get("x", 100) == (1, False)
    assert pool.get("x", 101) == (2, True) and freed == [1]
    assert pool.get("y", 10) == (3, True)
    pool.release()
    assert sorted(freed) == [1, 2, 3] and pool.allocations == 3


def test_shapes_outside_the_profile_are_refused_and_deblurrer_tiles_to_fit(engine_file, monkeypatch):
    backend, cuda = load(engine_file, monkeypatch)
    with pytest.raises(ValueError, match=r"outside the model's profile \[1x8x8 .. 2x64x64\]"):
        backend.infer(np.zeros((1, 3, 72, 64), np.float32), np.zeros((1, 3, 72, 64), np.float32))
    with pytest.raises(ValueError, match="outside the model's profile"):
        backend.infer(np.zeros((1, 3, 4, 64), np.float32), np.zeros((1, 3, 4, 64), np.float32))
    monkeypatch.setattr("sdk.backends.tensorrt.load_cuda_api", lambda: cuda)
    deblur = sdk.Deblurrer(engine_file, tile_overlap=8)
    assert deblur.info.backend == "tensorrt"
    frame = np.random.default_rng(2).integers(0, 128, (100, 150, 3), dtype=np.uint8)
    np.testing.assert_array_equal(deblur.process(frame), frame * 2)      # tiles of <= 64x64, doubled
    tiny = np.full((3, 5, 3), 40, np.uint8)                                # below the profile's 8x8 minimum
    np.testing.assert_array_equal(deblur.process(tiny), tiny * 2)


def test_cuda_graph_is_captured_after_a_plain_run_and_replayed(engine_file, monkeypatch):
    backend, cuda = load(engine_file, monkeypatch, cuda_graph=True)
    rng = np.random.default_rng(3)
    for _ in range(4):
        x = rng.random((1, 3, 16, 16), dtype=np.float32)
        out = np.empty_like(x)
        backend.infer(x, out)
        np.testing.assert_array_equal(out, 2 * x)      # replayed graphs read the new input
    assert cuda.captures == 1 and cuda.launches == 3
    x = rng.random((1, 3, 24, 24), dtype=np.float32)
    out = np.empty_like(x)
    backend.infer(x, out)                              # new shape: graph dropped, plain run again
    np.testing.assert_array_equal(out, 2 * x)
    assert cuda.graphs == {} and cuda.launches == 3
    backend.infer(x, out)
    assert cuda.captures == 2 and cuda.launches == 4


def _break_capture(backend: TensorRTBackend, cuda: FakeCuda, how: str) -> None:
    """Make the next CUDA-graph capture fail the way ``how`` says."""
    context = backend.context
    plain_execute = context.execute_async_v3

    def execute(stream):
        if cuda.capturing is not None:
            if how == "enqueue raises":
                raise RuntimeError("enqueue not capturable")
            if how == "enqueue fails":
                return False
        return plain_execute(stream)

    def end_invalidated(stream):
        cuda.capturing = None                  # cudaStreamEndCapture ends the capture, then reports the error
        raise RuntimeError("cudaErrorStreamCaptureInvalidated")

    def begin_unsupported(stream):
        raise RuntimeError("CUDA graphs need cuda-python")   # what the pycuda CudaApi says

    context.execute_async_v3 = execute
    if how == "end raises":
        cuda.capture_end = end_invalidated
    if how == "begin raises":
        cuda.capture_begin = begin_unsupported


@pytest.mark.parametrize("how", ["enqueue raises", "enqueue fails", "end raises", "begin raises"])
def test_failed_graph_capture_falls_back_to_plain_runs(engine_file, monkeypatch, how):
    backend, cuda = load(engine_file, monkeypatch, cuda_graph=True)
    rng = np.random.default_rng(5)
    x = rng.random((1, 3, 16, 16), dtype=np.float32)
    out = np.empty_like(x)
    backend.infer(x, out)                               # the plain run that precedes a capture
    _break_capture(backend, cuda, how)
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        backend.infer(x, out)
    np.testing.assert_array_equal(out, 2 * x)           # this frame still ran, without a graph
    assert cuda.capturing is None and cuda.graphs == {}  # capture ended, no half-made graph kept
    assert backend._graph is None and backend.describe()["cuda_graph"] == "False"
    for _ in range(2):                                  # later frames run plain, with no retry
        x = rng.random((1, 3, 16, 16), dtype=np.float32)
        backend.infer(x, out)
        np.testing.assert_array_equal(out, 2 * x)
    assert cuda.launches == 0 and backend.context.executions == 4
    backend.close()


def test_version_mismatch_names_both_versions_and_the_rebuild_command(engine_file, monkeypatch):
    manifest = Manifest.read_sidecar(engine_file)
    manifest.replace(toolchain={**manifest.toolchain, "tensorrt": "10.3.0.30"}).write_sidecar(engine_file)
    with pytest.raises(sdk.EngineCompatibilityError) as info:
        load(engine_file, monkeypatch, fake={"fail_with": "Serialization (Serialization assertion "
                                                            "stdVersionRead == kSERIALIZATION_VERSION failed."
                                                            "Version tag does not match."})
    message = str(info.value)
    assert "built by TensorRT 10.3.0.30" in message and f"runs TensorRT {FAKE_VERSION}" in message
    onnx = engine_file.with_suffix(".onnx")
    assert f"deblur export {onnx} --to engine --fp16 --shapes 1x3x16x16:1x3x720x1280:2x3x1088x1920 " \
           f"--out {engine_file}" in message
    assert "Version tag does not match" in message


def test_gpu_mismatch_names_both_compute_capabilities(engine_file, monkeypatch):
    cuda = FakeCuda(GpuInfo("NVIDIA GeForce RTX 4090", (8, 9)))
    with pytest.raises(sdk.EngineCompatibilityError) as info:
        load(engine_file, monkeypatch, cuda=cuda, fake={"fail_with": "The engine plan file is generated on an "
                                                                     "incompatible device, expecting compute 8.9 "
                                                                     "got compute 8.7, please rebuild."})
    message = str(info.value)
    assert "compute capability 8.7 (Orin)" in message and "RTX 4090, is compute capability 8.9" in message
    assert "deblur export" in message


def test_failure_without_manifest_is_classified_from_the_tensorrt_log(tmp_path):
    engine = tmp_path / "bare.engine"
    gpu = GpuInfo("Orin", (8, 7))
    err = explain_engine_failure(engine, None, tensorrt_version="10.3.0", gpu=gpu,
                                 log=["expecting compute 8.6 got compute 8.7, please rebuild"])
    assert isinstance(err, sdk.EngineCompatibilityError) and "built for another GPU" in str(err)
    err = explain_engine_failure(engine, None, tensorrt_version="10.3.0", gpu=gpu,
                                 log=["Version tag does not match"])
    assert isinstance(err, sdk.EngineCompatibilityError) and "another TensorRT version" in str(err)
    err = explain_engine_failure(engine, None, tensorrt_version="10.9.0", gpu=gpu, log=[
        "1: [pluginV2Runner.cpp::load::303] Error Code 1: Serialization (Serialization assertion creator failed."
        "Cannot deserialize plugin since corresponding IPluginCreator not found in Plugin Registry)"])
    assert isinstance(err, sdk.ModelLoadError) and "register_plugins()" in str(err) and "--fused" in str(err)
    err = explain_engine_failure(engine, None, tensorrt_version="10.3.0", gpu=gpu, log=["magicTagRead failed"])
    assert isinstance(err, sdk.ModelLoadError) and "corrupt or truncated" in str(err)
    assert rebuild_command(engine, None) in str(err)


def test_corrupt_engine_is_a_model_load_error(engine_file, monkeypatch):
    engine_file.write_bytes(PLAN[:5])          # truncated: the fake runtime refuses it like TensorRT would
    with pytest.raises(sdk.ModelLoadError, match="corrupt or truncated"):
        load(engine_file, monkeypatch)
    engine_file.write_bytes(b"")
    with pytest.raises(sdk.ModelLoadError, match="empty"):
        load(engine_file, monkeypatch)


def test_plan_without_a_manifest_is_refused_unless_the_caller_gives_one(tmp_path, monkeypatch):
    engine = tmp_path / "bare.engine"
    engine.write_bytes(PLAN)
    with pytest.raises(sdk.ModelLoadError, match=r"without a deblur manifest.*deblur export MODEL --to engine"):
        load(engine, monkeypatch)
    given = Manifest(architecture="rdafnet", variant="rdafnet-nano", value_range=(-1.0, 1.0), pad_multiple=8)
    backend, _ = load(engine, monkeypatch, manifest=given)
    assert backend.manifest_source == "given" and backend.manifest.value_range == (-1.0, 1.0)


def test_manifest_inside_the_engine_file_is_used_without_a_sidecar(tmp_path, monkeypatch):
    engine = tmp_path / "packed.engine"
    inside = Manifest(architecture="rdafnet", variant="rdafnet-small", value_range=(-1.0, 1.0), pad_multiple=16,
                      precision="fp16", toolchain={"tensorrt": FAKE_VERSION, "compute_capability": "8.7"})
    engine.write_bytes(pack_engine(PLAN, inside))      # the fake runtime accepts only the bare PLAN
    backend, cuda = load(engine, monkeypatch)
    assert backend.manifest_source == "engine header" and backend.manifest == inside
    deblur = sdk.Deblurrer(backend, tile_overlap=8)
    frame = np.full((20, 20, 3), 100, np.uint8)
    # In [-1, 1]: 100 -> 100/127.5 - 1, doubled by the fake engine, back to 2*100 - 127.5 = 72.5 (the
    # default (0, 1) range would have given 200).
    assert np.abs(deblur.process(frame).astype(float) - 72.5).max() == 0.5
    backend.close()


def test_a_backend_made_on_one_thread_infers_on_another_with_its_gpu_current(engine_file, monkeypatch):
    """sdk.run infers on its own thread: every GPU call must find the engine's device (here GPU 1) current there."""
    cuda = FakeCuda(devices=2, expect_device=1)
    backend, _ = load(engine_file, monkeypatch, cuda=cuda, device="cuda:1", cuda_graph=True)
    x = np.random.default_rng(7).random((1, 3, 16, 16), dtype=np.float32)
    outs, errors = [], []

    def worker():
        try:
            for _ in range(3):                      # plain run, graph capture, graph replay
                out = np.empty_like(x)
                backend.infer(x, out)
                outs.append(out)
        except BaseException as exc:  # noqa: BLE001 — reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=worker, name="infer-thread")
    thread.start()
    thread.join()
    assert errors == []
    for out in outs:
        np.testing.assert_array_equal(out, 2 * x)
    assert cuda.captures == 1 and cuda.launches == 2    # the capture is launched, then replayed
    assert ("infer-thread", 1) in cuda.activations and {d for _, d in cuda.activations} == {1}
    closer = threading.Thread(target=backend.close, name="closer")
    closer.start()
    closer.join()
    assert cuda.memory == {} and ("closer", 1) in cuda.activations


def test_gpu_index_beyond_the_machine_names_the_count(engine_file, monkeypatch):
    with pytest.raises(RuntimeError, match="no CUDA GPU 2 here: this machine has 2 GPU"):
        load(engine_file, monkeypatch, cuda=FakeCuda(devices=2), device="cuda:2")


def test_close_twice_is_safe_and_a_closed_backend_says_so(engine_file, monkeypatch):
    backend, cuda = load(engine_file, monkeypatch)
    x = np.zeros((1, 3, 16, 16), np.float32)
    backend.infer(x, np.empty_like(x))
    backend.close()
    backend.close()                                   # FakeCuda asserts a stream is never destroyed twice
    assert cuda.memory == {} and cuda.streams == 0
    with pytest.raises(RuntimeError, match="closed"):
        backend.infer(x, np.empty_like(x))


def test_a_refused_tensor_address_is_an_error_not_a_silent_bad_frame(engine_file, monkeypatch):
    backend, _ = load(engine_file, monkeypatch)
    backend.context.set_tensor_address = lambda name, ptr: False     # what TensorRT returns on a bad address
    x = np.zeros((1, 3, 16, 16), np.float32)
    with pytest.raises(RuntimeError, match="TensorRT refused the device address of 'input'"):
        backend.infer(x, np.empty_like(x))


@pytest.mark.skipif(importlib.util.find_spec("cuda") is None, reason="needs cuda-python")
def test_with_real_cuda_python_and_no_driver_the_error_is_the_driver_not_found_0(engine_file, monkeypatch):
    from sdk.backends.cuda_runtime import CudaDriverError, CudaPythonApi

    try:
        count = CudaPythonApi().device_count()
    except CudaDriverError:
        pass
    else:
        pytest.skip(f"this machine has a working NVIDIA driver ({count} GPU(s))")
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt(FakeCuda()))
    with pytest.raises(CudaDriverError) as info:
        TensorRTBackend(engine_file)                       # cuda-python's real cudaGetDeviceCount answers
    assert "no NVIDIA driver is loaded" in str(info.value) and "found 0" not in str(info.value)


def test_engine_on_cpu_is_refused(engine_file, monkeypatch):
    with pytest.raises(ValueError, match="run on a CUDA GPU"):
        load(engine_file, monkeypatch, device="cpu")


def test_export_and_runtime_share_one_tensorrt_import_and_one_gpu_query(monkeypatch):
    import export.tensorrt as builder
    from sdk.backends import cuda_runtime
    from sdk.backends import tensorrt as runtime

    assert builder.import_tensorrt is runtime.import_tensorrt
    assert builder.TensorRTUnavailableError is runtime.TensorRTUnavailableError
    assert builder.gpu_compute_capability is cuda_runtime.gpu_compute_capability
    fake = make_fake_tensorrt(FakeCuda())
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    assert runtime.import_tensorrt() is fake                       # the contract: it returns the module
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(runtime.TensorRTUnavailableError, match="it is not importable here"):
        builder.import_tensorrt()
    assert cuda_runtime.gpu_compute_capability(0, FakeCuda(GpuInfo("RTX 4090", (8, 9)))) == ("8.9", "RTX 4090")
    with pytest.raises(RuntimeError, match="no CUDA GPU 1 here: this machine has 1 GPU"):
        cuda_runtime.gpu_compute_capability(1, FakeCuda())


def test_tensorrt_stubs_namespace_is_not_mistaken_for_tensorrt(engine_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))   # what tensorrt-stubs leaves
    with pytest.raises(ImportError, match="TensorRT is not installed"):
        TensorRTBackend(engine_file, cuda=FakeCuda())


def _stub_root() -> Path | None:
    spec = importlib.util.find_spec("tensorrt")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))).parent
    return root if (root / "tensorrt" / "__init__.pyi").is_file() else None


@pytest.mark.slow
def test_backend_type_checks_against_tensorrt_stubs(tmp_path):
    """mypy with tensorrt-stubs; the stubs' own syntax slips (parameters named ``in``) are patched in a copy."""
    import re

    root = _stub_root()
    if importlib.util.find_spec("mypy") is None or root is None:
        pytest.skip("needs mypy and tensorrt-stubs (pip install mypy; pip install --no-deps tensorrt-stubs)")
    stubs = tmp_path / "stubs"
    for package in ("tensorrt", "tensorrt_bindings"):
        shutil.copytree(root / package, stubs / package, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    bindings = stubs / "tensorrt_bindings" / "tensorrt.pyi"
    text = re.sub(r"(\bdef \w+\([^)]*?)\bin: ", r"\1in_: ", bindings.read_text())
    bindings.write_text(text.replace("channel_axis: int)", "channel_axis: int = ...)"))
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\npython_version = 3.10\nignore_missing_imports = True\nfollow_imports = silent\n"
                      f"mypy_path = {stubs}\ncache_dir = {tmp_path / 'cache'}\n"
                      "[mypy-tensorrt,tensorrt.*,tensorrt_bindings,tensorrt_bindings.*]\nignore_errors = True\n")
    repo = Path(sdk.__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config),
                             "sdk/backends/tensorrt.py", "sdk/backends/cuda_runtime.py"],
                            cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.trt
def test_real_engine_matches_onnxruntime(onnx_models, tmp_path):
    """Build an engine from the 3x3-conv ONNX model with TensorRT itself and compare with ONNX Runtime."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_models["conv"].read_bytes())
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 3, 16, 16), (1, 3, 64, 64), (1, 3, 128, 128))
    config.add_optimization_profile(profile)
    plan = bytes(builder.build_serialized_network(network, config))
    engine, packed = tmp_path / "conv.engine", tmp_path / "packed.engine"
    engine.write_bytes(plan)                                       # a plain plan with a sidecar...
    Manifest.read_onnx(onnx_models["conv"]).write_sidecar(engine)
    packed.write_bytes(pack_engine(plan, Manifest.read_onnx(onnx_models["conv"])))   # ...and one with the header
    frame = np.random.default_rng(4).integers(0, 256, (150, 210, 3), dtype=np.uint8)
    reference = sdk.Deblurrer(onnx_models["conv"], device="cpu").process(frame)
    for path, graph in ((engine, False), (engine, True), (packed, True)):
        out = sdk.Deblurrer(path, tile_overlap=16, cuda_graph=graph).process(frame)
        assert np.abs(out.astype(int) - reference.astype(int)).max() <= 1
