"""Latency of one model on every backend this machine has: the code behind ``deblur bench``.

Every backend is the SDK's own, opened through its one registry (:mod:`benchmarks.choices`). For
each backend, resolution and batch size it times the network twice: on device-resident input
(:meth:`Backend.device_call`, "device") and from uint8 BGR frames to uint8 BGR frames through
:class:`sdk.Deblurrer` itself, pre/post-processing and host<->device copies included ("end to end").
The first call of each shape (:meth:`Backend.warmup`: compiling, kernel selection) is timed apart as
``setup_seconds``. Each
series gives mean/p50/p90/p99 and frames per second; the run also records peak host RSS and GPU
memory, MACs per frame, achieved TFLOP/s and the fraction of the device's peak
(:mod:`benchmarks.devices`).

MODEL is a registry name (freshly initialised weights; the ONNX is exported on the fly from the same
weights), a ``.pt`` checkpoint (likewise), an ``.onnx`` file (ONNX Runtime, OpenVINO and TensorRT only,
unless its checkpoint ``<stem>.pt`` lies beside it), an OpenVINO ``.xml`` or a TensorRT ``.engine``, or
None for the bundled ``sdk/models/default.onnx``. Model files need neither PyTorch nor ``onnx``.

Example::

    >>> from benchmarks.latency import BenchSettings, load_model_under_test, run_benchmark
    >>> mut = load_model_under_test("rdafnet-nano", workdir=Path("/tmp/bench"))
    >>> result = run_benchmark(mut, BenchSettings(backends=("torch-fp32", "ort-cpu"), sizes=parse_sizes("256")))
    >>> result["backends"][0]["runs"][0]["device_ms"]["p50_ms"]
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import importlib.util
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdk.backends import Backend
from sdk.processing import padded_size

from .choices import DEFAULT_BACKENDS, BenchContext, Unavailable, open_for_bench, parse_backend
from .devices import DeviceInfo, detect_device, library_versions
from .memory import GpuPeak, HostPeak
from .stats import HostClock, summarize, time_calls

SCHEMA = "deblur-bench/1"
NAMED_SIZES = {"480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920), "1440p": (1440, 2560),
               "2160p": (2160, 3840), "4k": (2160, 3840)}
ONNX_FLOAT_TYPES = (1, 10, 11, 16)   # FLOAT, FLOAT16, DOUBLE, BFLOAT16
PARAM_MATCH_TOLERANCE = 0.01


@dataclass(frozen=True)
class Size:
    """An input size (height, width) and the label it was asked for by."""

    label: str
    height: int
    width: int


def parse_sizes(text: str) -> list[Size]:
    """``"256,720p,640x360"`` -> sizes: ``N`` is NxN, ``WxH`` as in video, or 480p/720p/1080p/1440p/2160p.

    Example::

        >>> [(s.height, s.width) for s in parse_sizes("256,720p,640x360")]
        [(256, 256), (720, 1280), (360, 640)]
    """
    sizes = []
    for item in (t.strip().lower() for t in text.split(",")):
        if not item:
            continue
        if item in NAMED_SIZES:
            h, w = NAMED_SIZES[item]
        elif item.isdigit():
            h = w = int(item)
        elif re.fullmatch(r"\d+x\d+", item):
            w, h = (int(v) for v in item.split("x"))
        else:
            raise ValueError(f"resolution {item!r}: expected N (NxN), WxH (e.g. 1280x720) or one of {', '.join(NAMED_SIZES)}")
        if h < 1 or w < 1:
            raise ValueError(f"resolution {item!r} must be positive")
        sizes.append(Size(item, h, w))
    if not sizes:
        raise ValueError(f"no resolutions in {text!r}")
    return sizes


def parse_ints(text: str, what: str) -> list[int]:
    """``"1,4"`` -> ``[1, 4]``; each must be a positive integer."""
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"{what}: expected comma-separated positive integers, got {text!r}")
    return values


# --------------------------------------------------------------------------- the model under test
@dataclass
class ModelUnderTest:
    """A network with whatever forms of it exist: PyTorch module, ONNX file, and what is missing and why."""

    label: str
    source: str
    manifest: Any
    torch_model: Any = None
    no_torch_reason: str = ""
    onnx_path: Path | None = None
    no_onnx_reason: str = ""
    params: int | None = None
    params_source: str = ""
    macs_model: Any = None             # the module counted for MACs (a meta-device copy is made per count)
    macs_note: str = ""
    notes: list[str] = field(default_factory=list)
    model_files: list[Path] = field(default_factory=list)   # an OpenVINO IR or TensorRT engine given as MODEL
    workdir: Path | None = None
    _macs: dict[tuple[int, int], int | None] = field(default_factory=dict)

    def macs_per_frame(self, height: int, width: int) -> int | None:
        """MACs of one frame at the padded ``height`` x ``width``, or None where no model can be counted."""
        if self.macs_model is None:
            return None
        if (height, width) not in self._macs:
            from training.models.complexity import count_macs

            self._macs[(height, width)] = int(count_macs(self.macs_model, (1, 3, height, width)))
        return self._macs[(height, width)]

    def describe(self) -> dict[str, Any]:
        m = self.manifest
        return {"label": self.label, "source": self.source, "architecture": m.architecture, "variant": m.variant,
                "value_range": list(m.value_range), "pad_multiple": m.pad_multiple, "params": self.params,
                "params_source": self.params_source, "onnx": str(self.onnx_path) if self.onnx_path else None,
                "files": [str(p) for p in self.model_files],
                "pytorch_weights": self.torch_model is not None, "macs_note": self.macs_note,
                "macs_per_frame": {f"{h}x{w}": v for (h, w), v in sorted(self._macs.items())}, "notes": self.notes}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _onnx_float_parameters(path: Path) -> int | None:
    """Float weights in the ONNX graph; None in a runtime-only install (no ``onnx`` package)."""
    try:
        import onnx
    except ImportError:
        return None
    proto = onnx.load(str(path))
    return sum(int(np.prod(t.dims)) for t in proto.graph.initializer if t.data_type in ONNX_FLOAT_TYPES)


def _export(mut: ModelUnderTest, workdir: Path) -> None:
    """Export ``mut.torch_model`` to ONNX in ``workdir`` (same weights), or record why it could not be."""
    try:
        from export.onnx import export_onnx

        report = export_onnx(mut.torch_model, workdir / f"{mut.label}.onnx", manifest=mut.manifest, strict=False)
    except Exception as exc:  # any failure of the export path makes the ONNX backends unavailable, with why
        mut.no_onnx_reason = f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return
    mut.onnx_path = report.path
    mut.notes.append(f"ONNX exported on the fly from the PyTorch weights ({report.exporter}, opset {report.opset}, "
                     f"parity {'OK' if report.parity_ok else 'FAILED'})")


def from_module(model: Any, *, workdir: Path, label: str | None = None, source: str = "", manifest: Any = None,
                export: bool = True) -> ModelUnderTest:
    """A model under test from a ``DeblurNet`` built by ``training.models.build`` (ONNX exported into ``workdir``)."""
    from training.checkpoint import model_manifest
    from training.models.complexity import count_parameters

    manifest = manifest if manifest is not None else model_manifest(model)
    label = label or model.model_name
    source = source or f"module {type(model).__name__}: {model.model_name} {model.model_kwargs or ''}".strip()
    workdir.mkdir(parents=True, exist_ok=True)
    mut = ModelUnderTest(label=label, source=source, manifest=manifest, torch_model=model.eval(),
                         params=count_parameters(model), params_source="PyTorch module", macs_model=model,
                         macs_note="training.models.complexity.count_macs on the PyTorch module")
    if export:
        _export(mut, workdir)
    else:
        mut.no_onnx_reason = "ONNX export was not requested"
    return mut


def _from_onnx(path: Path, label: str) -> ModelUnderTest:
    from sdk.manifest import Manifest, ManifestError

    try:
        manifest = Manifest.read_onnx(path)
    except ManifestError as exc:
        raise ValueError(f"{path}: no deblur manifest in the ONNX file ({exc}); export it with `deblur export`") from None
    params = _onnx_float_parameters(path)
    mut = ModelUnderTest(label=label, source=f"ONNX file {path}", manifest=manifest, onnx_path=path, params=params,
                         params_source="float initializers of the ONNX graph" if params is not None
                         else "unknown: counting needs the onnx package")
    checkpoint = path.with_suffix(".pt")
    if checkpoint.is_file() and importlib.util.find_spec("torch") is not None:
        from training.checkpoint import load_model

        mut.torch_model, _ = load_model(checkpoint)
        mut.macs_model = mut.torch_model
        mut.macs_note = f"count_macs on {checkpoint.name}, the checkpoint beside the ONNX"
        mut.notes.append(f"PyTorch backends use {checkpoint}")
        return mut
    mut.no_torch_reason = (f"no PyTorch weights for this model: {path.name} is an ONNX file and no {checkpoint.name} "
                           "lies beside it (pass a .pt checkpoint or a registry name to benchmark PyTorch)")
    try:
        import torch

        from training.models import build, list_models
        from training.models.complexity import count_parameters
    except ImportError as exc:
        mut.macs_note = f"MACs unknown: counting needs PyTorch and the training package ({exc})"
        return mut
    if manifest.variant not in list_models():
        mut.macs_note = f"MACs unknown: variant {manifest.variant!r} is not in the model registry"
        return mut
    with torch.device("meta"):
        reference = build(manifest.variant)
    expected, found = count_parameters(reference), int(mut.params or 0)
    if abs(expected - found) > PARAM_MATCH_TOLERANCE * expected:
        mut.macs_note = (f"MACs unknown: the ONNX holds {found:,} weights but registry {manifest.variant!r} at its "
                         f"default size has {expected:,} (built with other constructor arguments)")
        return mut
    mut.macs_model = reference
    mut.macs_note = (f"count_macs on registry {manifest.variant!r} at its default size, whose {expected:,} parameters "
                     f"match the ONNX's {found:,} float weights within {PARAM_MATCH_TOLERANCE:.0%}")
    return mut


def _from_deployed(path: Path, label: str) -> ModelUnderTest:
    """An OpenVINO IR or a TensorRT engine: its manifest from the file itself, the backend that opens it."""
    from sdk.backends import backend_for

    kind = backend_for(path)
    if kind == "openvino":
        from sdk.backends import open_backend

        backend = open_backend(path, backend=kind, device="cpu")
        manifest = backend.manifest
        backend.close()
    else:   # an engine: its manifest from its header (else its sidecar), readable without TensorRT
        from sdk.backends.base import ModelLoadError
        from sdk.backends.engine_file import load_engine, missing_manifest_message

        found, _, _ = load_engine(path)
        if found is None:
            raise ModelLoadError(missing_manifest_message(path))
        manifest = found
    return ModelUnderTest(label=label, source=f"{kind} file {path}", manifest=manifest, model_files=[path],
                          no_onnx_reason=f"{path.name} is a {kind} model; pass the .onnx to benchmark ONNX Runtime",
                          no_torch_reason=f"{path.name} is a {kind} model, not PyTorch weights",
                          macs_note="MACs unknown for a compiled model file")


def load_model_under_test(model: str | os.PathLike[str] | None, *, workdir: Path, export: bool = True) -> ModelUnderTest:
    """Resolve MODEL (bundled model name, registry name, ``.pt``, ``.onnx``, ``.xml``, ``.engine`` or None for
    the bundled default).

    ``workdir`` receives the ONNX exported on the fly for registry names and checkpoints (and an int8
    OpenVINO IR calibrated on the fly).
    """
    mut = _load_model_under_test(model, workdir=workdir, export=export)
    mut.workdir = workdir
    return mut


def _load_model_under_test(model: str | os.PathLike[str] | None, *, workdir: Path, export: bool) -> ModelUnderTest:
    workdir.mkdir(parents=True, exist_ok=True)
    from sdk.bundled import bundled_model_path, bundled_name, default_model_path

    if model is None:
        return _from_onnx(default_model_path(), "default")
    text = os.fspath(model)
    name = bundled_name(text)
    if name is not None:
        return _from_onnx(bundled_model_path(name), name)
    path = Path(text)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        return _from_onnx(path, path.stem)
    if path.suffix.lower() in (".xml", ".engine", ".plan", ".trt"):
        if not path.is_file():
            raise FileNotFoundError(f"model not found: {path}")
        return _from_deployed(path, path.stem)
    if path.suffix.lower() in (".pt", ".pth", ".ckpt"):
        from training.checkpoint import load_model

        net, manifest = load_model(path)
        return from_module(net, workdir=workdir, label=path.stem, source=f"checkpoint {path}", manifest=manifest,
                           export=export)
    from training.models import build, list_models

    if text not in list_models():
        raise ValueError(f"MODEL {text!r} is neither a registered model ({', '.join(list_models())}) nor a "
                         ".pt/.onnx file")
    return from_module(build(text), workdir=workdir, source=f"registry {text!r}, freshly initialised weights "
                       "(latency only)", export=export)


# --------------------------------------------------------------------------- running
@dataclass(frozen=True)
class BenchSettings:
    backends: Sequence[str] = DEFAULT_BACKENDS
    sizes: Sequence[Size] = (Size("256", 256, 256),)
    batches: Sequence[int] = (1,)
    warmup: int = 3
    iters: int = 20
    device: str = "auto"
    threads: int | None = None
    compile_backend: str = "inductor"
    max_seconds: float | None = 60.0     # per warm-up and per timed series
    # False skips bf16 on CPUs that only emulate it (what `deblur bench` does for its default backend list).
    allow_emulated_bf16: bool = True
    seed: int = 0
    calibration: str | None = None     # frames for an openvino-int8 IR made on the fly
    calibration_frames: int = 64
    # True: every backend is opened first and the timed calls alternate between them, call by call, so
    # that a shared machine's changing load falls on all backends alike (no per-series time cap then).
    interleave: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sizes"] = [f"{s.label} ({s.height}x{s.width})" for s in self.sizes]
        return d


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when PyTorch sees a GPU, else "cpu"; "cuda" needs one."""
    if device not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", device):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if device.startswith("cuda") and not has_cuda:
        raise RuntimeError(f"device={device!r} asked for, but PyTorch sees no CUDA GPU")
    return device


