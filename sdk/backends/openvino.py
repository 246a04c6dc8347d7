"""OpenVINO backend: an ONNX file or an OpenVINO IR (``.xml`` + ``.bin``) on the CPU.

Precision: ``fp32``; ``bf16`` (OpenVINO's inference-precision hint, native on CPUs with AVX-512 BF16 or
AMX; elsewhere it falls back to fp32 with a warning rather than run an emulation slower than fp32);
``int8`` is a property of the model file: an IR quantised by ``deblur export --to openvino --precision
int8`` (NNCF post-training quantisation), which runs with int8 kernels whatever the hint.

Frames of a new size reshape the network and compile it once for that size; compiled models are kept
per (batch, height, width), the least recently used dropped past :data:`MAX_COMPILED_SIZES`, so a
stream of one size never recompiles. The manifest comes from the model's ``rt_info`` (key
``deblur_manifest`` in an IR that ``deblur export`` wrote; ONNX ``metadata_props`` appear there under
``framework``), else a sidecar ``<model>.json``, else defaults with a warning.

Example::

    >>> backend = OpenVINOBackend("model.xml", precision="bf16", threads=2)
    >>> backend.infer(batch, out)          # batch, out: (1, 3, H, W) float32
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

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

MAX_COMPILED_SIZES = 4
# The OpenVINO names of the precision hints, and the CPU capability each needs natively.
_HINTS = {"fp32": "f32", "bf16": "bf16"}
_NATIVE = {"bf16": "BF16"}


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise ImportError("OpenVINO is not installed: pip install 'deblur-sdk[openvino]' "
                          "(or run the .onnx with backend='onnxruntime')") from None
    return openvino


def read_manifest(model: Any, path: Path) -> tuple[Manifest, str]:
    """The manifest in ``rt_info`` (IR or ONNX metadata), else a sidecar, else defaults (with a warning)."""
    for keys, source in (([ONNX_METADATA_KEY], "rt_info"), (["framework", ONNX_METADATA_KEY], "metadata_props")):
        if model.has_rt_info(keys):
            text = model.get_rt_info(keys).astype(str)
            return Manifest.from_json(text, source=f"{path} {source} {ONNX_METADATA_KEY!r}"), source
    try:
        return Manifest.read_sidecar(path), "sidecar"
    except ManifestError:
        pass
    manifest = default_manifest(path.stem, input_name=model.inputs[0].get_any_name(),
                                output_name=model.outputs[-1].get_any_name())
    warnings.warn(missing_manifest_warning(str(path), manifest), stacklevel=4)
    return manifest, "defaults"


def cpu_precisions(core: Any) -> tuple[str, ...]:
    """What the CPU plugin computes natively, e.g. ``('BF16', 'FP32', 'INT8', ...)``."""
    return tuple(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


_CORE: Any = None
_CORE_LOCK = threading.Lock()


def shared_core(ov: Any) -> Any:
    """The process's one ``openvino.Core``, created on first use and kept until exit.

    One Core per backend crashed processes: each Core's CPU plugin installs an alternate signal stack
    on the calling thread and, when destroyed, restores the one it found, so Cores destroyed in creation
    order left the thread's signal stack pointing at unmapped memory, and the next signal that thread
    received (SIGCHLD from any child process, SIGINT, SIGTERM) killed the process with SIGSEGV. Every
    setting here goes to ``compile_model``, so sharing the Core shares no configuration.
    """
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            _CORE = ov.Core()
        return _CORE


class OpenVINOBackend(Backend):
    """An OpenVINO model compiled for the CPU behind the :class:`Backend` interface.

    ``threads`` sets OpenVINO's inference threads (its default is every core).
    """

    name = "openvino"

    def __init__(self, path: str | os.PathLike[str], *, device: str = "auto", precision: str | None = None,
                 threads: int | None = None) -> None:
        ov = import_openvino()
        self._ov = ov
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"OpenVINO model not found: {self.path}")
        if device.partition(":")[0] not in ("auto", "cpu"):
            raise ValueError(f"the openvino backend runs on the CPU, not device={device!r}")
        if self.path.suffix.lower() == ".xml" and not self.path.with_suffix(".bin").is_file():
            raise ModelLoadError(f"{self.path}: its weights {self.path.with_suffix('.bin').name} are missing "
                                 "(an OpenVINO IR is an .xml and a .bin side by side)")
        self.core = shared_core(ov)
        try:
            self.model = self.core.read_model(str(self.path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own for bad files
            raise ModelLoadError(f"{self.path} is not a loadable OpenVINO/ONNX model (corrupt or truncated?): "
                                 f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}") from None
        self.manifest, self.manifest_source = read_manifest(self.model, self.path)
        self.device = "cpu"
        self.native = cpu_precisions(self.core)
        self.precision = self._choose_precision(precision)
        self._config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if self.precision in _HINTS:
            self._config["INFERENCE_PRECISION_HINT"] = _HINTS[self.precision]
        self.threads = threads
        if threads:
            self._config["INFERENCE_NUM_THREADS"] = int(threads)
        self._input = self._pick(self.model.inputs, self.manifest.input_name, "input")
        self._output = self._pick(self.model.outputs, self.manifest.final_output, "output",
                                  fallback=self.manifest.output_name)
        check_image_to_image(self.path, self.manifest, self.manifest_source,
                             [self._info(p) for p in self.model.inputs], [self._info(p) for p in self.model.outputs],
                             self._info(self.model.inputs[self._input]), self._info(self.model.outputs[self._output]))
        self.limits = self._limits()
        self._compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    # ------------------------------------------------------------------ set-up helpers
    def _choose_precision(self, asked: str | None) -> str:
        quantised = self.manifest.precision == "int8"
        if asked in (None, "auto"):
            asked = self.manifest.precision if self.manifest.precision in ("bf16", "int8") else "fp32"
        if asked == "int8" and not quantised:
            raise ValueError(f"{self.path} is not quantised: int8 needs an NNCF-quantised IR, made by "
                             f"`deblur export {self.path.name} --to openvino --precision int8 --calibration FRAMES`")
        if quantised and asked != "int8":
            # The weights and activations are int8 in the graph: a precision hint cannot undo that.
            raise ValueError(f"{self.path} is an int8 model; run its float source for precision {asked!r}")
        if asked in _NATIVE and _NATIVE[asked] not in self.native:
            warnings.warn(f"this CPU has no native {asked} (OpenVINO reports {', '.join(self.native)}; bf16 needs "
                          "AVX-512 BF16 or AMX): running in fp32 instead", RuntimeWarning, stacklevel=4)
            return "fp32"
        return asked

    def _pick(self, ports: list[Any], wanted: str, kind: str, fallback: str | None = None) -> int:
        names = [set(p.get_names()) for p in ports]
        for name in (wanted, fallback):
            for i, port_names in enumerate(names):
                if name in port_names:
                    return i
        if len(ports) == 1 or kind == "output":
            return len(ports) - 1   # the final image is the last output by convention
        raise ModelLoadError(f"{self.path}: the manifest names {kind} {wanted!r}, but the model's {kind}s are "
                             f"{[sorted(n) for n in names]}")

    @staticmethod
    def _info(port: Any) -> TensorInfo:
        shape = port.get_partial_shape()
        dims = () if shape.rank.is_dynamic else tuple(d.get_length() if d.is_static else None for d in shape)
        return port.get_any_name(), dims

    def _limits(self) -> ShapeLimits:
        limits = ShapeLimits.from_profile(self.manifest.shape_profile)
        shape = self.model.inputs[self._input].get_partial_shape()
        if shape.rank.is_dynamic or shape.rank.get_length() != 4:
            raise ModelLoadError(f"{self.path}: input has shape {shape}; expected (N, C, H, W)")
        dims = [d.get_length() if d.is_static else None for d in shape]
        if dims[1] is not None and dims[1] != self.manifest.in_channels:
            raise ModelLoadError(f"{self.path}: input has {dims[1]} channels but the manifest says "
                                 f"{self.manifest.in_channels}")
        if dims[0] is not None:
            limits = ShapeLimits(dims[0], dims[0], limits.min_hw, limits.max_hw)
        if dims[2] is not None and dims[3] is not None:
            limits = ShapeLimits(limits.min_batch, limits.max_batch, (dims[2], dims[3]), (dims[2], dims[3]))
        return limits

    def _request(self, shape: tuple[int, ...]) -> Any:
        """The infer request compiled for ``shape``: reshaped and compiled on first use, then reused."""
        request = self._compiled.get(shape)
        if request is not None:
            self._compiled.move_to_end(shape)
            return request
        self.model.reshape({self.model.inputs[self._input]: self._ov.PartialShape(list(shape))})
        try:
            compiled = self.core.compile_model(self.model, "CPU", self._config)
        except Exception as exc:
            raise RuntimeError(f"OpenVINO could not compile {self.path} for input {shape}: {exc}") from None
        request = compiled.create_infer_request()
        self._compiled[shape] = request
        while len(self._compiled) > MAX_COMPILED_SIZES:
            self._compiled.popitem(last=False)
        return request

    # ------------------------------------------------------------------ inference
    def infer(self, batch: np.ndarray, out: np.ndarray) -> None:
        shape = tuple(int(d) for d in batch.shape)
        self.limits.check(shape)
        request = self._request(shape)
        ov = self._ov
        # Shared tensors: OpenVINO reads the caller's batch and writes the caller's out, no copies.
        request.set_input_tensor(self._input, ov.Tensor(np.ascontiguousarray(batch, np.float32), shared_memory=True))
        request.set_output_tensor(self._output, ov.Tensor(out, shared_memory=True))
        try:
            request.infer()
        except Exception as exc:
            raise RuntimeError(f"OpenVINO failed on a {shape} input: {exc}") from None

    def fp32_fallback(self) -> Backend:
        if self.precision == "bf16":
            return OpenVINOBackend(self.path, precision="fp32", threads=self.threads)
        return super().fp32_fallback()

    def describe(self) -> dict[str, str]:
        return {"openvino": self._ov.__version__.split("-")[0],
                "cpu": str(self.core.get_property("CPU", "FULL_DEVICE_NAME")),
                "native": ", ".join(self.native),
                "bf16": "native" if "BF16" in self.native else "not native (needs AVX-512 BF16 or AMX)",
                "threads": str(self.threads or "OpenVINO default"),
                "compiled": ", ".join("x".join(map(str, s)) for s in self._compiled) or "none yet"}

    def close(self) -> None:
        self._compiled.clear()
        self.model = None
