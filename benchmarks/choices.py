"""Benchmark backend names -> the SDK's own backends, opened through the one registry.

A benchmark runs exactly what a user runs: every name below opens an :class:`sdk.backends.Backend`
(the registry's class for that backend), and the benchmarks time its :meth:`~sdk.backends.Backend.infer`,
its :meth:`~sdk.backends.Backend.device_call` and :class:`sdk.Deblurrer` around it. No second
family of runner classes, no second TensorRT execution context.

Names: ``<registry backend>[-<variant>][-<precision>]``:

- ``torch[-compile|-triton][-fp32|-bf16|-fp16]``: :class:`sdk.backends.torch.TorchBackend` on the
  network in memory (``compile``: ``torch.compile``; ``triton``: the fused kernels, CUDA only);
- ``ort-cpu``, ``ort-cuda`` (``onnxruntime-cpu``/``-cuda``): ONNX Runtime on the ONNX file;
- ``openvino[-fp32|-bf16|-int8]``: OpenVINO on the ONNX or IR; int8 needs an NNCF-quantised IR
  (given, or made from calibration frames with :func:`export.openvino.export_openvino`);
- ``tensorrt``: an FP16 engine (given, or built and cached from the ONNX).

A backend the machine cannot run raises :class:`Unavailable` with the reason, which the results list.

Example::

    >>> choice = parse_backend("openvino-bf16")
    >>> backend, notes = open_for_bench(choice, mut, BenchContext(device="cpu", threads=1))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.backends import Backend, open_backend
from sdk.backends.registry import spec
from sdk.files import cache_dir

DEFAULT_BACKENDS = ("torch-fp32", "torch-bf16", "torch-fp16", "torch-compile", "torch-triton", "torch-triton-fp16",
                    "ort-cpu", "ort-cuda", "openvino-fp32", "openvino-bf16", "openvino-int8", "tensorrt")
# What `deblur bench` runs on a model file in a runtime-only install: every CPU and GPU path, no PyTorch.
DEPLOYED_BACKENDS = ("ort-cpu", "openvino-fp32", "openvino-bf16", "openvino-int8", "ort-cuda", "tensorrt")
TRT_CACHE = cache_dir("bench-engines")
_ALIASES = {"ort": "onnxruntime"}
_VARIANTS = {"torch": ("compile", "triton"), "onnxruntime": ("cpu", "cuda")}


class Unavailable(RuntimeError):
    """This backend cannot run on this machine (or for this model); the message says why."""


@dataclass(frozen=True)
class BackendChoice:
    """A parsed benchmark backend name."""

    name: str
    backend: str                # the registry's name
    precision: str | None = None
    variant: str = ""           # torch: "compile"/"triton"; onnxruntime: "cpu"/"cuda"

    @property
    def family(self) -> str:
        return self.backend


def parse_backend(name: str) -> BackendChoice:
    """``"torch-compile-fp16"`` -> a :class:`BackendChoice`; ValueError naming the accepted forms otherwise."""
    text = name.strip().lower()
    parts = text.split("-")
    backend = _ALIASES.get(parts[0], parts[0])
    rest = parts[1:]
    try:
        entry = spec(backend)
    except ValueError:
        entry = None
    if entry is not None:
        variant = rest.pop(0) if rest and rest[0] in _VARIANTS.get(backend, ()) else ""
        precision = rest.pop(0) if rest and rest[0] in entry.precisions else None
        if backend == "onnxruntime" and not variant:
            variant = "cpu"
        if backend == "torch" and precision is None:
            precision = "fp32"
        if not rest:
            return BackendChoice(text, backend, precision, variant)
    raise ValueError(f"unknown backend {name!r}: expected torch[-compile|-triton][-fp32|-fp16|-bf16], ort-cpu, ort-cuda, "
                     f"openvino[-fp32|-bf16|-int8] or tensorrt (defaults: {', '.join(DEFAULT_BACKENDS)})")


@dataclass
class BenchContext:
    """What opening a backend for a benchmark may use besides the model."""

    device: str = "cpu"                       # "cpu" or "cuda[:N]" (torch's device for torch rows)
    threads: int | None = None
    compile_backend: str = "inductor"
    trt_profile: Any = None
    allow_emulated_bf16: bool = True
    calibration: Path | None = None           # frames for an int8 IR made on the fly
    calibration_frames: int = 64
    workdir: Path | None = None
    made: dict[str, Path] = field(default_factory=dict)


def _file_for(mut: Any, backend: str, precision: str | None = None) -> Path | None:
    """The model file of ``mut`` that ``backend`` opens (an int8 IR for openvino-int8)."""
    suffixes = spec(backend).suffixes
    files = [p for p in (*mut.model_files, mut.onnx_path) if p is not None and p.suffix.lower() in suffixes]
    # An int8 IR runs only as int8, and int8 only from such an IR.
    files = [p for p in files if (p.suffix.lower() == ".xml" and _is_int8(p)) == (precision == "int8")]
    return files[0] if files else None


def _is_int8(xml: Path) -> bool:
    # The manifest sits in the IR's rt_info as JSON; its precision field is all we need here.
    text = xml.read_text(encoding="utf-8", errors="replace")
    return '&quot;precision&quot;: &quot;int8&quot;' in text or '"precision": "int8"' in text


def _int8_ir(mut: Any, ctx: BenchContext) -> Path:
    found = _file_for(mut, "openvino", "int8")
    if found is not None:
        return found
    if "int8" in ctx.made:
        return ctx.made["int8"]
    if mut.onnx_path is None or ctx.calibration is None or ctx.workdir is None:
        raise Unavailable("int8 needs an NNCF-quantised OpenVINO IR: pass one (`deblur export MODEL.onnx --to openvino "
                          "--precision int8 --calibration FRAMES`) or calibration frames (--calibration DIR)")
    from export.openvino import export_openvino

    out = ctx.workdir / f"{mut.label}-int8.xml"
    export_openvino(mut.onnx_path, out, precision="int8", calibration=ctx.calibration,
                    max_frames=ctx.calibration_frames)
    ctx.made["int8"] = out
    return out


def open_for_bench(choice: BackendChoice, mut: Any, ctx: BenchContext) -> tuple[Backend, list[str]]:
    """The SDK backend for ``choice`` on the model under test, and notes for the results; Unavailable otherwise."""
    entry = spec(choice.backend)
    notes: list[str] = []
    if not entry.installed():
        raise Unavailable(f"{entry.name} is not installed here: {entry.install}")
    if choice.backend == "torch":
        return _torch(choice, mut, ctx, notes), notes
    if choice.backend == "tensorrt":
        return _tensorrt(mut, ctx, notes), notes
    if choice.backend == "onnxruntime":
        path = _file_for(mut, "onnxruntime")
        if path is None:
            raise Unavailable(mut.no_onnx_reason or "no ONNX file for this model")
        import onnxruntime as ort

        available = ort.get_available_providers()
        if choice.variant == "cuda" and "CUDAExecutionProvider" not in available:
            raise Unavailable(f"this onnxruntime has no CUDA execution provider ({', '.join(available)}); "
                              "install onnxruntime-gpu")
        backend = open_backend(path, backend="onnxruntime", device=choice.variant, threads=ctx.threads)
        active = backend.describe()["providers"]
        if choice.variant == "cuda" and not active.startswith("CUDA"):
            backend.close()
            raise Unavailable(f"ONNX Runtime did not start its CUDA provider (active: {active})")
        notes.append(f"providers: {active}; intra-op threads: {ctx.threads or 'ORT default'}")
        return backend, notes
    if choice.backend == "openvino":
        return _openvino(choice, mut, ctx, notes), notes
    # Any other registry backend: the model file it opens, at the precision asked for.
    path = _file_for(mut, choice.backend, choice.precision)
    if path is None:
        raise Unavailable(f"no {'/'.join(entry.suffixes)} file for this model")
    return open_backend(path, backend=choice.backend, precision=choice.precision), notes


def _openvino(choice: BackendChoice, mut: Any, ctx: BenchContext, notes: list[str]) -> Backend:
    precision = choice.precision or "fp32"
    path = _int8_ir(mut, ctx) if precision == "int8" else _file_for(mut, "openvino")
    if path is None:
        raise Unavailable(mut.no_onnx_reason or "no ONNX or OpenVINO IR for this model")
    if precision == "bf16":
        from .devices import cpu_emulates

        why = cpu_emulates("bf16")
        if why is not None:
            raise Unavailable(f"OpenVINO would fall back to fp32: {why}")
    backend = open_backend(path, backend="openvino", device="cpu", precision=precision, threads=ctx.threads)
    notes.append(f"{path.name}; OpenVINO {backend.describe()['openvino']}, threads: {ctx.threads or 'OpenVINO default'}")
    return backend


def _torch(choice: BackendChoice, mut: Any, ctx: BenchContext, notes: list[str]) -> Backend:
    from sdk.backends.torch import TorchBackend

    if mut.torch_model is None:
        raise Unavailable(mut.no_torch_reason or "no PyTorch weights for this model")
    cuda = ctx.device.startswith("cuda")
    precision = choice.precision or "fp32"
    if precision == "fp16" and not cuda:
        raise Unavailable("float16 runs on CUDA only; on CPU use bf16 (autocast bfloat16)")
    if precision == "bf16" and not cuda:
        from .devices import cpu_emulates

        why = cpu_emulates("bf16")
        if why is not None:
            if not ctx.allow_emulated_bf16:
                raise Unavailable(f"not run by default: {why}; ask for it with --backends {choice.name}")
            notes.append(why)
    try:
        return TorchBackend.from_module(mut.torch_model, mut.manifest, device=ctx.device, precision=precision,
                                        compile=choice.variant == "compile", compile_backend=ctx.compile_backend,
                                        kernels="triton" if choice.variant == "triton" else "reference")
    except (ValueError, ImportError, RuntimeError) as exc:
        raise Unavailable(str(exc)) from None


def _tensorrt(mut: Any, ctx: BenchContext, notes: list[str]) -> Backend:
    engine = _file_for(mut, "tensorrt")
    if engine is None:
        if mut.onnx_path is None:
            raise Unavailable(mut.no_onnx_reason or "no ONNX file to build an engine from")
        if ctx.trt_profile is None:
            raise Unavailable("no TensorRT shape profile given")
        try:
            from export.tensorrt import BuildOptions, ensure_engine
        except ImportError as exc:
            raise Unavailable(str(exc)) from None
        engine = ensure_engine(mut.onnx_path, TRT_CACHE, BuildOptions(precision="fp16", profile=ctx.trt_profile))
        notes.append(f"engine {engine} (FP16), built or loaded from the cache {TRT_CACHE}")
    return open_backend(engine, backend="tensorrt", device=ctx.device if ctx.device.startswith("cuda") else "auto")


__all__ = ["DEFAULT_BACKENDS", "DEPLOYED_BACKENDS", "TRT_CACHE", "BackendChoice", "BenchContext", "Unavailable",
           "open_for_bench", "parse_backend"]
