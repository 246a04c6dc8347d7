"""``deblur doctor``: what this machine can run; ``--gpu``: the GPU acceptance run for a new NVIDIA GPU or Jetson.

``deblur doctor`` prints the libraries and the GPU it finds (and why not, when it finds none).
``deblur doctor --gpu`` is the one command for the first person with an NVIDIA GPU or a Jetson: it

1. runs the ``gpu`` and ``trt`` tests (``pytest -m "gpu or trt"``, from a source checkout),
2. exports the bundled model and ``rdafnet-small`` to ONNX, with standard ops and with the fused
   attention ops, and builds an FP16 TensorRT engine of each (``deblur export ... --to engine --fp16
   [--fused]``),
3. checks each engine against ONNX Runtime on CPU running the standard-op ONNX (PSNR and max error
   on a real photo, in 8-bit levels),
4. times each engine with ``deblur bench``,

and writes everything to one folder: ``summary.md`` (the table), ``summary.json``, ``logs/``,
``onnx/``, ``engines/``, ``bench/``. A step that cannot run here is listed as skipped with the reason;
the exit status is 1 only when a step that could run failed.

Examples::

    deblur doctor
    deblur doctor --gpu --out gpu-acceptance
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

from .gpu_acceptance import FAILED, PASSED, SKIPPED, Acceptance, Environment, RealTools, Tools, write_results

HELP = "check this machine; --gpu: run the GPU/TensorRT acceptance (tests, FP16 engines, parity, timing)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpu", action="store_true",
                        help="run the GPU acceptance: gpu/trt tests, FP16 engines (standard and fused ops) of the "
                             "bundled model and rdafnet-small, parity with ONNX Runtime, deblur bench")
    parser.add_argument("--out", type=Path, default=None,
                        help="results folder for --gpu (default: deblur-doctor-<UTC time>)")
    parser.add_argument("--min-psnr", type=float, default=40.0,
                        help="least PSNR (dB) of an FP16 engine against ONNX Runtime float32 (default 40)")
    parser.add_argument("--max-error", type=int, default=16,
                        help="largest per-pixel difference, in 8-bit levels, against ONNX Runtime (default 16)")


# --------------------------------------------------------------------------- what this machine has
def _version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def export_has_fused() -> bool:
    """Whether ``deblur export`` takes ``--fused`` (the fused-plugin path)."""
    from . import export as export_cli

    parser = argparse.ArgumentParser(add_help=False)
    export_cli.add_arguments(parser)
    _, unknown = parser.parse_known_args(["model", "--fused"])
    return "--fused" not in unknown


def probe() -> Environment:
    from sdk.backends.cuda_runtime import CudaError, gpu_compute_capability
    from sdk.backends.tensorrt import import_tensorrt

    env = Environment()
    env.versions = {"python": sys.version.split()[0]}
    for name in ("numpy", "opencv-python-headless", "onnxruntime", "onnxruntime-gpu", "torch", "triton",
                 "cuda-python", "pycuda"):
        found = _version(name)
        if found:
            env.versions[name] = found
    try:
        sm, name = gpu_compute_capability(0)
        env.gpu = f"{name} (compute capability {sm})"
    except (ImportError, CudaError, RuntimeError) as exc:
        env.gpu_problem = str(exc)
    try:
        env.versions["tensorrt"] = str(import_tensorrt().__version__)
    except ImportError as exc:
        env.tensorrt_problem = str(exc)
    if importlib.util.find_spec("torch") is None:
        env.torch_problem = "torch is not installed: pip install 'deblur-sdk[train]'"
    root = Path(__file__).resolve().parents[2]
    if (root / "tests").is_dir() and (root / "benchmarks").is_dir():
        env.checkout = root
    else:
        env.checkout_problem = "the tests and benchmarks run from a source checkout of deblur-sdk, not an installed package"
    env.export_has_fused = export_has_fused()
    return env


def describe(env: Environment) -> str:
    lines = [f"{k:<24} {v}" for k, v in env.versions.items()]
    lines.append(f"{'GPU':<24} {env.gpu or 'none: ' + str(env.gpu_problem)}")
    if env.tensorrt_problem:
        lines.append(f"{'TensorRT':<24} {env.tensorrt_problem}")
    lines.append(f"{'deblur export --fused':<24} {'yes' if env.export_has_fused else 'no'}")
    return "\n".join(lines)


def run(args: argparse.Namespace, *, env: Environment | None = None, tools: Tools | None = None) -> int:
    env = env if env is not None else probe()
    print(describe(env))
    if not args.gpu:
        return 0
    out = (args.out or Path(time.strftime("deblur-doctor-%Y%m%d-%H%M%S", time.gmtime()))).resolve()
    steps = Acceptance(env, tools or RealTools(), out, min_psnr=args.min_psnr, max_error=args.max_error).run()
    paths = write_results(env, steps, out)
    print()
    for s in steps:
        print(f"{s.status:>7}  {s.step} {s.model if s.model != '-' else ''} {s.variant if s.variant != '-' else ''}: "
              f"{s.detail}")
    print(f"\nresults: {paths[0]} ({sum(s.status == PASSED for s in steps)} passed, "
          f"{sum(s.status == FAILED for s in steps)} failed, {sum(s.status == SKIPPED for s in steps)} skipped)")
    return 1 if any(s.status == FAILED for s in steps) else 0
