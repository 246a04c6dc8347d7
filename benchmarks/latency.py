"""Latency of one model on every backend this machine has: the code behind ``deblur bench``.

For each backend, resolution and batch size it times the network twice (see
:mod:`benchmarks.runners`): on device-resident input ("device") and from uint8 BGR frames to uint8
BGR frames through the SDK's pre/post-processing and the host<->device copies ("end to end"). Each
series gives mean/p50/p90/p99 and frames per second; the run also records peak host RSS and GPU
memory, MACs per frame, achieved TFLOP/s and the fraction of the device's peak
(:mod:`benchmarks.devices`).

MODEL is a registry name (freshly initialised weights; the ONNX is exported on the fly from the same
weights), a ``.pt`` checkpoint (likewise), an ``.onnx`` file (ONNX Runtime and TensorRT only, unless
its checkpoint ``<stem>.pt`` lies beside it), or None for the bundled ``sdk/models/default.onnx``.

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
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdk.processing import padded_size

from .devices import DeviceInfo, detect_device, library_versions
from .memory import GpuPeak, HostPeak
from .runners import DEFAULT_BACKENDS, Runner, Unavailable, make_runner, parse_backend
from .stats import summarize, time_calls

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
                "pytorch_weights": self.torch_model is not None, "macs_note": self.macs_note,
                "macs_per_frame": {f"{h}x{w}": v for (h, w), v in sorted(self._macs.items())}, "notes": self.notes}


def _onnx_float_parameters(path: Path) -> int:
    import onnx

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
    mut = ModelUnderTest(label=label, source=f"ONNX file {path}", manifest=manifest, onnx_path=path,
                         params=_onnx_float_parameters(path), params_source="float initializers of the ONNX graph")
    checkpoint = path.with_suffix(".pt")
    if checkpoint.is_file():
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


def load_model_under_test(model: str | os.PathLike[str] | None, *, workdir: Path, export: bool = True) -> ModelUnderTest:
    """Resolve MODEL (registry name, ``.pt``, ``.onnx`` or None for the bundled default) for benchmarking.

    ``workdir`` receives the ONNX exported on the fly for registry names and checkpoints.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if model is None:
        from sdk.deblurrer import default_model_path

        return _from_onnx(default_model_path(), "default")
    text = os.fspath(model)
    path = Path(text)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        return _from_onnx(path, path.stem)
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


def _end_to_end(runner: Runner, manifest: Any, size: Size, batch: int, padded: tuple[int, int], seed: int
                ) -> Callable[[], None]:
    """uint8 BGR frames -> model -> uint8 BGR frames, with the SDK's own pre/post-processing."""
    from sdk.processing import FrameConverter, inspect_frame

    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, (size.height, size.width, 3), dtype=np.uint8) for _ in range(batch)]
    converter = FrameConverter(manifest, color="bgr")
    spec = inspect_frame(frames[0], color="bgr")
    model_in = np.empty((batch, 3, *padded), np.float32)
    model_out = np.empty_like(model_in)

    def run() -> None:
        for i, frame in enumerate(frames):
            converter.to_model(frame, spec, model_in[i])
        runner.run_host(model_in, model_out)
        for i, frame in enumerate(frames):
            converter.from_model(model_out[i], frame, spec, model_input=model_in[i])

    return run


def _trt_profile(sizes: Sequence[Size], batches: Sequence[int], multiple: int) -> Any:
    from sdk.manifest import ShapeProfile

    padded = [padded_size(s.height, s.width, multiple) for s in sizes]
    lo = (min(batches), min(h for h, _ in padded), min(w for _, w in padded))
    hi = (max(batches), max(h for h, _ in padded), max(w for _, w in padded))
    return ShapeProfile(min=lo, opt=(min(batches), *max(padded, key=lambda hw: hw[0] * hw[1])), max=hi)


def _one_run(runner: Runner, mut: ModelUnderTest, size: Size, batch: int, settings: BenchSettings,
             device: DeviceInfo, host: HostPeak, gpu: GpuPeak | None) -> dict[str, Any]:
    padded = padded_size(size.height, size.width, mut.manifest.pad_multiple)
    run: dict[str, Any] = {"size": size.label, "batch": batch, "height": size.height, "width": size.width,
                           "padded_height": padded[0], "padded_width": padded[1]}
    try:
        runner.prepare(batch, *padded)
        end_to_end = _end_to_end(runner, mut.manifest, size, batch, padded, settings.seed)
        host.reset()
        if gpu is not None:
            gpu.reset_peak()
        with runner.activate():
            device_samples = time_calls(runner.run_device, warmup=settings.warmup, iters=settings.iters,
                                        clock=runner.device_clock(), max_seconds=settings.max_seconds)
            e2e_samples = time_calls(end_to_end, warmup=settings.warmup, iters=settings.iters,
                                     clock=runner.host_clock(), max_seconds=settings.max_seconds)
    except Unavailable:
        raise
    except Exception as exc:  # one failed shape (out of memory, a rejected profile) must not end the benchmark
        run["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return run
    stats = summarize(device_samples, batch=batch)
    run["device_ms"] = stats.to_dict()
    run["end_to_end_ms"] = summarize(e2e_samples, batch=batch).to_dict()
    run["device_clock"], run["end_to_end_clock"] = runner.device_clock().kind, runner.host_clock().kind
    run["setup_seconds"] = round(runner.setup_seconds, 3)
    macs = mut.macs_per_frame(*padded)
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
        "settings": {**settings.to_dict(), "device": device_name, "threads": threads}, "backends": [],
    }
    profile = _trt_profile(settings.sizes, settings.batches, mut.manifest.pad_multiple)
    for name in settings.backends:
        entry: dict[str, Any] = {"backend": name}
        gpu = GpuPeak(torch_module.device(device_name).index or 0, torch_module) if cuda else None
        if gpu is not None:
            gpu.mark_baseline()
        try:
            runner = make_runner(name, model=mut.torch_model, onnx_path=mut.onnx_path, device=device_name,
                                 threads=threads, compile_backend=settings.compile_backend, trt_profile=profile,
                                 no_torch_reason=mut.no_torch_reason, no_onnx_reason=mut.no_onnx_reason,
                                 allow_emulated_bf16=settings.allow_emulated_bf16)
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
        entry.update(available=True, device=runner.device, precision=runner.precision, runs=[])
        try:
            for size in settings.sizes:
                for batch in settings.batches:
                    run = _one_run(runner, mut, size, batch, settings, device, host, gpu)
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
            entry["notes"] = list(runner.notes)
            runner.close()
            del runner
            gc.collect()
            if cuda and torch_module is not None:
                torch_module.cuda.empty_cache()
        result["backends"].append(entry)
    result["model"] = mut.describe()
    return result
