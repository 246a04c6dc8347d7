"""ONNX Runtime backend: TensorRT or CUDA execution provider when present, CPU otherwise.

The manifest comes from the model's ``metadata_props`` (key :data:`sdk.manifest.ONNX_METADATA_KEY`),
read through ONNX Runtime itself, so the ``onnx`` package is not needed at run time. Input and output
are bound with IOBinding, so the result lands in the caller's reused buffer. On the CPU provider a
binding only references host memory and is kept while buffers and shape stay the same; on the CUDA and
TensorRT providers ONNX Runtime copies a host input to the device when it is *bound*, so the input is
bound again on every call (otherwise every frame would re-run the first frame's copy).

Example::

    >>> backend = OnnxRuntimeBackend("model.onnx", device="cpu")
    >>> backend.infer(batch, out)          # batch, out: (1, 3, H, W) float32
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..files import cache_dir
from ..manifest import ONNX_METADATA_KEY, Manifest, ManifestError
from .base import (
    Backend,
    ModelLoadError,
    ShapeLimits,
    TensorInfo,
    check_image_to_image,
    default_manifest,
    missing_manifest_warning,
)

# Engines built by ONNX Runtime's TensorRT provider are cached here, keyed by ORT itself.
TRT_CACHE_DIR = cache_dir("ort-tensorrt")

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def select_providers(device: str, available: list[str], *, fp16: bool) -> list[Any]:
    """Execution providers for ``device`` ("auto", "cpu", "cuda", "cuda:N", "tensorrt"), fastest first."""
    kind, _, index = device.partition(":")
    device_id = int(index) if index.isdigit() else 0
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    providers: list[Any] = []
    if kind in ("auto", "tensorrt") and "TensorrtExecutionProvider" in available:
        providers.append(("TensorrtExecutionProvider", {
            "device_id": device_id, "trt_fp16_enable": fp16, "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(TRT_CACHE_DIR), "trt_timing_cache_enable": True,
        }))
    if kind in ("auto", "cuda", "tensorrt") and "CUDAExecutionProvider" in available:
        providers.append(("CUDAExecutionProvider", {"device_id": device_id}))
    if kind in ("cuda", "tensorrt") and not providers:
        raise RuntimeError(
            f"device={device!r} asked for, but this onnxruntime has only {available}; "
            "install onnxruntime-gpu or use device='cpu'"
        )
    providers.append("CPUExecutionProvider")
    return providers


def read_onnx_manifest(session: Any, path: Path) -> tuple[Manifest, str]:
    """The manifest in ``metadata_props``, else a sidecar ``<model>.onnx.json``, else defaults (with a warning)."""
    meta = session.get_modelmeta().custom_metadata_map
    if ONNX_METADATA_KEY in meta:
        return Manifest.from_onnx_metadata(meta, source=str(path)), "metadata_props"
    try:
        return Manifest.read_sidecar(path), "sidecar"
    except ManifestError:
        pass
    inputs, outputs = session.get_inputs(), session.get_outputs()
    manifest = default_manifest(path.stem, input_name=inputs[0].name, output_name=outputs[-1].name)
    warnings.warn(missing_manifest_warning(str(path), manifest), stacklevel=4)
    return manifest, "defaults"


class OnnxRuntimeBackend(Backend):
    """An ``onnxruntime.InferenceSession`` behind the :class:`Backend` interface.

    ``threads`` sets ONNX Runtime's intra-op thread count (its default is every core).
    """

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike[str], *, device: str = "auto", precision: str | None = None,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        if precision not in (None, "fp32", "fp16"):
            raise ValueError(f"ONNX Runtime runs precision 'fp32' or 'fp16', not {precision!r}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        providers = select_providers(device, ort.get_available_providers(), fp16=precision == "fp16")
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own pybind classes (InvalidProtobuf, Fail, ...)
            raise ModelLoadError(f"{self.path} is not a loadable ONNX model (corrupt or truncated?): {exc}") from None
        self.manifest, self.manifest_source = read_onnx_manifest(self.session, self.path)
        self._input = self._pick(self.session.get_inputs(), self.manifest.input_name, "input")
        self._output = self._pick(self.session.get_outputs(), self.manifest.final_output, "output",
                                  fallback=self.manifest.output_name)
        self._check_image_to_image()
        self._in_dtype = self._numpy_type(self._input)
        self._out_dtype = self._numpy_type(self._output)
        active = self.session.get_providers()
        # Only the TensorRT provider can run a float32 graph in half precision; say so rather than pretend.
        trt_fp16 = precision == "fp16" and active[0] == "TensorrtExecutionProvider"
        if precision == "fp16" and not trt_fp16 and self._in_dtype != np.float16:
            warnings.warn(f"precision='fp16' needs ONNX Runtime's TensorRT provider (active: {active}); "
                          "running the float32 graph in float32", stacklevel=4)
        self.precision = "fp16" if trt_fp16 or self._in_dtype == np.float16 else self.manifest.precision
        self.device = "cpu" if active[0] == "CPUExecutionProvider" else device if device != "auto" else "cuda"
        self.limits = self._limits()
        self._binding = self.session.io_binding()
        # Host-input bindings can be reused only where the session reads host memory at run time (see module doc).
        self._reuse_input_binding = active[0] == "CPUExecutionProvider"
        self._bound_input: tuple[int, tuple[int, ...]] | None = None
        self._bound_output: tuple[int, tuple[int, ...]] | None = None
        self._cast_in: np.ndarray | None = None
        self._cast_out: np.ndarray | None = None

    # ------------------------------------------------------------------ set-up helpers
    def _pick(self, tensors: list[Any], wanted: str, kind: str, fallback: str | None = None) -> Any:
        names = [t.name for t in tensors]
        for name in (wanted, fallback):
            if name in names:
                return tensors[names.index(name)]
        if len(tensors) == 1 or kind == "output":
            # One tensor, or a manifest from another exporter: the final image is the last output by convention.
            return tensors[-1]
        raise ModelLoadError(f"{self.path}: the manifest names {kind} {wanted!r}, but the model's {kind}s are {names}")

    def _check_image_to_image(self) -> None:
        def info(t: Any) -> TensorInfo:   # ONNX Runtime gives dynamic dims as names or None
            return t.name, tuple(d if isinstance(d, int) and d > 0 else None for d in t.shape)

        check_image_to_image(self.path, self.manifest, self.manifest_source,
                             [info(t) for t in self.session.get_inputs()], [info(t) for t in self.session.get_outputs()],
                             info(self._input), info(self._output))

    def _numpy_type(self, tensor: Any) -> type:
        try:
            return _NUMPY_TYPES[tensor.type]
        except KeyError:
            raise ModelLoadError(f"{self.path}: tensor {tensor.name!r} is {tensor.type}; expected float or float16") from None

    def _limits(self) -> ShapeLimits:
        limits = ShapeLimits.from_profile(self.manifest.shape_profile)
        shape = self._input.shape     # (N, C, H, W): checked by _check_image_to_image
        fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
        if fixed[0] is not None:
            limits = ShapeLimits(fixed[0], fixed[0], limits.min_hw, limits.max_hw)
        if fixed[2] is not None and fixed[3] is not None:
            # A static-shape export: every call must be exactly this size, so the runtime pads or tiles to it.
            limits = ShapeLimits(limits.min_batch, limits.max_batch, (fixed[2], fixed[3]), (fixed[2], fixed[3]))
        return limits

    # ------------------------------------------------------------------ inference
    def infer(self, batch: np.ndarray, out: np.ndarray) -> None:
        self.limits.check(batch.shape)
        feed, result = batch, out
        if self._in_dtype != np.float32:
            self._cast_in = _reuse(self._cast_in, batch.shape, self._in_dtype)
            np.copyto(self._cast_in, batch, casting="unsafe")
            feed = self._cast_in
        if self._out_dtype != np.float32:
            self._cast_out = _reuse(self._cast_out, out.shape, self._out_dtype)
            result = self._cast_out
        self._bind(feed, result)
        try:
            self.session.run_with_iobinding(self._binding)
        except Exception as exc:
            self._bound_input = self._bound_output = None
            raise RuntimeError(f"ONNX Runtime failed on a {tuple(batch.shape)} input: {exc}") from None
        if result is not out:
            np.copyto(out, result, casting="unsafe")

    def _bind(self, feed: np.ndarray, result: np.ndarray) -> None:
        in_key = (feed.ctypes.data, feed.shape)
        if in_key != self._bound_input or not self._reuse_input_binding:
            # On a GPU provider this is where the host->device copy happens, so it runs for every frame.
            self._binding.clear_binding_inputs()
            self._binding.bind_cpu_input(self._input.name, feed)
            self._bound_input = in_key
        out_key = (result.ctypes.data, result.shape)
        if out_key != self._bound_output:
            # A host output is filled after each run on every provider: rebinding only when it moves is safe.
            self._binding.clear_binding_outputs()
            self._binding.bind_output(self._output.name, "cpu", 0, result.dtype, result.shape, result.ctypes.data)
            self._bound_output = out_key

    def device_call(self, batch: np.ndarray) -> Callable[[], None]:
        if self._reuse_input_binding:   # the CPU provider: host memory is its device memory
            return super().device_call(batch)
        # Input and output stay on the GPU: the timed call moves no data over PCIe.
        import onnxruntime as ort

        self.limits.check(batch.shape)
        device_id = int(self.device.partition(":")[2] or 0)
        x = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(batch, self._in_dtype), "cuda", device_id)
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self._input.name, x)
        binding.bind_output(self._output.name, "cuda", device_id)

        def run() -> None:
            self.session.run_with_iobinding(binding)   # returns once the provider has synchronised its stream
            _ = x                                        # the bound input lives as long as the call

        return run

    def fp32_fallback(self) -> Backend:
        if self.precision == "fp16" and self._in_dtype == np.float32:
            # Reduced precision came from the TensorRT provider's fp16 flag: the same graph runs in fp32.
            return OnnxRuntimeBackend(self.path, device=self.device, precision="fp32")
        return super().fp32_fallback()

    def describe(self) -> dict[str, str]:
        return {"providers": ", ".join(self.session.get_providers()), "input": self._input.name,
                "output": self._output.name}

    def close(self) -> None:
        self._binding = None
        self.session = None


def _reuse(buffer: np.ndarray | None, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
        return np.empty(shape, dtype)
    return buffer
