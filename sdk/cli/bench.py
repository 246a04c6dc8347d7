"""``deblur bench``: latency of a model on every backend this machine has, written as JSON, Markdown and a plot.

Examples::

    deblur bench                                       # the bundled default model
    deblur bench rdafnet-nano --res 256,720p --batch 1,4
    deblur bench runs/nano/best.pt --backends torch-fp32,torch-compile,ort-cpu --iters 50
    deblur bench model.onnx --quality synth_out        # also PSNR/SSIM per backend on the test split
"""

from __future__ import annotations

import argparse

HELP = "benchmark a model's latency on every available backend (PyTorch, torch.compile, Triton, ONNX Runtime, TensorRT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", default=None,
                        help="registry name (e.g. rdafnet-nano), .pt checkpoint or .onnx file; default: the bundled model")
    parser.add_argument("--backends", default="all",
                        help="comma-separated: torch[-compile|-triton][-fp32|-fp16|-bf16], ort-cpu, ort-cuda, tensorrt "
                             "(default: all; those this machine lacks are listed as unavailable, with why)")
    parser.add_argument("--res", default="256,720p",
                        help="resolutions: N (NxN), WxH, 480p, 720p, 1080p (default: 256,720p)")
    parser.add_argument("--batch", default="1", help="batch sizes, comma-separated (default: 1)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before each series (default: 3)")
    parser.add_argument("--iters", type=int, default=20, help="timed calls per series (default: 20)")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="wall-time cap of each warm-up and each timed series; a slow case stops early with "
                             "fewer samples, the count is recorded (default: 60)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for PyTorch and ONNX Runtime alike (default: PyTorch's current setting)")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (default: inductor)")
    parser.add_argument("--out", default="benchmarks/results",
                        help="results root; files go to OUT/<device>/<model>.{json,md,png} (default: benchmarks/results)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    parser.add_argument("--quality", metavar="DATA", default=None,
                        help="also score PSNR/SSIM per backend and precision on DATA's test split (benchmarks.quality)")
    parser.add_argument("--max-images", type=int, default=None, metavar="N", help="with --quality: N pairs spread evenly over the test split")


def run(args: argparse.Namespace) -> int:
    try:
        from benchmarks.latency import (
            BenchSettings,
            load_model_under_test,
            parse_ints,
            parse_sizes,
            run_benchmark,
        )
        from benchmarks.report import write_results
        from benchmarks.runners import DEFAULT_BACKENDS
    except ImportError as exc:
        raise ImportError(f"{exc}; `deblur bench` runs from a source checkout of deblur-sdk "
                          "(the benchmarks package) with the training extra") from None
    import tempfile
    from pathlib import Path

    backends = DEFAULT_BACKENDS if args.backends == "all" else tuple(b for b in args.backends.split(",") if b.strip())
    settings = BenchSettings(backends=backends, sizes=parse_sizes(args.res), batches=parse_ints(args.batch, "--batch"),
                             warmup=args.warmup, iters=args.iters, device=args.device, threads=args.threads,
                             compile_backend=args.compile_backend, max_seconds=args.max_seconds,
                             allow_emulated_bf16=args.backends != "all")
    with tempfile.TemporaryDirectory(prefix="deblur-bench-") as tmp:
        mut = load_model_under_test(args.model, workdir=Path(tmp))
        print(f"benchmarking {mut.label}: {mut.source}")
        result = run_benchmark(mut, settings, progress=lambda msg: print(f"  {msg}", flush=True))
        paths = write_results(result, args.out, plot=not args.no_plot)
        if args.quality:
            from benchmarks.quality import QualitySettings, run_quality, write_quality

            # Emulated bf16/fp16 rows (AVX2 CPUs) take ~50x the float32 time: only on a capped set.
            quality = run_quality(mut, args.quality, QualitySettings(device=args.device, max_images=args.max_images,
                                                                     allow_emulated=args.max_images is not None))
            paths += write_quality(quality, Path(args.out) / result["device"]["slug"])
    for path in paths:
        print(f"wrote {path}")
    return 0