def _end_to_end(backend: Backend, size: Size, batch: int, seed: int) -> Callable[[], None]:
    """uint8 BGR frames -> :class:`sdk.Deblurrer` -> uint8 BGR frames: exactly what a user's call costs."""
    from sdk.deblurrer import Deblurrer

    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, (size.height, size.width, 3), dtype=np.uint8) for _ in range(batch)]
    deblur = Deblurrer(backend)
    if batch == 1:
        return lambda: deblur.process(frames[0])
    return lambda: deblur.process_batch(frames)


def _random_input(shape: tuple[int, ...], value_range: tuple[float, float], seed: int = 0) -> np.ndarray:
    lo, hi = value_range
    return (lo + (hi - lo) * np.random.default_rng(seed).random(shape, dtype=np.float32)).astype(np.float32)


def _trt_profile(sizes: Sequence[Size], batches: Sequence[int], multiple: int) -> Any:
    from sdk.manifest import ShapeProfile

    padded = [padded_size(s.height, s.width, multiple) for s in sizes]
    lo = (min(batches), min(h for h, _ in padded), min(w for _, w in padded))
    hi = (max(batches), max(h for h, _ in padded), max(w for _, w in padded))
    return ShapeProfile(min=lo, opt=(min(batches), *max(padded, key=lambda hw: hw[0] * hw[1])), max=hi)


