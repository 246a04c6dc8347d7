"""The model sizing table (``benchmarks/results/model_sizes.md``) and the edge-size recommendation.

For every registered image-to-image model: parameters, MACs per 1280x720 and 1920x1080 frame
(``training.models.complexity``), PyTorch eager float32 latency *measured* on this machine at
256x256 batch 1, and latency *projected* with the roofline of :mod:`benchmarks.roofline` on Jetson
Orin Nano / NX / AGX, RTX 4090 and H100. Measured and projected numbers live in separate tables.

The edge search varies the single-stage RDAFNet's ``base_channels`` and ``num_blocks`` and finds
which fit a projected 720p budget on Orin NX: 33 ms for ``rdafnet-nano``, 100 ms for
``rdafnet-small``. A network's time is exactly linear in its block count (identical blocks), so two
traces per width give every depth; the recommended size is traced again directly as a check.

Run ``python -m benchmarks.sizing`` (``--no-measure`` skips the CPU timings, e.g. on a loaded machine).

Example::

    >>> search = edge_search(budget_ms=33.0)
    >>> recommend(search, budget_ms=33.0, schedule="fused").base_channels
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdk.processing import padded_size

from .devices import PEAKS, detect_device, library_versions
from .roofline import BANDWIDTH_EFFICIENCY, COMPUTE_EFFICIENCY, SCHEDULES, project_ms, trace_ops

PROJECTED_DEVICES = ("orin-nano-8gb", "orin-nx-16gb", "agx-orin-64gb", "rtx-4090", "h100-sxm")
FRAME_SIZES = ((720, 1280), (1080, 1920))
MEASURED_SIZE = (256, 256)
SEARCH_DEVICE = "orin-nx-16gb"
SEARCH_SIZE = (720, 1280)
SEARCH_CHANNELS = (8, 12, 16, 20, 24, 32, 40, 48, 64)
MAX_BLOCKS = 16
MIN_BLOCKS = 4            # the recommendation keeps at least the current nano's depth
BUDGETS_MS = {"rdafnet-nano": 33.0, "rdafnet-small": 100.0}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "model_sizes.md"


def _meta_build(name: str, **overrides: Any) -> Any:
    from training.models import build

    with torch.device("meta"):     # counting and tracing need shapes only
        return build(name, **overrides).eval()


def image_models() -> list[str]:
    """Registered networks that restore images (GAN critics excluded)."""
    from training.models import list_models

    return [n for n in list_models() if not _meta_build(n).is_critic]


# --------------------------------------------------------------------------- the table
@dataclass
class ModelRow:
    name: str
    params: int
    macs: dict[str, int]                       # "1280x720" -> MACs of one padded frame
    projected_ms: dict[str, dict[str, float]]  # "1280x720" -> "orin-nx-16gb/fused" -> ms
    measured_p50_ms: float | None = None
    measured_n: int = 0


def size_row(name: str) -> ModelRow:
    from training.models.complexity import count_macs, count_parameters

    net = _meta_build(name)
    row = ModelRow(name=name, params=count_parameters(net), macs={}, projected_ms={})
    for h, w in FRAME_SIZES:
        shape = (1, 3, *padded_size(h, w, net.pad_multiple))
        label = f"{w}x{h}"
        row.macs[label] = int(count_macs(net, shape))
        ops = trace_ops(net, shape)
        row.projected_ms[label] = {f"{key}/{schedule}": project_ms(ops, PEAKS[key], schedule)
                                   for key in PROJECTED_DEVICES for schedule in SCHEDULES}
    return row


def measure_cpu(row: ModelRow, *, warmup: int, iters: int, max_seconds: float) -> None:
    """PyTorch eager float32 at 256x256, batch 1, on this machine's CPU (random weights: latency only)."""
    from sdk.backends.torch import TorchBackend
    from training.checkpoint import model_manifest
    from training.models import build

    from .stats import HostClock, summarize, time_calls

    torch.manual_seed(0)
    net = build(row.name)
    backend = TorchBackend.from_module(net, model_manifest(net), device="cpu", kernels="reference")
    shape = (1, 3, *padded_size(*MEASURED_SIZE, net.pad_multiple))
    samples = time_calls(backend.device_call(np.zeros(shape, np.float32)), warmup=warmup, iters=iters,
                         clock=HostClock(), max_seconds=max_seconds)
    backend.close()
    stats = summarize(samples)
    row.measured_p50_ms, row.measured_n = stats.p50_ms, stats.n


