"""Kernel benchmark (GPU only): each fused op against eager PyTorch and ``torch.compile``.

Shapes are the ones the zoo runs at 720p: pixel attention and attention fusion on a 1x128x360x640
FP16 feature map (RDAFNet's blocks after the stride-2 entry), MSAN's attention at N = 14,400
tokens, C = 128. Every op is timed with ``triton.testing.do_bench`` (CUDA events, L2 flushed
between runs, median), after checking the Triton output against the reference.

Reported per run: milliseconds; achieved GB/s against the op's *minimum* DRAM traffic (every input
read once, every output written once; ``min_bytes`` in the results) and TFLOP/s; and both as a
fraction of the device's peak from :mod:`benchmarks.devices` (FP16 dense tensor TFLOP/s, DRAM GB/s).
The pixel-attention and fusion kernels are memory-bound (judge them by GB/s), attention by TFLOP/s.

Results go to ``benchmarks/results/<device>/kernels.json`` with the device, its clocks and the
library versions. Without CUDA the script refuses (exit code 2): kernel timings exist only where
they were measured.

Example::

    python -m benchmarks.kernels                  # all ops, both layouts, forward
    python -m benchmarks.kernels --ops self_attention --backward
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS_ROOT = Path(__file__).resolve().parent / "results"
DEVICE = "cuda"
FP16_BYTES = 2
OPS = ("pixel_attention", "attention_fusion", "attention_fusion_with_map", "self_attention")

# RDAFNet at 720p: blocks on the stride-2 map; the last fusion of a block (c3) reads 4 maps.
FEATURE_SHAPE = (1, 128, 360, 640)
FUSION_MAPS = 4
# MSAN at 720p: attention on 14,400 tokens of 128 channels.
ATTENTION_SHAPE = (1, 128, 14_400)


@dataclass(frozen=True)
class Cost:
    """Minimum DRAM bytes and FLOPs of one call (what an ideal kernel cannot avoid)."""

    min_bytes: int
    flops: int


def pixel_attention_cost(b: int, c: int, h: int, w: int, return_map: bool, elem: int = FP16_BYTES) -> Cost:
    tensor = b * c * h * w * elem
    return Cost(min_bytes=tensor * (3 if return_map else 2), flops=2 * c * c * b * h * w)


def attention_fusion_cost(b: int, c: int, h: int, w: int, maps: int, elem: int = FP16_BYTES) -> Cost:
    """k maps + features in, out once; FLOPs of the 1x1 over k*C channels, the depthwise 3x3 and the 1x1."""
    pixels = b * h * w
    tensor = pixels * c * elem
    return Cost(min_bytes=tensor * (maps + 2), flops=pixels * (2 * maps * c * c + 2 * 9 * c + 2 * c * c))


def attention_fusion_with_map_cost(b: int, c: int, h: int, w: int, previous: int, elem: int = FP16_BYTES) -> Cost:
    """Previous maps + features in, out and the new map out: as many passes as a fusion over
    previous + 1 maps (the new map is written instead of read), plus the map's own 1x1 GEMM."""
    base = attention_fusion_cost(b, c, h, w, previous + 1, elem)
    return Cost(min_bytes=base.min_bytes, flops=base.flops + 2 * c * c * b * h * w)


def self_attention_cost(b: int, c: int, n: int, elem: int = FP16_BYTES) -> Cost:
    """q, k, v in and out once; two N x N x C GEMMs (the N^2 exps are not counted as FLOPs)."""
    return Cost(min_bytes=4 * b * c * n * elem, flops=4 * b * n * n * c)


def _refuse(message: str) -> int:
    print(f"benchmarks.kernels: {message}", file=sys.stderr)
    return 2


def _max_relative_error(ours: Any, reference: Any) -> float:
    scale = reference.float().abs().max().clamp_min(1e-6)
    return float(((ours.float() - reference.float()).abs().max() / scale).item())