@dataclass
class PreparedRun:
    """One backend at one size and batch, warmed up: its two timed calls and the run record so far."""

    run: dict[str, Any]
    device_call: Callable[[], None]
    end_to_end: Callable[[], Any]


def prepare_run(backend: Backend, mut: ModelUnderTest, size: Size, batch: int, seed: int) -> PreparedRun:
    """Warm ``backend`` up at this size (timed as ``setup_seconds``) and build its device and end-to-end calls.

    Raises :class:`Unavailable` when the backend cannot run at all (its first call fails), other errors
    when only this shape fails.
    """
    padded = padded_size(size.height, size.width, mut.manifest.pad_multiple)
    run: dict[str, Any] = {"size": size.label, "batch": batch, "height": size.height, "width": size.width,
                           "padded_height": padded[0], "padded_width": padded[1]}
    start = time.perf_counter()
    try:
        backend.warmup(*padded, batch=batch)
    except Exception as exc:  # e.g. torch.compile failing at its first call: the backend cannot run here
        if isinstance(exc, ValueError):
            raise
        raise Unavailable(f"its first call failed: {type(exc).__name__}: {_first_line(exc)}") from None
    run["setup_seconds"] = round(time.perf_counter() - start, 3)
    device_call = backend.device_call(_random_input((batch, mut.manifest.in_channels, *padded),
                                                    mut.manifest.value_range, seed))
    # Both calls return only when the device is done (they synchronise), so a host clock times them.
    run["device_clock"] = run["end_to_end_clock"] = HostClock().kind
    return PreparedRun(run, device_call, _end_to_end(backend, size, batch, seed))


