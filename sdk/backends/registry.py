"""The one table of inference backends: who opens which file, on which devices, in which precisions.

A backend is one module with one :class:`~sdk.backends.base.Backend` subclass plus one
:class:`BackendSpec` in :data:`REGISTRY`. :func:`sdk.backends.open_backend`, ``deblur run/info/bench``,
``deblur export --to`` and the benchmarks all read this table, so adding a backend touches nothing else.
Nothing here imports a backend's library: :meth:`BackendSpec.installed` only asks whether it could be.

Example::

    >>> from sdk.backends.registry import resolve, spec
    >>> spec("openvino").suffixes
    ('.xml', '.onnx')
    >>> resolve(Path("model.xml")).name
    'openvino'
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Backend

# "tensorrt" asks ONNX Runtime for its TensorRT provider; ":N" picks the GPU.
DEVICE_KINDS = ("auto", "cpu", "cuda", "tensorrt")
INDEXED_DEVICE_KINDS = ("cuda", "tensorrt")
DEVICES = "'auto', 'cpu', 'cuda', 'cuda:N', 'tensorrt' or 'tensorrt:N'"


@dataclass(frozen=True)
class BackendSpec:
    """What one backend declares about itself.

    ``devices`` are the device kinds it runs on; ``precisions`` what ``precision=`` may ask for
    (empty: fixed when the artefact was built, as for TensorRT engines). ``library`` is the import
    name whose presence means "installed"; ``install`` says how to get it. ``export_suffix`` is the
    file ``deblur export --to <export_as>`` writes for it (None: it runs what another exporter writes).
    """

    name: str
    module: str
    class_name: str
    suffixes: tuple[str, ...]
    devices: tuple[str, ...]
    precisions: tuple[str, ...]
    library: str
    install: str
    export_suffix: str | None = None
    export_as: str | None = None
    summary: str = ""
    # "module:function" that raises ImportError where an importable library is not the real one
    # (tensorrt-stubs installs a bare ``tensorrt``); None: importable means installed.
    probe: str | None = None

    def installed(self) -> bool:
        """Whether this backend's library is here (found without importing it, then probed if declared)."""
        try:
            if importlib.util.find_spec(self.library) is None:
                return False
        except (ImportError, ValueError):
            return False
        if self.probe is None:
            return True
        module, _, function = self.probe.partition(":")
        try:
            getattr(importlib.import_module(module), function)()
        except ImportError:
            return False
        return True

    def load(self) -> type[Backend]:
        """The backend class (imports its module, which imports its library when it is built)."""
        cls: type[Backend] = getattr(importlib.import_module(self.module), self.class_name)
        return cls

    def runs_on(self, device: str) -> bool:
        kind = device.partition(":")[0]
        if kind == "auto":
            # A CPU-only backend is what "auto" means only where no GPU runtime is at hand.
            return self.devices != ("cpu",) or not gpu_runtime_available()
        return kind in self.devices


# Preference order for backend="auto": the first installed backend that opens the file on the device wins.
# OpenVINO precedes ONNX Runtime for .onnx on CPUs (faster there; see benchmarks/results), and only there.
REGISTRY: tuple[BackendSpec, ...] = (
    BackendSpec("tensorrt", "sdk.backends.tensorrt", "TensorRTBackend", (".engine", ".plan", ".trt"),
                ("auto", "cuda", "tensorrt"), (), "tensorrt", "pip install 'deblur-sdk[trt]' (desktop) or JetPack's "
                "python3-libnvinfer", ".engine", "engine", "TensorRT engine (NVIDIA GPUs, Jetson)",
                probe="sdk.backends.tensorrt:import_tensorrt"),
    BackendSpec("openvino", "sdk.backends.openvino", "OpenVINOBackend", (".xml", ".onnx"), ("cpu",),
                ("fp32", "bf16", "int8"), "openvino", "pip install 'deblur-sdk[openvino]'", ".xml", "openvino",
                "OpenVINO (x86 and Arm CPUs): IR or ONNX, fp32 / bf16 / int8"),
    BackendSpec("onnxruntime", "sdk.backends.onnxruntime", "OnnxRuntimeBackend", (".onnx",), DEVICE_KINDS,
                ("fp32", "fp16"), "onnxruntime", "pip install onnxruntime (or onnxruntime-gpu)", ".onnx", "onnx",
                "ONNX Runtime: CPU, CUDA or TensorRT execution provider"),
    BackendSpec("torch", "sdk.backends.torch", "TorchBackend", (".pt", ".pth", ".ckpt"), ("auto", "cpu", "cuda"),
                ("fp32", "bf16", "fp16"), "torch", "pip install 'deblur-sdk[train]'", None, None,
                "PyTorch checkpoint (training weights), Triton kernels on CUDA"),
)
BACKENDS = ("auto", *(s.name for s in REGISTRY))