def _cases(ops: tuple[str, ...], layouts: tuple[str, ...]) -> list[dict[str, Any]]:
    """Inputs and the three implementations of every requested op (built lazily, on the GPU)."""
    import importlib

    import torch
    import torch.nn.functional as F

    # By name: this file is itself called "kernels", which a plain import could resolve to.
    kernels = importlib.import_module("kernels")
    attention_fusion_reference = kernels.attention_fusion_reference
    attention_fusion_with_map_reference = kernels.attention_fusion_with_map_reference
    pixel_attention_reference = kernels.pixel_attention_reference
    self_attention_reference = kernels.self_attention_reference

    g = torch.Generator(device=DEVICE).manual_seed(0)
    dev, dt = DEVICE, torch.float16

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=g, device=dev) * scale).to(dt)

    def layout(t: torch.Tensor, name: str) -> torch.Tensor:
        return t.contiguous(memory_format=torch.channels_last) if name == "nhwc" else t.contiguous()

    b, c, h, w = FEATURE_SHAPE
    cases: list[dict[str, Any]] = []
    for lay in layouts:
        x = layout(rand(b, c, h, w), lay)
        am_w, am_b = rand(c, c, 1, 1, scale=c ** -0.5), rand(c)
        maps = [layout(torch.sigmoid(rand(b, c, h, w)), lay) for _ in range(FUSION_MAPS)]
        fuse_w, fuse_b = rand(c, c * FUSION_MAPS, 1, 1, scale=(c * FUSION_MAPS) ** -0.5), rand(c)
        dw_w, pw_w = rand(c, 1, 3, 3, scale=1 / 3), rand(c, c, 1, 1, scale=c ** -0.5)
        if "pixel_attention" in ops:
            for return_map in (False, True):
                args: tuple[Any, ...] = (x, am_w, am_b)
                cases.append({"op": "pixel_attention", "layout": lay, "variant": "y+map" if return_map else "y",
                              "shape": [b, c, h, w], "args": args, "cost": pixel_attention_cost(b, c, h, w, return_map),
                              "triton": lambda a, r=return_map: kernels.pixel_attention(*a, return_map=r),
                              "reference": lambda a, r=return_map: pixel_attention_reference(*a, return_map=r)})
        if "attention_fusion" in ops:
            args = (maps, fuse_w, fuse_b, dw_w, pw_w, x)
            cases.append({"op": "attention_fusion", "layout": lay, "variant": f"{FUSION_MAPS} maps",
                          "shape": [b, c, h, w], "args": args,
                          "cost": attention_fusion_cost(b, c, h, w, FUSION_MAPS),
                          "triton": lambda a: kernels.attention_fusion(*a),
                          "reference": lambda a: attention_fusion_reference(*a)})
        if "attention_fusion_with_map" in ops:
            args = (maps[:-1], am_w, am_b, fuse_w, fuse_b, dw_w, pw_w, x)
            cases.append({"op": "attention_fusion_with_map", "layout": lay,
                          "variant": f"{FUSION_MAPS - 1} maps + new", "shape": [b, c, h, w], "args": args,
                          "cost": attention_fusion_with_map_cost(b, c, h, w, FUSION_MAPS - 1),
                          "triton": lambda a: kernels.attention_fusion_with_map(*a),
                          "reference": lambda a: attention_fusion_with_map_reference(*a)})
    if "self_attention" in ops:
        ab, ac, an = ATTENTION_SHAPE
        # MSAN's scale is 1; unit-variance q and k would then give logits of std ~11 (fine for the
        # online softmax), so scale the inputs to keep fp16 probabilities well spread.
        q, k, v = rand(ab, ac, an, scale=ac ** -0.25), rand(ab, ac, an, scale=ac ** -0.25), rand(ab, ac, an)

        def sdpa(a: tuple[Any, ...]) -> torch.Tensor:
            # PyTorch's fused attention (flash / memory-efficient backends) on (B, 1, N, C) views.
            tq, tk, tv = (t.transpose(1, 2).unsqueeze(1) for t in a[:3])
            return F.scaled_dot_product_attention(tq, tk, tv, scale=float(a[3])).squeeze(1).transpose(1, 2)

        cases.append({"op": "self_attention", "layout": "(B, C, N)", "variant": "scale 1", "shape": [ab, ac, an],
                      "args": (q, k, v, 1.0), "cost": self_attention_cost(ab, ac, an),
                      "triton": lambda a: kernels.self_attention(*a),
                      "reference": lambda a: self_attention_reference(*a), "extra": {"sdpa": sdpa}})
    return cases


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, tuple) else out


def _timed(fn: Callable[[], Any], backward: bool) -> float:
    """Median milliseconds of ``fn`` (forward only, under no_grad) or of ``fn`` plus its backward."""
    import torch
    from triton.testing import do_bench

    if not backward:
        with torch.no_grad():
            fn()            # compiles (Triton JIT, torch.compile) outside do_bench's estimate of the run time
            return float(do_bench(fn, return_mode="median"))

    def step() -> None:
        _first(fn()).float().sum().backward()

    step()
    return float(do_bench(step, return_mode="median"))


