"""Is a new bundled model no slower than the one it replaces? Interleaved timing of ONNX files.

Each model runs through ``sdk.Deblurrer`` (ONNX Runtime, float32, ``threads`` intra-op threads) on the
same random frame; the models alternate call by call so that load on a shared machine hits all alike,
which makes their ratio meaningful even where the absolute times are not. Results:
``benchmarks/results/<machine>/<name>.{json,md}``.

Example::

    python -m benchmarks.model_swap new=sdk/models/default.onnx previous=old-default.onnx --size 1280x720
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .devices import detect_device, library_versions, notable_cpu_flags
from .report import refuse_overwrite, results_pair, write_json_and_markdown
from .stats import time_interleaved

RESULTS = Path(__file__).resolve().parent / "results"


def measure(models: dict[str, Path], *, height: int, width: int, threads: int, calls: int) -> dict[str, Any]:
    import sdk

    runners = {name: sdk.Deblurrer(str(path), device="cpu", backend="onnxruntime", threads=threads)
               for name, path in models.items()}
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    samples_ms = time_interleaved({name: functools.partial(r.process, frame) for name, r in runners.items()},
                                  rounds=calls)
    times = {name: [ms / 1000 for ms in samples] for name, samples in samples_ms.items()}
    first = next(iter(times))
    return {"size": f"{width}x{height}", "threads": threads, "calls": calls,
            "models": {name: {"path": str(models[name]), "median_s": statistics.median(ts),
                              "min_s": min(ts), "max_s": max(ts),
                              f"ratio_to_{first}": statistics.median(ts) / statistics.median(times[first])}
                       for name, ts in times.items()}}


def markdown(result: dict[str, Any]) -> str:
    first = next(iter(result["models"]))
    lines = [f"# Interleaved latency: {', '.join(result['models'])} ({result['date']})", "",
             f"`sdk.Deblurrer`, ONNX Runtime float32, {result['threads']} thread(s), {result['size']}, "
             f"{result['calls']} calls each, alternating. Machine: {result['device']} (CPU flags: "
             f"{', '.join(result['cpu_flags'])}); load average at the end {result['load_average']}. "
             f"Versions: {result['versions']}.", "",
             f"| model | file | median s | min s | max s | median / {first} |", "|---|---|---:|---:|---:|---:|"]
    for name, m in result["models"].items():
        lines.append(f"| {name} | `{m['path']}` | {m['median_s']:.3f} | {m['min_s']:.3f} | {m['max_s']:.3f} "
                     f"| {m[f'ratio_to_{first}']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("models", nargs="+", metavar="NAME=FILE.onnx")
    parser.add_argument("--size", default="1280x720", help="WxH (default 1280x720)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--name", default="model-swap", help="results file prefix")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: benchmarks/results/<machine>)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing results files")
    args = parser.parse_args(argv)
    models = {}
    for item in args.models:
        name, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            parser.error(f"expected NAME=FILE with an existing file, got {item!r}")
        models[name] = Path(path)
    width, height = (int(v) for v in args.size.lower().split("x"))
    device = detect_device("cpu")
    out = args.out or RESULTS / device.slug
    refuse_overwrite(results_pair(out, args.name), args.overwrite)
    result = measure(models, height=height, width=width, threads=args.threads, calls=args.calls)
    result.update(date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), device=device.name,
                  cpu_flags=notable_cpu_flags(), load_average=[round(v, 2) for v in os.getloadavg()],
                  versions=library_versions())
    write_json_and_markdown(out, args.name, result, markdown(result), overwrite=args.overwrite)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