# --------------------------------------------------------------------------- the edge search
@dataclass(frozen=True)
class DepthFit:
    """One width of the search: projected time = fixed_ms + per_block_ms x blocks, per schedule."""

    base_channels: int
    fixed_ms: dict[str, float]
    per_block_ms: dict[str, float]
    macs_fixed: int
    macs_per_block: int

    def time_ms(self, blocks: int, schedule: str) -> float:
        return self.fixed_ms[schedule] + self.per_block_ms[schedule] * blocks

    def max_blocks(self, budget_ms: float, schedule: str) -> int:
        """The most blocks (0..MAX_BLOCKS) whose projected time fits ``budget_ms``."""
        room = budget_ms - self.fixed_ms[schedule]
        return 0 if room < self.per_block_ms[schedule] else min(MAX_BLOCKS, math.floor(room / self.per_block_ms[schedule]))

    def macs(self, blocks: int) -> int:
        return self.macs_fixed + self.macs_per_block * blocks


def depth_fit(base_channels: int, size: tuple[int, int] = SEARCH_SIZE, device: str = SEARCH_DEVICE) -> DepthFit:
    """Trace RDAFNet(base_channels, 1 and 2 blocks) at ``size`` and fit time and MACs linear in blocks."""
    shape = (1, 3, *size)
    traces = {b: trace_ops(_meta_build("rdafnet-single", base_channels=base_channels, num_blocks=b), shape) for b in (1, 2)}
    times = {b: {s: project_ms(ops, PEAKS[device], s) for s in SCHEDULES} for b, ops in traces.items()}
    macs = {b: sum(op.flops for op in ops) // 2 for b, ops in traces.items()}
    per_block = {s: times[2][s] - times[1][s] for s in SCHEDULES}
    return DepthFit(base_channels, fixed_ms={s: times[1][s] - per_block[s] for s in SCHEDULES}, per_block_ms=per_block,
                    macs_fixed=macs[1] - (macs[2] - macs[1]), macs_per_block=macs[2] - macs[1])


def edge_search(channels: Sequence[int] = SEARCH_CHANNELS) -> list[DepthFit]:
    return [depth_fit(c) for c in channels]


@dataclass(frozen=True)
class Recommendation:
    budget_ms: float
    schedule: str
    base_channels: int
    num_blocks: int
    projected_ms: float
    direct_ms: float          # the same configuration traced directly (checks the linear fit)
    macs_720p: int
    params: int


def recommend(search: Sequence[DepthFit], budget_ms: float, schedule: str,
              min_blocks: int = MIN_BLOCKS) -> Recommendation | None:
    """The largest network (most MACs) with at least ``min_blocks`` blocks whose projection fits ``budget_ms``."""
    from training.models.complexity import count_parameters

    fits = [(fit.macs(fit.max_blocks(budget_ms, schedule)), fit) for fit in search
            if fit.max_blocks(budget_ms, schedule) >= min_blocks]
    if not fits:
        return None
    _, best = max(fits, key=lambda t: t[0])
    blocks = best.max_blocks(budget_ms, schedule)
    net = _meta_build("rdafnet-single", base_channels=best.base_channels, num_blocks=blocks)
    direct = project_ms(trace_ops(net, (1, 3, *SEARCH_SIZE)), PEAKS[SEARCH_DEVICE], schedule)
    return Recommendation(budget_ms, schedule, best.base_channels, blocks, best.time_ms(blocks, schedule), direct,
                          best.macs(blocks), count_parameters(net))


# --------------------------------------------------------------------------- writing
def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
            + ["| " + " | ".join(r) + " |" for r in rows])


