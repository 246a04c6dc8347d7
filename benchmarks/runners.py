"""One runner per backend: the model on device-resident input, and the model on host arrays.

Every runner offers two calls, timed separately by :mod:`benchmarks.latency`:

- :meth:`Runner.run_device`: the network on an input already on its device, output left there
  (CUDA events on GPUs): what the accelerator costs;
- :meth:`Runner.run_host`: host ``float32`` batch in the model's range -> host ``float32`` output,
  host-to-device and device-to-host copies included. Pre/post-processing of uint8 frames is added
  around it by the caller, with :mod:`sdk.processing` (the SDK's own code).

Backend names (:func:`parse_backend`): ``torch[-compile|-triton][-fp32|-fp16|-bf16]``, ``ort-cpu``,
``ort-cuda``, ``tensorrt`` (an FP16 engine). A backend the machine cannot run raises
:class:`Unavailable` with the reason, which the results list.

The CUDA paths (CUDA events, ONNX Runtime's CUDA provider, TensorRT) have not been executed on a
GPU yet: the machine they were written on has none. Their tests are marked ``gpu``/``trt``.

Example::

    >>> runner = make_runner("torch-bf16", model=net, onnx_path=None, device="cpu", threads=2)
    >>> runner.prepare(1, 256, 256)
    >>> runner.run_device()
"""

from __future__ import annotations

import abc
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kernels.dispatch import kernel_mode

from .stats import Clock, CudaEventClock, HostClock

DEFAULT_BACKENDS = ("torch-fp32", "torch-bf16", "torch-fp16", "torch-compile", "torch-triton", "torch-triton-fp16",
                    "ort-cpu", "ort-cuda", "tensorrt")
PRECISIONS = ("fp32", "fp16", "bf16")
TRT_CACHE = Path(os.environ.get("DEBLUR_CACHE", Path.home() / ".cache" / "deblur-sdk")) / "bench-engines"


class Unavailable(RuntimeError):
    """This backend cannot run on this machine (or for this model); the message says why."""


@dataclass(frozen=True)
class BackendChoice:
    """A parsed backend name."""

    name: str
    family: str                 # "torch", "ort" or "tensorrt"
    precision: str = "fp32"
    compile: bool = False
    triton: bool = False
    provider: str = ""          # ORT: "cpu" or "cuda"


def parse_backend(name: str) -> BackendChoice:
    """``"torch-compile-fp16"`` -> a :class:`BackendChoice`; ValueError naming the accepted forms otherwise."""
    text = name.strip().lower()
    if text in ("ort-cpu", "ort-cuda"):
        return BackendChoice(text, "ort", provider=text.split("-")[1])
    if text == "tensorrt":
        return BackendChoice(text, "tensorrt", precision="fp16")
    parts = text.split("-")
    if parts[0] == "torch":
        rest = parts[1:]
        mode = rest.pop(0) if rest and rest[0] in ("compile", "triton") else ""
        precision = rest.pop(0) if rest and rest[0] in PRECISIONS else "fp32"
        if not rest:
            return BackendChoice(text, "torch", precision=precision, compile=mode == "compile", triton=mode == "triton")
    raise ValueError(f"unknown backend {name!r}: expected torch[-compile|-triton][-fp32|-fp16|-bf16], "
                     f"ort-cpu, ort-cuda or tensorrt (defaults: {', '.join(DEFAULT_BACKENDS)})")