def gpu_runtime_available() -> bool:
    """Whether this ONNX Runtime has a GPU execution provider (then "auto" keeps .onnx on ONNX Runtime)."""
    try:
        import onnxruntime
    except ImportError:
        return False
    return bool({"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(onnxruntime.get_available_providers()))


def export_targets() -> dict[str, BackendSpec]:
    """``deblur export --to`` choices: {"engine": tensorrt, "openvino": openvino, "onnx": onnxruntime}."""
    return {s.export_as: s for s in REGISTRY if s.export_as}


def spec(name: str) -> BackendSpec:
    """The registry entry called ``name``; ValueError listing the names otherwise."""
    for entry in REGISTRY:
        if entry.name == name:
            return entry
    raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")


def suffixes() -> tuple[str, ...]:
    """Every model file suffix some backend opens."""
    return tuple(dict.fromkeys(s for entry in REGISTRY for s in entry.suffixes))


def check_device(device: str) -> None:
    """Raise ``ValueError`` listing the accepted values unless ``device`` is one of :data:`DEVICES`."""
    kind, sep, index = device.partition(":") if isinstance(device, str) else ("", "", "")
    if kind not in DEVICE_KINDS or (sep and (kind not in INDEXED_DEVICE_KINDS or not index.isdigit())):
        raise ValueError(f"device must be {DEVICES}, got {device!r}")


def resolve(path: Path, backend: str = "auto", device: str = "auto", precision: str | None = None) -> BackendSpec:
    """The backend that runs ``path`` on ``device``: the one asked for (checked), or the first in
    :data:`REGISTRY` that opens the suffix, runs on the device, offers ``precision`` and is installed.

    Where none of the fitting backends is installed the first fitting one is returned, so that
    opening it raises its own ImportError saying how to install it.
    """
    suffix = path.suffix.lower()
    openers = [s for s in REGISTRY if suffix in s.suffixes]
    if backend != "auto":
        chosen = spec(backend)
        if chosen not in openers:
            kinds = ", ".join(s.name for s in openers) or "no backend"
            raise ValueError(f"{path} ({suffix or 'no suffix'}) is opened by {kinds}; backend={backend!r} cannot run "
                             f"it (it opens {', '.join(chosen.suffixes)}; `deblur export --to` converts)")
        if not chosen.runs_on(device) and device.partition(":")[0] != "auto":
            raise ValueError(f"the {chosen.name} backend runs on {', '.join(chosen.devices)}, not device={device!r}")
        return chosen
    if not openers:
        raise ValueError(f"{path}: unknown model type {suffix!r}; expected one of {sorted(suffixes())}")
    fitting = [s for s in openers if s.runs_on(device)]
    if precision not in (None, "auto"):
        # A backend whose precision is fixed at build time is still the one to say so.
        fitting = [s for s in fitting if precision in s.precisions or not s.precisions] or fitting
    if not fitting:
        raise ValueError(f"no backend runs {suffix} files on device={device!r} "
                         f"({'; '.join(f'{s.name}: {s.devices}' for s in openers)})")
    return next((s for s in fitting if s.installed()), fitting[0])