def _current_size(name: str) -> tuple[int, int]:
    """(base_channels, num_blocks) of a registered single-stage RDAFNet, read off the built network."""
    net = _meta_build(name)
    return int(net.trunk.shallow.out_channels), len(net.trunk.blocks)


def sizing_markdown(rows: Sequence[ModelRow], search: Sequence[DepthFit], recs: dict[str, dict[str, Recommendation | None]],
                    device: dict[str, Any] | None, created: str, settings: dict[str, Any]) -> str:
    names = {k: PEAKS[k].name for k in PROJECTED_DEVICES}
    lines = ["# Model sizes: parameters, MACs, measured CPU latency, projected edge latency", "",
             f"Generated {created} by `python -m benchmarks.sizing`. MACs come from "
             "`training.models.complexity.count_macs` at the size the runtime feeds (padded to the model's multiple).",
             "", "## Size and cost", ""]
    lines += _table(("model", "params", "GMACs 1280x720", "GMACs 1920x1080"),
                    [(r.name, f"{r.params:,}", f"{r.macs['1280x720'] / 1e9:,.1f}", f"{r.macs['1920x1080'] / 1e9:,.1f}")
                     for r in rows])
    lines += ["", "## Measured on this machine", ""]
    if device is None:
        lines.append("Not measured in this run (`--no-measure`).")
    else:
        lines += [f"PyTorch eager float32, {MEASURED_SIZE[1]}x{MEASURED_SIZE[0]}, batch 1, random weights; p50 of "
                  f"the timed calls (warm-up {settings['warmup']}, up to {settings['iters']} calls or "
                  f"{settings['max_seconds']:g} s). Device: {device['name']}; threads {settings['threads']}; clocks "
                  f"{', '.join(f'{k} {v}' for k, v in device['clocks'].items())}.", ""]
        lines += _table(("model", "p50 ms", "timed calls"),
                        [(r.name, f"{r.measured_p50_ms:,.1f}", str(r.measured_n)) for r in rows if r.measured_p50_ms is not None])
    lines += ["", "## Projected (not measured)", "",
              f"Method: one forward pass on PyTorch's meta device records every ATen operator with its FLOPs "
              f"(torch.utils.flop_counter) and the bytes it reads and writes at 2 bytes per element (FP16). Each operator "
              f"costs max(FLOPs at {COMPUTE_EFFICIENCY:.0%} of the FP16 dense tensor peak, bytes at "
              f"{BANDWIDTH_EFFICIENCY:.0%} of DRAM bandwidth); operators run serially (perf-anchors.md §3.2). "
              "**fused**: elementwise, normalisation, padding and concatenation are free (folded into the convolutions "
              "beside them): a lower bound. **unfused**: every operator is a kernel of its own: an upper bound. "
              "Peaks: perf-anchors.md §1.1 (" + "; ".join(f"{PEAKS[k].name} {PEAKS[k].fp16_tflops:g} TFLOP/s, "
                                                          f"{PEAKS[k].bandwidth_gbs:g} GB/s" for k in PROJECTED_DEVICES) + ").",
              "", "Cross-check: perf-anchors.md §3.2 projects the paper's single-stage RDAFNet at 720p on Orin NX at "
              "763 ms (custom-fused), 1029 ms (TensorRT-like) and 1444 ms (unfused); this model's projection for "
              "`rdafnet-single` is in the table below.", ""]
    for label in ("1280x720", "1920x1080"):
        lines += [f"### Projected ms per {label} frame (fused / unfused)", ""]
        lines += _table(("model", *(names[k] for k in PROJECTED_DEVICES)),
                        [(r.name, *(f"{r.projected_ms[label][k + '/fused']:,.1f} / {r.projected_ms[label][k + '/unfused']:,.1f}"
                                    for k in PROJECTED_DEVICES)) for r in rows])
        lines.append("")
    lines += [f"## Edge sizes for {PEAKS[SEARCH_DEVICE].name}: projected 1280x720", "",
              "Single-stage RDAFNet with `base_channels` C (blocks run at 2C channels on H/2 x W/2) and `num_blocks` N. "
              "Projected time is linear in N (identical blocks): fixed + N x per-block, both from two traces per C.", ""]
    header = ["C", "blocks at", "fixed ms (fused/unfused)", "ms per block (fused/unfused)"]
    for budget in BUDGETS_MS.values():
        header += [f"max N ≤ {budget:g} ms fused", f"max N ≤ {budget:g} ms unfused"]
    table = []
    for fit in search:
        row = [str(fit.base_channels), f"{2 * fit.base_channels} ch",
               f"{fit.fixed_ms['fused']:.1f} / {fit.fixed_ms['unfused']:.1f}",
               f"{fit.per_block_ms['fused']:.2f} / {fit.per_block_ms['unfused']:.2f}"]
        for budget in BUDGETS_MS.values():
            row += [str(fit.max_blocks(budget, s)) for s in SCHEDULES]
        table.append(row)
    lines += _table(header, table) + [""]
    lines += ["### Edge sizes: the registry's nano and small against their Orin NX budgets", "",
              f"Rule: the most MACs among configurations with N ≥ {MIN_BLOCKS} that fit the budget. \"fused\" assumes "
              "TensorRT plus our fused kernels remove all elementwise traffic; \"unfused\" holds even if nothing fuses.", ""]
    for model, budget in BUDGETS_MS.items():
        c, n = _current_size(model)
        fit = next((f for f in search if f.base_channels == c), None) or depth_fit(c)
        now = {s: fit.time_ms(n, s) for s in SCHEDULES}
        lines.append(f"- `{model}` (budget {budget:g} ms): today C={c}, N={n}: projected {now['fused']:.1f} ms fused / "
                     f"{now['unfused']:.1f} ms unfused ({'fits' if now['fused'] <= budget else 'does not fit'} fused, "
                     f"{'fits' if now['unfused'] <= budget else 'does not fit'} unfused).")
        for schedule in SCHEDULES:
            rec = recs[model][schedule]
            if rec is None:
                lines.append(f"  - {schedule}: no configuration with N ≥ {MIN_BLOCKS} fits.")
            else:
                lines.append(f"  - {schedule}: C={rec.base_channels}, N={rec.num_blocks}: {rec.projected_ms:.1f} ms "
                             f"(direct trace {rec.direct_ms:.1f} ms), {rec.macs_720p / 1e9:.1f} GMACs at 720p, "
                             f"{rec.params:,} params.")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sizing", description="write benchmarks/results/model_sizes.md")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"Markdown path (default {DEFAULT_OUT}); JSON beside it")
    parser.add_argument("--no-measure", action="store_true", help="skip the CPU latency column")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time cap of each model's timed series")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch CPU threads (default: its current setting)")
    parser.add_argument("--models", default=None, help="comma-separated subset of the registry (default: all)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.models.split(",") if args.models else image_models()
    rows = []
    for name in names:
        row = size_row(name)
        if not args.no_measure:
            measure_cpu(row, warmup=args.warmup, iters=args.iters, max_seconds=args.max_seconds)
        print(f"{name}: {row.params:,} params, {row.macs['1280x720'] / 1e9:.1f} GMACs at 720p"
              + (f", CPU p50 {row.measured_p50_ms:.1f} ms" if row.measured_p50_ms is not None else ""), flush=True)
        rows.append(row)
    search = edge_search()
    recs = {m: {s: recommend(search, b, s) for s in SCHEDULES} for m, b in BUDGETS_MS.items()}
    device = None if args.no_measure else detect_device("cpu").to_dict()
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    settings = {"warmup": args.warmup, "iters": args.iters, "max_seconds": args.max_seconds,
                "threads": torch.get_num_threads()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(sizing_markdown(rows, search, recs, device, created, settings), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({
        "schema": "deblur-sizing/1", "created": created, "device": device, "settings": settings,
        "versions": library_versions(), "models": [asdict(r) for r in rows],
        "search": {"device": SEARCH_DEVICE, "size": SEARCH_SIZE, "fits": [asdict(f) for f in search]},
        "recommendations": {m: {s: (asdict(r) if r else None) for s, r in v.items()} for m, v in recs.items()},
    }, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