class Runner(abc.ABC):
    """A network behind one backend, prepared for one (batch, height, width) at a time."""

    name: str
    device: str
    precision: str

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.setup_seconds = 0.0

    @abc.abstractmethod
    def prepare(self, batch: int, height: int, width: int) -> None:
        """Allocate device-resident input/output for this shape (and compile, where the backend does)."""

    @abc.abstractmethod
    def run_device(self) -> None:
        """The network on the prepared device-resident input."""

    @abc.abstractmethod
    def run_host(self, batch: np.ndarray, out: np.ndarray) -> None:
        """Host float32 ``batch`` -> host float32 ``out``, copies to and from the device included."""

    def device_clock(self) -> Clock:
        return HostClock()

    def host_clock(self) -> Clock:
        return HostClock()

    def activate(self) -> contextlib.AbstractContextManager[None]:
        """Process-wide settings this runner needs while it is timed."""
        return contextlib.nullcontext()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the runner holds."""


def _random_input(shape: tuple[int, ...], value_range: tuple[float, float], seed: int = 0) -> np.ndarray:
    lo, hi = value_range
    return (lo + (hi - lo) * np.random.default_rng(seed).random(shape, dtype=np.float32)).astype(np.float32)


# --------------------------------------------------------------------------- PyTorch
class TorchRunner(Runner):
    """A ``DeblurNet`` in PyTorch: eager or ``torch.compile``, float32 or autocast fp16/bf16, with the
    models' attention ops on their PyTorch references or on the fused Triton kernels."""

    def __init__(self, model: Any, choice: BackendChoice, *, device: str, compile_backend: str = "inductor",
                 allow_emulated_bf16: bool = True) -> None:
        super().__init__()
        import torch

        self._torch = torch
        self.name, self.precision = choice.name, choice.precision
        self.device = device
        cuda = device.startswith("cuda")
        if cuda and not torch.cuda.is_available():
            raise Unavailable("PyTorch sees no CUDA GPU")
        if choice.precision == "fp16" and not cuda:
            raise Unavailable("float16 runs on CUDA only; on CPU use bf16 (autocast bfloat16)")
        if choice.triton:
            if not cuda:
                raise Unavailable("the fused Triton kernels run on CUDA GPUs; on CPU Triton has only its "
                                  "interpreter, a correctness tool, not a fast path")
            try:
                import triton  # noqa: F401
            except ImportError as exc:
                raise Unavailable(f"triton is not installed ({exc})") from None
        if choice.precision == "bf16" and not cuda:
            from .devices import cpu_emulates

            why = cpu_emulates("bf16")
            if why is not None:
                if not allow_emulated_bf16:
                    raise Unavailable(f"not run by default: {why}; ask for it with --backends torch-bf16")
                self.notes.append(why)
        self._kernels = "triton" if choice.triton else "reference"
        self._autocast = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(choice.precision)
        self._compile = choice.compile
        self._compile_backend = compile_backend
        self.model = model.to(device).eval()
        self._fn: Any = self.model
        self._x: Any = None
        self._compiled_for: tuple[int, int, int] | None = None

    def activate(self) -> contextlib.AbstractContextManager[None]:
        return kernel_mode(self._kernels)

    def _forward(self, x: Any) -> Any:
        torch = self._torch
        with torch.inference_mode(), torch.autocast(torch.device(self.device).type, dtype=self._autocast,
                                                    enabled=self._autocast is not None):
            return self._fn(x)

    def prepare(self, batch: int, height: int, width: int) -> None:
        torch = self._torch
        lo, hi = self.model.input_range
        self._x = torch.from_numpy(_random_input((batch, 3, height, width), (lo, hi))).to(self.device)
        if self._compile and self._compiled_for != (batch, height, width):
            # A fresh compile per shape: the cost of the first call is the compile time reported, and
            # no shape runs on a graph recompiled as dynamic by an earlier one.
            torch._dynamo.reset()
            try:
                self._fn = torch.compile(self.model, backend=self._compile_backend, dynamic=False)
                start = time.perf_counter()
                with self.activate():
                    self._forward(self._x)
                self._sync()
                self.setup_seconds = time.perf_counter() - start
            except Exception as exc:  # Inductor raises many types (no compiler, codegen failures)
                self._fn = self.model
                raise Unavailable(f"torch.compile ({self._compile_backend}) failed: {type(exc).__name__}: "
                                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
            self._compiled_for = (batch, height, width)

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            self._torch.cuda.synchronize(self.device)

    def run_device(self) -> None:
        self._forward(self._x)

    def run_host(self, batch: np.ndarray, out: np.ndarray) -> None:
        x = self._torch.from_numpy(batch).to(self.device)
        y = self._forward(x)
        out[...] = y.float().cpu().numpy()   # .cpu() waits for the GPU

    def device_clock(self) -> Clock:
        return CudaEventClock(self._torch) if self.device.startswith("cuda") else HostClock()

    def host_clock(self) -> Clock:
        return HostClock(self._sync if self.device.startswith("cuda") else None)

    def close(self) -> None:
        if self._compile:
            self._torch._dynamo.reset()
        self._x = None
        self._fn = self.model = None


# --------------------------------------------------------------------------- ONNX Runtime
class OrtRunner(Runner):
    """An ONNX file in ONNX Runtime through the SDK's own backend (CPU or CUDA execution provider)."""

    def __init__(self, onnx_path: Path, choice: BackendChoice, *, threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        from sdk.backends.onnxruntime import OnnxRuntimeBackend

        self.name, self.precision = choice.name, "fp32"
        self._ort = ort
        if choice.provider == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise Unavailable(f"this onnxruntime has no CUDA execution provider ({', '.join(ort.get_available_providers())}); "
                              "install onnxruntime-gpu")
        self.backend = OnnxRuntimeBackend(onnx_path, device=choice.provider, threads=threads)
        active = self.backend.session.get_providers()
        if choice.provider == "cuda" and active[0] != "CUDAExecutionProvider":
            raise Unavailable(f"ONNX Runtime did not start its CUDA provider (active: {active})")
        self.device = "cuda" if choice.provider == "cuda" else "cpu"
        self.notes.append(f"providers: {', '.join(active)}; intra-op threads: {threads or 'ORT default'}")
        self._x: Any = None
        self._y: Any = None
        self._binding: Any = None

    def prepare(self, batch: int, height: int, width: int) -> None:
        manifest = self.backend.manifest
        x = _random_input((batch, manifest.in_channels, height, width), manifest.value_range)
        if self.device == "cpu":
            self._x, self._y = x, np.empty((batch, 3, height, width), np.float32)
            return
        # Device-resident input and output: the timed run moves no data over PCIe.
        names = self.backend.describe()
        self._x = self._ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
        self._binding = self.backend.session.io_binding()
        self._binding.bind_ortvalue_input(names["input"], self._x)
        self._binding.bind_output(names["output"], "cuda")

    def run_device(self) -> None:
        if self.device == "cpu":
            self.backend.infer(self._x, self._y)
        else:
            # run_with_iobinding returns once the CUDA provider has synchronised its stream.
            self.backend.session.run_with_iobinding(self._binding)

    def run_host(self, batch: np.ndarray, out: np.ndarray) -> None:
        self.backend.infer(batch, out)

    def close(self) -> None:
        self._binding = self._x = self._y = None
        self.backend.close()


# --------------------------------------------------------------------------- TensorRT
class TensorRTRunner(Runner):
    """An FP16 engine built from the ONNX (``export.tensorrt.ensure_engine``, cached), run by the SDK's
    TensorRT backend for host timings and by a second execution context on PyTorch CUDA tensors,
    between CUDA events, for device timings."""

    def __init__(self, onnx_path: Path, choice: BackendChoice, *, profile: Any) -> None:
        super().__init__()
        self.name, self.precision, self.device = choice.name, "fp16", "cuda"
        try:
            from export.tensorrt import BuildOptions, ensure_engine, import_tensorrt

            trt = import_tensorrt()
        except ImportError as exc:
            raise Unavailable(str(exc)) from None
        try:
            import torch
        except ImportError:
            raise Unavailable("device-only TensorRT timing uses PyTorch CUDA tensors; PyTorch is not installed") from None
        if not torch.cuda.is_available():
            raise Unavailable("TensorRT needs a CUDA GPU; PyTorch sees none")
        from sdk.backends.tensorrt import TensorRTBackend

        self._trt, self._torch = trt, torch
        start = time.perf_counter()
        engine_path = ensure_engine(onnx_path, TRT_CACHE, BuildOptions(precision="fp16", profile=profile))
        self.setup_seconds = time.perf_counter() - start
        self.backend = TensorRTBackend(engine_path)
        self._context = self.backend.engine.create_execution_context()
        engine = self.backend.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._input = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self._outputs = [n for n in names if n != self._input]
        self.notes.append(f"engine {engine_path} (TensorRT {trt.__version__}, FP16), built or loaded in "
                          f"{self.setup_seconds:.1f} s")
        self._tensors: dict[str, Any] = {}

    def _torch_dtype(self, name: str) -> Any:
        trt, torch = self._trt, self._torch
        return {trt.float32: torch.float32, trt.float16: torch.float16}[self.backend.engine.get_tensor_dtype(name)]

    def prepare(self, batch: int, height: int, width: int) -> None:
        torch = self._torch
        manifest = self.backend.manifest
        x = torch.from_numpy(_random_input((batch, 3, height, width), manifest.value_range)).cuda()
        x = x.to(self._torch_dtype(self._input))
        if not self._context.set_input_shape(self._input, tuple(x.shape)):
            raise ValueError(f"TensorRT rejected input shape {tuple(x.shape)}")
        self._tensors = {self._input: x}
        for name in self._outputs:
            shape = tuple(self._context.get_tensor_shape(name))
            self._tensors[name] = torch.empty(shape, dtype=self._torch_dtype(name), device="cuda")
        for name, tensor in self._tensors.items():
            self._context.set_tensor_address(name, tensor.data_ptr())

    def run_device(self) -> None:
        if not self._context.execute_async_v3(self._torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")

    def run_host(self, batch: np.ndarray, out: np.ndarray) -> None:
        self.backend.infer(batch, out)   # synchronises its own stream before returning

    def device_clock(self) -> Clock:
        return CudaEventClock(self._torch)

    def close(self) -> None:
        self._tensors = {}
        self._context = None
        self.backend.close()


def make_runner(name: str, *, model: Any, onnx_path: Path | None, device: str, threads: int | None = None,
                compile_backend: str = "inductor", trt_profile: Any = None, no_torch_reason: str = "",
                no_onnx_reason: str = "", allow_emulated_bf16: bool = True) -> Runner:
    """The runner for backend ``name``; :class:`Unavailable` (with why) when it cannot run here."""
    choice = parse_backend(name)
    if choice.family == "torch":
        if model is None:
            raise Unavailable(no_torch_reason or "no PyTorch weights for this model")
        return TorchRunner(model, choice, device=device, compile_backend=compile_backend,
                           allow_emulated_bf16=allow_emulated_bf16)
    if onnx_path is None:
        raise Unavailable(no_onnx_reason or "no ONNX file for this model")
    if choice.family == "ort":
        return OrtRunner(onnx_path, choice, threads=threads)
    if trt_profile is None:
        raise Unavailable("no TensorRT shape profile given")
    return TensorRTRunner(onnx_path, choice, profile=trt_profile)
