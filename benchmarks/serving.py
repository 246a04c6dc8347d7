"""Load benchmark of ``deblur serve``: N concurrent clients on loopback against the same model in process.

For each frame size and each client count, every client (a thread with its own
:class:`sdk.RemoteDeblurrer` over gRPC) sends ``--frames`` frames one after the other, each as soon as the
previous one is back (a closed loop, as a camera that waits for its answer). Reported: frames per second
over the run, p50/p99 of one request's round trip, and the batches Triton formed (Triton's own
statistics, before/after). The baseline is :meth:`sdk.Deblurrer.process` in this process, one stream.

Example::

    python -m benchmarks.serving                                    # 256x256 and 1280x720, 1/2/4/8 clients
    python -m benchmarks.serving --sizes 256x256 --clients 1,8 --frames 4 --cpu 0

The server runs under ``$DEBLUR_SERVE_PYTHON`` (PyTriton's virtualenv); ``--cpu 0`` pins it and this
process to core 0, so server and clients share one core, as on a loaded edge box.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .devices import detect_device, library_versions, notable_cpu_flags
from .latency import Size, parse_ints, parse_sizes
from .report import refuse_overwrite, results_pair, write_json_and_markdown
from .stats import summarize

RESULTS = Path(__file__).resolve().parent / "results"


def _frames(size: Size, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size.height, size.width, 3), dtype=np.uint8) for _ in range(n)]


def in_process(size: Size, frames: int, threads: int) -> dict[str, Any]:
    """The baseline: ``sdk.Deblurrer.process`` on the bundled model, one stream, in this process."""
    import sdk

    with sdk.Deblurrer(threads=threads) as deblur:
        work = _frames(size, frames + 1, seed=1)
        deblur.process(work[0])                      # warm-up: session arenas, tile plans
        samples = []
        t0 = time.perf_counter()
        for f in work[1:]:
            t = time.perf_counter()
            deblur.process(f)
            samples.append((time.perf_counter() - t) * 1e3)
        wall = time.perf_counter() - t0
    stats = summarize(samples)
    return {"mode": "in process", "clients": 1, "frames": frames, "fps": frames / wall,
            "p50_ms": stats.p50_ms, "p99_ms": stats.p99_ms, "batches": {}}


def remote(url: str, size: Size, clients: int, frames: int) -> dict[str, Any]:
    """``clients`` threads, each sending ``frames`` frames in a closed loop; the batches the server formed."""
    from sdk.serving import RemoteDeblurrer

    probe = RemoteDeblurrer(url, timeout=600, retries=0)
    remotes = [RemoteDeblurrer(url, timeout=600, retries=0) for _ in range(clients)]
    work = [_frames(size, frames, seed=10 + i) for i in range(clients)]
    start = probe.batch_counts()
    probe.process(work[0][0])                        # warm-up: the server's arenas and plans for this size
    probe.batch_counts_after(start, 1)               # the warm-up is recorded before the baseline is read
    before = probe.batch_counts()
    samples: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        try:
            barrier.wait(60)
            for f in work[i]:
                t = time.perf_counter()
                remotes[i].process(f)
                samples[i].append((time.perf_counter() - t) * 1e3)
        except BaseException as exc:   # noqa: BLE001 — reported after the run
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait(60)
    t0 = time.perf_counter()
    for t in threads:
        t.join(3600)
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]}")
    flat = [s for per in samples for s in per]
    batches = probe.batch_counts_after(before, len(flat))
    for r in (probe, *remotes):
        r.close()
    stats = summarize(flat)
    return {"mode": "deblur serve (gRPC)", "clients": clients, "frames": len(flat), "fps": len(flat) / wall,
            "p50_ms": stats.p50_ms, "p99_ms": stats.p99_ms, "batches": dict(sorted(batches.items()))}


def _server_versions(python: str) -> dict[str, str]:
    code = ("import importlib.metadata as m, platform, json; print(json.dumps({'server python': platform.python_version(),"
            " **{'server ' + d: m.version(d) for d in ('nvidia-pytriton', 'tritonclient', 'numpy', 'onnxruntime')}}))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout) if out.returncode == 0 else {"server python": f"unknown ({out.stderr.strip()[-200:]})"}


def run(sizes: Sequence[Size], clients: Sequence[int], frames: dict[str, int], *, cpu: int | None, max_batch: int,
        queue_delay_us: int, threads: int) -> dict[str, Any]:
    from sdk.serving.launch import ServerProcess, serve_python

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    load_before = os.getloadavg()
    python = serve_python()
    rows: list[dict[str, Any]] = []
    server_args = ["--threads", str(threads), "--max-batch", str(max_batch), "--queue-delay-us", str(queue_delay_us)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with ServerProcess(server_args, python=python, env=env, cpu=cpu) as server:
        for size in sizes:
            n = frames.get(size.label, frames["default"])
            rows.append({"size": size.label, **in_process(size, n, threads)})
            print(_row_text(rows[-1]), flush=True)
            for c in clients:
                rows.append({"size": size.label, **remote(server.grpc_url, size, c, n)})
                print(_row_text(rows[-1]), flush=True)
    device = detect_device("cpu")
    return {
        "benchmark": "serving", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"device": device.name, "cpu flags": notable_cpu_flags(), "cores": os.cpu_count(),
                    "pinned to core": cpu, "os": platform.platform(),
                    "load average (1 min) before / after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]},
        "versions": {**library_versions(), **_server_versions(python)},
        "settings": {"max_batch": max_batch, "queue_delay_us": queue_delay_us, "onnxruntime threads": threads,
                     "protocol": "gRPC on 127.0.0.1", "frames per client": frames},
        "rows": rows,
    }


def _batches_text(batches: dict[Any, int]) -> str:
    return ", ".join(f"{n}x{size}" for size, n in sorted(batches.items(), key=lambda kv: int(kv[0]))) or "-"


def _row_text(row: dict[str, Any]) -> str:
    return (f"{row['size']:>9} {row['mode']:<20} {row['clients']:>2} clients  {row['fps']:7.2f} fps  "
            f"p50 {row['p50_ms']:8.1f} ms  p99 {row['p99_ms']:8.1f} ms  batches {_batches_text(row['batches'])}")


def markdown(result: dict[str, Any], note: str) -> str:
    m, v, s = result["machine"], result["versions"], result["settings"]
    lines = [
        "# `deblur serve` under load: concurrent clients on loopback vs the same model in process",
        "",
        f"{result['date']}; `python -m benchmarks.serving`; bundled model (rdafnet-nano, ONNX Runtime, CPU).",
        "",
        f"- machine: {m['device']}, {m['cores']} logical CPUs, server and clients pinned to core "
        f"{m['pinned to core']}; CPU flags: "
        f"{', '.join(m['cpu flags'])}; {m['os']}",
        "- load average (1 min) before / after the run: "
        + " / ".join(map(str, m.get("load average (1 min) before / after", ["not recorded"]))),
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- server: `deblur serve --max-batch {s['max_batch']} --queue-delay-us {s['queue_delay_us']} --threads "
        f"{s['onnxruntime threads']}`, {s['protocol']}; clients: one thread and one RemoteDeblurrer each, "
        "closed loop (next frame when the last is back)",
        f"- {note}",
        "",
        "| frame | mode | clients | frames | throughput (fps) | p50 (ms) | p99 (ms) | batches formed (count x size) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['size']} | {r['mode']} | {r['clients']} | {r['frames']} | {r['fps']:.2f} | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {_batches_text(r['batches'])} |")
    return "\n".join(lines) + "\n"


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256x256,1280x720", help="WxH list (default 256x256,1280x720)")
    parser.add_argument("--clients", default="1,2,4,8", help="client counts (default 1,2,4,8)")
    parser.add_argument("--frames", type=int, default=8, help="frames per client (default 8)")
    parser.add_argument("--frames-large", type=int, default=2,
                        help="frames per client for frames of a megapixel or more (default 2: CPU-heavy)")
    parser.add_argument("--cpu", type=int, default=0, help="pin server and clients to this core (-1: no pinning)")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--queue-delay-us", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (server and baseline)")
    parser.add_argument("--note", default="shared machine: other jobs (training, other benchmarks and tests) ran on "
                                          "both cores during the run (see the load average), so every number is "
                                          "pessimistic and noisy; compare rows of one run, not runs")
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results/<device>)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing results files")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)    # a killed benchmark still stops its server (with ServerProcess)
    sizes = parse_sizes(args.sizes)
    frames = {"default": args.frames, **{s.label: args.frames_large for s in sizes if s.height * s.width >= 900_000}}
    folder = args.out or RESULTS / detect_device("cpu").slug     # before pinning: the slug counts usable cores
    refuse_overwrite(results_pair(folder, "serving"), args.overwrite)
    result = run(sizes, parse_ints(args.clients, "clients"), frames, cpu=None if args.cpu < 0 else args.cpu,
                 max_batch=args.max_batch, queue_delay_us=args.queue_delay_us, threads=args.threads)
    write_json_and_markdown(folder, "serving", result, markdown(result, args.note), overwrite=args.overwrite)
    print(f"wrote {folder / 'serving.md'} and serving.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