def run(ops: tuple[str, ...], layouts: tuple[str, ...], backward: bool, compile_mode: str) -> dict[str, Any]:
    import torch

    from .devices import detect_device, library_versions

    device = detect_device(DEVICE)
    # Forced, not auto: if the Triton path cannot run, the benchmark fails instead of timing the reference.
    previous_mode = os.environ.get("DEBLUR_KERNELS")
    os.environ["DEBLUR_KERNELS"] = "triton"
    results: list[dict[str, Any]] = []
    for case in _cases(ops, layouts):
        args = case["args"]
        if backward:
            args = tuple([t.detach().requires_grad_(True) for t in a] if isinstance(a, list)
                         else a.detach().requires_grad_(True) if isinstance(a, torch.Tensor) else a for a in args)
        impls: dict[str, Callable[[Any], Any]] = {
            "triton": case["triton"],
            "eager": case["reference"],
            f"torch.compile({compile_mode})": torch.compile(case["reference"], mode=compile_mode, dynamic=False),
            **case.get("extra", {}),
        }
        with torch.no_grad():
            reference = _first(case["reference"](args))
            error = _max_relative_error(_first(case["triton"](args)), reference)
        for name, impl in impls.items():
            def call(impl: Callable[[Any], Any] = impl, args: Any = args) -> Any:
                return impl(args)

            try:
                ms = _timed(call, backward)
            except Exception as exc:  # one failing baseline (e.g. compile on an old driver) must not sink the rest
                results.append({"op": case["op"], "impl": name, "error": f"{type(exc).__name__}: {exc}"})
                continue
            cost: Cost = case["cost"]
            entry = {"op": case["op"], "variant": case["variant"], "layout": case["layout"], "shape": case["shape"],
                     "dtype": "float16", "impl": name, "pass": "forward+backward" if backward else "forward",
                     "ms": ms, **asdict(cost)}
            if not backward:
                gbs, tflops = cost.min_bytes / ms / 1e6, cost.flops / ms / 1e9
                entry.update({"achieved_gbs": gbs, "achieved_tflops": tflops,
                              "fraction_of_peak_bandwidth": gbs / device.bandwidth_gbs if device.bandwidth_gbs else None,
                              "fraction_of_peak_tflops": tflops / device.peak_tflops if device.peak_tflops else None})
            if name == "triton":
                entry["max_relative_error_vs_reference"] = error
            results.append(entry)
            print(f"{case['op']:26s} {case['layout']:9s} {case['variant']:12s} {name:34s} {ms:8.3f} ms", flush=True)
    if previous_mode is None:
        os.environ.pop("DEBLUR_KERNELS", None)
    else:
        os.environ["DEBLUR_KERNELS"] = previous_mode
    return {"benchmark": "kernels", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "device": device.to_dict(), "versions": library_versions(),
            "settings": {"ops": list(ops), "layouts": list(layouts), "backward": backward,
                         "timer": "triton.testing.do_bench (CUDA events, L2 flushed, median)",
                         "compile_mode": compile_mode},
            "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the Triton kernels against eager and torch.compile (GPU).")
    parser.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    parser.add_argument("--layouts", nargs="+", choices=("nchw", "nhwc"), default=["nchw", "nhwc"])
    parser.add_argument("--backward", action="store_true", help="time forward+backward instead of forward")
    parser.add_argument("--compile-mode", default="max-autotune-no-cudagraphs",
                        help="torch.compile mode of the baseline (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="results file (default: results/<device>/kernels.json)")
    args = parser.parse_args(argv)

    import importlib.util

    import torch

    if not __package__:
        return _refuse("run it as a module from the repository root: python -m benchmarks.kernels")
    if not torch.cuda.is_available():
        return _refuse("needs a CUDA GPU; none is visible (torch.cuda.is_available() is False). "
                       "Kernel timings are only recorded where they were measured.")
    if importlib.util.find_spec("triton") is None:
        return _refuse("needs triton (pip install 'deblur-sdk[kernels]')")
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return _refuse("TRITON_INTERPRET is set: the interpreter would be timed, not the GPU kernels")
    result = run(tuple(args.ops), tuple(args.layouts), args.backward, args.compile_mode)
    out = args.out or RESULTS_ROOT / result["device"]["slug"] / ("kernels-backward.json" if args.backward
                                                                 else "kernels.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
