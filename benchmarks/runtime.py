"""Runtime overheads of ``sdk.Deblurrer`` and ``sdk.run`` against bare ONNX Runtime; writes a results file.

Three goals, each measured and recorded with pass/fail (a results file, not a timed test):

1. **Pre/post cost**: at 1280x720, pre-processing + post-processing + copies (``Deblurrer.process_timed``'s
   "pre" and "post") take <= 10 % of a bare ``InferenceSession.run`` on the already prepared tensor.
2. **Stream rate**: a 1280x720 video file through ``sdk.run`` (decode, queues, pre/post, a null sink)
   runs at >= 90 % of the bare inference rate (1 / median bare ``run`` time, measured just before and
   after the stream). Decoding, pre- and post-processing run in their own threads beside inference, so
   this needs a spare CPU core: with ONNX Runtime on CPU, pass ``--threads`` below the core count.
3. **Memory**: 1,000 frames through ``sdk.run`` grow resident memory by < 50 MB (after a warm-up run,
   so that buffers sized once do not count).

Usage (the bundled default model, or any ``.onnx``)::

    python -m benchmarks.runtime                                   # -> benchmarks/results/<device>/runtime.json
    python -m benchmarks.runtime --model model.onnx --device cpu --threads 2 --out /tmp/runtime.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import sdk  # noqa: E402
from benchmarks.devices import detect_device, library_versions  # noqa: E402
from benchmarks.stats import HostClock, summarize, time_calls  # noqa: E402
from sdk.cli.demo import load_demo_image  # noqa: E402
from sdk.processing import FrameConverter, inspect_frame, padded_size  # noqa: E402
from sdk.stream import NullSink, VideoFileSink, VideoSource  # noqa: E402

SIZE = (720, 1280)
OVERHEAD_LIMIT = 0.10
STREAM_RATE_FLOOR = 0.90
MEMORY_LIMIT_MB = 50.0


def resident_mb() -> float:
    """Current resident set size (Linux /proc; elsewhere the peak from getrusage, which only grows)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_frames(count: int, size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """Natural-looking frames: the bundled photo, resized, panned, with a little noise."""
    base = cv2.resize(load_demo_image(), (size[1] + 64, size[0] + 64), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        dx, dy = (i * 3) % 64, (i * 2) % 64
        crop = base[dy:dy + size[0], dx:dx + size[1]].astype(np.int16)
        frames.append(np.clip(crop + rng.integers(-3, 4, crop.shape), 0, 255).astype(np.uint8))
    return frames


def bare_session_run(deblur: sdk.Deblurrer, frame: np.ndarray, warmup: int, iters: int) -> dict[str, Any]:
    """``InferenceSession.run`` on a tensor prepared once: the floor every wrapper is measured against."""
    backend = deblur.backend
    session = getattr(backend, "session", None)
    if session is None:
        raise SystemExit(f"the bare baseline needs an ONNX Runtime model; {deblur.info.backend} was given")
    spec = inspect_frame(frame)
    conv = FrameConverter(deblur.manifest)
    hw = padded_size(spec.height, spec.width, deblur.manifest.pad_multiple, backend.limits.min_hw)
    planes = conv.to_model(frame, spec, np.empty(conv.planes_shape(spec, hw), np.float32))
    batch = conv.batch_view(planes)
    model_input = session.get_inputs()[0]
    feed = {model_input.name: batch.astype(np.float16 if model_input.type == "tensor(float16)" else np.float32)}
    samples = time_calls(lambda: session.run(None, feed), warmup=warmup, iters=iters, clock=HostClock())
    return summarize(samples).to_dict()


def overhead(deblur: sdk.Deblurrer, frame: np.ndarray, bare_p50_ms: float, warmup: int, iters: int) -> dict[str, Any]:
    for _ in range(warmup):
        deblur.process_timed(frame)
    pre, infer, post, total = [], [], [], []
    for _ in range(iters):
        t0 = time.perf_counter()
        _, t = deblur.process_timed(frame)
        total.append((time.perf_counter() - t0) * 1e3)
        pre.append(t["pre"] * 1e3)
        infer.append(t["infer"] * 1e3)
        post.append(t["post"] * 1e3)
    pre_post = [a + b for a, b in zip(pre, post)]
    ratio = float(np.median(pre_post)) / bare_p50_ms
    return {"pre_ms": summarize(pre).to_dict(), "post_ms": summarize(post).to_dict(),
            "infer_ms": summarize(infer).to_dict(), "process_ms": summarize(total).to_dict(),
            "pre_post_p50_ms": float(np.median(pre_post)), "pre_post_over_bare": ratio,
            "limit": OVERHEAD_LIMIT, "passed": ratio <= OVERHEAD_LIMIT}


def stream_rate(deblur: sdk.Deblurrer, frames: list[np.ndarray], workdir: Path, warmup: int,
                iters: int) -> dict[str, Any]:
    """The stream's output rate against the bare rate measured just before and just after it, so that
    a machine whose load changes during the run does not decide the verdict."""
    clip = workdir / "stream_720p.mp4"
    sink = VideoFileSink(clip, fps=30)
    for frame in frames:
        sink.write(frame)
    sink.close()
    before = bare_session_run(deblur, frames[0], warmup, iters)["p50_ms"]
    runner = sdk.run(VideoSource(clip), deblur, sinks=[NullSink()])
    snap = runner.snapshot()
    after = bare_session_run(deblur, frames[0], 0, iters)["p50_ms"]
    bare_fps = 1e3 / ((before + after) / 2)
    ratio = snap.fps_out / bare_fps
    return {"frames": snap.written, "dropped": snap.dropped, "elapsed_s": snap.elapsed, "stream_fps": snap.fps_out,
            "bare_p50_ms_before": before, "bare_p50_ms_after": after, "bare_inference_fps": bare_fps,
            "ratio": ratio, "floor": STREAM_RATE_FLOOR, "passed": ratio >= STREAM_RATE_FLOOR and snap.dropped == 0,
            "stages_ms": snap.latency_ms}


def memory_growth(deblur: sdk.Deblurrer, count: int, size: tuple[int, int]) -> dict[str, Any]:
    base = test_frames(8, size)

    def frames(n: int):
        for i in range(n):
            yield base[i % len(base)].copy()        # a fresh array per frame, as a decoder hands out

    sdk.run(VideoSource.from_iterable(frames(50)), deblur, sinks=[NullSink()])     # warm-up: size every buffer
    before = resident_mb()
    runner = sdk.run(VideoSource.from_iterable(frames(count)), deblur, sinks=[NullSink()])
    after = resident_mb()
    growth = after - before
    return {"frames": runner.snapshot().written, "frame_size": list(size), "rss_before_mb": before,
            "rss_after_mb": after, "growth_mb": growth, "limit_mb": MEMORY_LIMIT_MB, "passed": growth < MEMORY_LIMIT_MB}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an .onnx model (default: the bundled model)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: ONNX Runtime's)")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--stream-frames", type=int, default=60)
    parser.add_argument("--memory-frames", type=int, default=1000)
    parser.add_argument("--memory-size", default="256x256", help="HxW of the memory test's frames")
    parser.add_argument("--out", help="results file (default: benchmarks/results/<device>/runtime.json)")
    args = parser.parse_args(argv)

    options = {"threads": args.threads} if args.threads else {}
    deblur = sdk.Deblurrer(args.model, device=args.device, **options)
    info = deblur.info
    device = detect_device("cpu" if info.device == "cpu" else info.device)
    print(f"model {info.model} ({info.backend}, {info.device}, {info.precision}) on {device.name}", file=sys.stderr)
    frame = test_frames(1, SIZE)[0]

    results: dict[str, Any] = {
        "benchmark": "runtime", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device.to_dict(), "versions": library_versions(),
        "model": {"path": info.model, "variant": info.manifest.variant, "backend": info.backend,
                  "device": info.device, "precision": info.precision, **info.details},
        "frame": list(SIZE), "iters": args.iters, "warmup": args.warmup,
    }
    results["bare_onnxruntime_ms"] = bare = bare_session_run(deblur, frame, args.warmup, args.iters)
    print(f"bare InferenceSession.run at {SIZE[1]}x{SIZE[0]}: p50 {bare['p50_ms']:.1f} ms", file=sys.stderr)
    results["pre_post_overhead"] = overhead(deblur, frame, bare["p50_ms"], args.warmup, args.iters)
    with tempfile.TemporaryDirectory() as tmp:
        results["file_stream"] = stream_rate(deblur, test_frames(args.stream_frames, SIZE), Path(tmp), args.warmup,
                                             args.iters)
    h, w = (int(v) for v in args.memory_size.lower().split("x"))
    results["memory"] = memory_growth(deblur, args.memory_frames, (h, w))

    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / device.slug / "runtime.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    o, s, m = results["pre_post_overhead"], results["file_stream"], results["memory"]
    print(f"pre+post   {o['pre_post_p50_ms']:.2f} ms = {o['pre_post_over_bare']:.1%} of bare "
          f"(limit {OVERHEAD_LIMIT:.0%})  {'PASS' if o['passed'] else 'FAIL'}")
    print(f"stream     {s['stream_fps']:.2f} fps = {s['ratio']:.1%} of bare {s['bare_inference_fps']:.2f} fps "
          f"(floor {STREAM_RATE_FLOOR:.0%}), dropped {s['dropped']}  {'PASS' if s['passed'] else 'FAIL'}")
    print(f"memory     +{m['growth_mb']:.1f} MB over {m['frames']} frames (limit {MEMORY_LIMIT_MB:g} MB)  "
          f"{'PASS' if m['passed'] else 'FAIL'}")
    print(f"wrote {out}")
    return 0 if all(r["passed"] for r in (o, s, m)) else 1


if __name__ == "__main__":
    sys.exit(main())
