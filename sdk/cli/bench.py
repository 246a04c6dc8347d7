"""``deblur bench``: latency (and optionally quality) of a model on every backend this machine has.

Every backend is the SDK's own, opened through its registry; end-to-end times are ``sdk.Deblurrer``
calls. On a model file (``.onnx``, ``.xml``, ``.engine``) it needs no PyTorch: ``pip install
"deblur-sdk[openvino]"`` is enough to compare ONNX Runtime with OpenVINO fp32/bf16/int8. Results go to
a folder you name, by default a new ``deblur-bench-<time>`` folder in the current directory, and files
there are never replaced unless ``--overwrite`` is given.

Examples::

    deblur bench                                       # the bundled default model
    deblur bench model.onnx --backends ort-cpu,openvino-fp32,openvino-bf16 --res 720p --threads 1
    deblur bench model.onnx --backends openvino-int8 --calibration synth_out/train     # int8 IR made on the fly
    deblur bench rdafnet-nano --res 256,720p --batch 1,4 --out my-results
    deblur bench model.onnx --quality synth_out        # also PSNR/SSIM per backend on the test split
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "benchmark a model's latency on every available backend (PyTorch, ONNX Runtime, OpenVINO, TensorRT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", default=None,
                        help="bundled model name (default, small), registry name (e.g. rdafnet-nano, untrained), .pt "
                             "checkpoint, .onnx, OpenVINO .xml or TensorRT .engine; default: the bundled default")
    parser.add_argument("--backends", default="all",
                        help="comma-separated: torch[-compile|-triton][-fp32|-fp16|-bf16], ort-cpu, ort-cuda, "
                             "openvino[-fp32|-bf16|-int8], tensorrt (default: all; those this machine lacks are "
                             "listed as unavailable, with why)")
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
                        help="CPU threads for PyTorch, ONNX Runtime and OpenVINO alike (default: each one's own)")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (default: inductor)")
    parser.add_argument("--int8", metavar="XML", default=None,
                        help="an int8 OpenVINO IR of the model (`deblur export --to openvino --precision int8`)")
    parser.add_argument("--calibration", metavar="DIR", default=None,
                        help="frames to quantise an int8 IR on, when --int8 is not given")
    parser.add_argument("--out", default=None,
                        help="results folder; files go to OUT/<device>/<model>.{json,md,png} "
                             "(default: a new deblur-bench-<UTC time> folder in the current directory)")
    parser.add_argument("--interleave", action="store_true",
                        help="open every backend first and alternate their timed calls, so that a shared machine's "
                             "changing load falls on all alike")
    parser.add_argument("--overwrite", action="store_true", help="replace results files that already exist in OUT")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    parser.add_argument("--quality", metavar="DATA", default=None,
                        help="also score PSNR/SSIM per backend and precision on DATA's test split (benchmarks.quality)")
    parser.add_argument("--max-images", type=int, default=None, metavar="N", help="with --quality: N pairs spread evenly over the test split")


def default_out() -> str:
    import datetime as dt

    return f"deblur-bench-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%d-%H%M%S')}"


def _refuse_before_running(out: Path, label: str, overwrite: bool) -> None:
    """The write would refuse anyway; saying so before a long benchmark saves the wait."""
    from benchmarks.devices import slugify
    from benchmarks.report import refuse_overwrite

    if out.is_dir():
        refuse_overwrite(sorted(out.glob(f"*/{slugify(label)}.json")), overwrite)


def run(args: argparse.Namespace) -> int:
    try:
        from benchmarks.choices import DEFAULT_BACKENDS
        from benchmarks.latency import (
            BenchSettings,
            load_model_under_test,
            parse_ints,
            parse_sizes,
            run_benchmark,
        )
        from benchmarks.report import write_results
    except ImportError as exc:
        raise ImportError(f"{exc}; `deblur bench` needs the benchmarks package of deblur-sdk (installed with it)") from None
    import tempfile

    backends = DEFAULT_BACKENDS if args.backends == "all" else tuple(b for b in args.backends.split(",") if b.strip())
    settings = BenchSettings(backends=backends, sizes=parse_sizes(args.res), batches=parse_ints(args.batch, "--batch"),
                             warmup=args.warmup, iters=args.iters, device=args.device, threads=args.threads,
                             compile_backend=args.compile_backend, max_seconds=args.max_seconds,
                             allow_emulated_bf16=args.backends != "all", calibration=args.calibration,
                             interleave=args.interleave)
    out = args.out or default_out()
    with tempfile.TemporaryDirectory(prefix="deblur-bench-") as tmp:
        mut = load_model_under_test(args.model, workdir=Path(tmp))
        if args.int8:
            mut.model_files.append(Path(args.int8))
        _refuse_before_running(Path(out), mut.label, args.overwrite)
        print(f"benchmarking {mut.label}: {mut.source}")
        result = run_benchmark(mut, settings, progress=lambda msg: print(f"  {msg}", flush=True))
        paths = write_results(result, out, plot=not args.no_plot, overwrite=args.overwrite)
        if args.quality:
            from benchmarks.quality import QUALITY_BACKENDS, QualitySettings, run_quality, write_quality

            # Emulated bf16/fp16 rows (AVX2 CPUs) take ~50x the float32 time: only on a capped set.
            rows = QUALITY_BACKENDS if args.backends == "all" else backends
            quality = run_quality(mut, args.quality, QualitySettings(
                backends=rows, device=args.device, max_images=args.max_images, threads=args.threads,
                allow_emulated=args.max_images is not None, calibration=args.calibration))
            paths += write_quality(quality, Path(out) / result["device"]["slug"], overwrite=args.overwrite)
    for path in paths:
        print(f"wrote {path}")
    return 0