def record_run(prepared: PreparedRun, mut: ModelUnderTest, device: DeviceInfo, device_samples: list[float],
               e2e_samples: list[float], host: HostPeak, gpu: GpuPeak | None) -> dict[str, Any]:
    """The run record with its statistics, achieved TFLOP/s and memory peaks."""
    run = prepared.run
    batch = run["batch"]
    stats = summarize(device_samples, batch=batch)
    run["device_ms"] = stats.to_dict()
    run["end_to_end_ms"] = summarize(e2e_samples, batch=batch).to_dict()
    macs = mut.macs_per_frame(run["padded_height"], run["padded_width"])
    run["macs_per_frame"] = macs
    if macs is not None:
        tflops = 2 * macs * batch / (stats.p50_ms * 1e-3) / 1e12
        run["achieved_tflops"] = tflops
        run["fraction_of_peak"] = tflops / device.peak_tflops if device.peak_tflops else None
    run["host_rss_peak_mb"] = round(host.peak_mb(), 1)
    run["host_rss_source"] = host.source
    if gpu is not None:
        run.update(gpu.read())
    return run


def _one_run(backend: Backend, mut: ModelUnderTest, size: Size, batch: int, settings: BenchSettings,
             device: DeviceInfo, host: HostPeak, gpu: GpuPeak | None) -> dict[str, Any]:
    try:
        prepared = prepare_run(backend, mut, size, batch, settings.seed)
        host.reset()
        if gpu is not None:
            gpu.reset_peak()
        device_samples = time_calls(prepared.device_call, warmup=settings.warmup, iters=settings.iters,
                                    clock=HostClock(), max_seconds=settings.max_seconds)
        e2e_samples = time_calls(prepared.end_to_end, warmup=settings.warmup, iters=settings.iters,
                                 clock=HostClock(), max_seconds=settings.max_seconds)
    except Unavailable:
        raise
    except Exception as exc:  # one failed shape (out of memory, a rejected profile) must not end the benchmark
        padded = padded_size(size.height, size.width, mut.manifest.pad_multiple)
        return {"size": size.label, "batch": batch, "height": size.height, "width": size.width,
                "padded_height": padded[0], "padded_width": padded[1],
                "error": f"{type(exc).__name__}: {_first_line(exc)}"}
    return record_run(prepared, mut, device, device_samples, e2e_samples, host, gpu)


def run_benchmark(mut: ModelUnderTest, settings: BenchSettings,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time ``mut`` on every backend in ``settings``; the result as a JSON-ready dict (see module docs)."""
    for name in settings.backends:
        parse_backend(name)                     # reject a misspelt backend before any work
    if settings.warmup < 0 or settings.iters < 1:
        raise ValueError(f"need warmup >= 0 and iters >= 1, got {settings.warmup} and {settings.iters}")
    if settings.max_seconds is not None and settings.max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {settings.max_seconds}")
    say = progress or (lambda _msg: None)
    device_name = resolve_device(settings.device)
    threads = settings.threads
    torch_module: Any = None
    with contextlib.suppress(ImportError):
        import torch as torch_module
    if threads is not None and torch_module is not None:
        torch_module.set_num_threads(threads)
    if threads is None and torch_module is not None:
        threads = torch_module.get_num_threads()
    device = detect_device(device_name)
    host = HostPeak()
    cuda = device_name.startswith("cuda")
    result: dict[str, Any] = {
        "schema": SCHEMA, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": None, "device": device.to_dict(), "versions": library_versions(),
        "settings": {**settings.to_dict(), "device": device_name, "threads": threads,
                     "cpu_affinity": sorted(os.sched_getaffinity(0))}, "backends": [],
    }
    context = BenchContext(device=device_name, threads=threads, compile_backend=settings.compile_backend,
                           trt_profile=_trt_profile(settings.sizes, settings.batches, mut.manifest.pad_multiple),
                           allow_emulated_bf16=settings.allow_emulated_bf16,
                           calibration=Path(settings.calibration) if settings.calibration else None,
                           calibration_frames=settings.calibration_frames, workdir=mut.workdir)
    if settings.interleave:
        result["backends"] = _interleaved(mut, settings, context, device, host, say)
        result["model"] = mut.describe()
        return result
    for name in settings.backends:
        entry: dict[str, Any] = {"backend": name}
        gpu = GpuPeak(torch_module.device(device_name).index or 0, torch_module) if cuda else None
        if gpu is not None:
            gpu.mark_baseline()
        try:
            backend, notes = open_for_bench(parse_backend(name), mut, context)
        except Unavailable as exc:
            entry.update(available=False, reason=str(exc))
            say(f"{name}: unavailable: {exc}")
            result["backends"].append(entry)
            continue
        except Exception as exc:  # a backend that fails to start is reported, not fatal
            entry.update(available=False, reason=f"failed to start: {type(exc).__name__}: {exc}")
            say(f"{name}: failed to start: {exc}")
            result["backends"].append(entry)
            continue
        entry.update(available=True, device=backend.device, precision=backend.precision, runs=[])
        try:
            for size in settings.sizes:
                for batch in settings.batches:
                    run = _one_run(backend, mut, size, batch, settings, device, host, gpu)
                    entry["runs"].append(run)
                    if "error" in run:
                        say(f"{name} {size.label} x{batch}: {run['error']}")
                    else:
                        say(f"{name} {size.label} x{batch}: device p50 {run['device_ms']['p50_ms']:.2f} ms, "
                            f"end-to-end p50 {run['end_to_end_ms']['p50_ms']:.2f} ms")
        except Unavailable as exc:   # e.g. torch.compile failing at its first call
            entry.update(available=False, reason=str(exc), runs=[])
            say(f"{name}: unavailable: {exc}")
        finally:
            entry["notes"] = notes
            backend.close()
            del backend
            gc.collect()
            if cuda and torch_module is not None:
                torch_module.cuda.empty_cache()
        result["backends"].append(entry)
    result["model"] = mut.describe()
    return result


def _interleaved(mut: ModelUnderTest, settings: BenchSettings, context: BenchContext, device: DeviceInfo,
                 host: HostPeak, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every backend open at once; per size and batch, round after round of one timed call each."""
    entries: list[dict[str, Any]] = []
    opened: list[tuple[dict[str, Any], Backend]] = []
    for name in settings.backends:
        entry: dict[str, Any] = {"backend": name}
        entries.append(entry)
        try:
            backend, notes = open_for_bench(parse_backend(name), mut, context)
        except Exception as exc:  # unavailable or failing to start: reported, not fatal
            reason = str(exc) if isinstance(exc, Unavailable) else f"failed to start: {type(exc).__name__}: {exc}"
            entry.update(available=False, reason=reason)
            say(f"{name}: unavailable: {reason}")
            continue
        entry.update(available=True, device=backend.device, precision=backend.precision, runs=[], notes=notes)
        opened.append((entry, backend))
    try:
        for size in settings.sizes:
            for batch in settings.batches:
                _interleave_one(opened, mut, size, batch, settings, device, host, say)
    finally:
        for _, backend in opened:
            backend.close()
    return entries


def _interleave_one(opened: list[tuple[dict[str, Any], Backend]], mut: ModelUnderTest, size: Size, batch: int,
                    settings: BenchSettings, device: DeviceInfo, host: HostPeak, say: Callable[[str], None]) -> None:
    ready: list[tuple[dict[str, Any], PreparedRun]] = []
    for entry, backend in opened:
        if not entry["available"]:
            continue
        try:
            ready.append((entry, prepare_run(backend, mut, size, batch, settings.seed)))
        except Unavailable as exc:
            entry.update(available=False, reason=str(exc), runs=[])
        except Exception as exc:  # this shape fails on this backend only
            entry["runs"].append({"size": size.label, "batch": batch, "error": f"{type(exc).__name__}: {_first_line(exc)}"})
    for _ in range(settings.warmup):
        for _, prepared in ready:
            prepared.device_call()
            prepared.end_to_end()
    samples: dict[int, tuple[list[float], list[float]]] = {id(p): ([], []) for _, p in ready}
    loads: list[float] = []
    host.reset()
    clock = HostClock()
    for _ in range(settings.iters):
        for _, prepared in ready:
            device_ms, e2e_ms = samples[id(prepared)]
            clock.start()
            prepared.device_call()
            device_ms.append(clock.stop())
            clock.start()
            prepared.end_to_end()
            e2e_ms.append(clock.stop())
        loads.append(round(os.getloadavg()[0], 2))
    for entry, prepared in ready:
        run = record_run(prepared, mut, device, *samples[id(prepared)], host, None)
        run["interleaved_with"] = [e["backend"] for e, _ in ready if e is not entry]
        run["load_average_1m"] = {"min": min(loads), "max": max(loads), "per_round": loads}
        entry["runs"].append(run)
        say(f"{entry['backend']} {size.label} x{batch}: device p50 {run['device_ms']['p50_ms']:.2f} ms, "
            f"end-to-end p50 {run['end_to_end_ms']['p50_ms']:.2f} ms (interleaved; load {min(loads)}-{max(loads)})")
