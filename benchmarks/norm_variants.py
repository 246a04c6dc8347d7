"""Which normalisation the edge RDAFNets use: InstanceNorm (the paper), per-pixel LayerNorm, or none.

For each variant of ``rdafnet-nano`` this measures, on this machine:

- **tile exactness**: ``sdk.Deblurrer`` on a 1024x768 frame, tiled (``tile=256`` and the default
  overlap) against whole-frame, max and mean absolute difference in 8-bit grey levels;
- **CPU speed**: ONNX Runtime float32 at 1280x720 through ``sdk.Deblurrer``, ``threads`` intra-op
  threads, the variants interleaved call by call so that load on a shared machine hits all alike;
- **Orin projection**: the roofline of :mod:`benchmarks.roofline` (unfused and fused schedules), and
  how many full passes over block feature maps the normalisation adds that no fusion removes
  (InstanceNorm needs the whole map's statistics before it can normalise any pixel);
- **quality**: the held-out validation PSNR of short training runs of each variant (``--runs``), read
  from their ``val_log.csv``; the same config, seed, data and steps for all.

Weights come from each run's newest checkpoint, so exactness and quality are those of trained
networks. Results: ``benchmarks/results/<machine>/norm-variants.{json,md}``.

Example::

    python -m benchmarks.norm_variants --runs instance=runs/norm-instance layer=runs/norm-layer none=runs/norm-none
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import functools
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .devices import PEAKS, detect_device, library_versions, notable_cpu_flags
from .report import refuse_overwrite, results_pair, write_json_and_markdown
from .stats import time_interleaved

FRAME = (720, 1280)
TILE_FRAME = (768, 1024)
PROJECTED = ("orin-nx-16gb", "agx-orin-64gb")
RESULTS = Path(__file__).resolve().parent / "results"


def _newest_checkpoint(run: Path) -> Path:
    found = sorted((run / "checkpoints").glob("step-*.pt"))
    if not found:
        raise FileNotFoundError(f"no checkpoints in {run / 'checkpoints'}")
    return found[-1]


def _val_curve(run: Path) -> list[dict[str, float]]:
    with open(run / "val_log.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _norm_passes(model: Any) -> int:
    """Full read+write passes over block feature maps that InstanceNorm adds and fusion cannot remove."""
    from torch import nn

    return sum(2 for m in model.modules() if isinstance(m, nn.InstanceNorm2d))


def measure(runs: dict[str, Path], *, threads: int, iters: int) -> dict[str, Any]:
    import torch

    import sdk
    from export.onnx import export_onnx
    from training.checkpoint import load_model
    from training.models import build
    from training.receptive_field import probe_frame

    from .roofline import project_ms, total_macs, trace_ops

    work = Path(tempfile.mkdtemp(prefix="norm-variants-"))
    variants: dict[str, Any] = {}
    deblurrers = {}
    frame = probe_frame(*FRAME)
    tile_frame = probe_frame(*TILE_FRAME)
    for norm, run in runs.items():
        checkpoint = _newest_checkpoint(run)
        model, _ = load_model(checkpoint)
        if getattr(model, "norm", None) != norm:
            raise ValueError(f"{checkpoint} is a {getattr(model, 'norm', '?')!r} network, not {norm!r}")
        onnx_path = work / f"nano-{norm}.onnx"
        export_onnx(checkpoint, onnx_path)
        whole = sdk.Deblurrer(onnx_path, backend="onnxruntime", device="cpu", threads=threads,
                              max_pixels=TILE_FRAME[0] * TILE_FRAME[1])
        tiled = sdk.Deblurrer(onnx_path, backend="onnxruntime", device="cpu", threads=threads, tile=256)
        diff = np.abs(whole.process(tile_frame).astype(np.int16) - tiled.process(tile_frame).astype(np.int16))
        with torch.device("meta"):
            meta = build("rdafnet-nano", **model.model_kwargs).eval()
        ops = trace_ops(meta, (1, 3, *FRAME))
        curve = _val_curve(run)
        variants[norm] = {
            "checkpoint": str(checkpoint),
            "tile_vs_whole_grey_levels": {"max": int(diff.max()), "mean": float(diff.mean()),
                                          "tile": 256, "overlap": tiled.tile_overlap},
            "gmacs_720p": total_macs(ops) / 1e9,
            "projected_ms_720p": {dev: {s: project_ms(ops, PEAKS[dev], s) for s in ("unfused", "fused")}
                                  for dev in PROJECTED},
            "unfusable_norm_passes": _norm_passes(model),
            "validation": curve,
            "validation_last": curve[-1] if curve else None,
        }
        deblurrers[norm] = whole
    samples = time_interleaved({norm: functools.partial(d.process, frame) for norm, d in deblurrers.items()},
                               rounds=iters)
    for norm in runs:
        variants[norm]["ort_cpu_720p_ms"] = {"median": statistics.median(samples[norm]), "samples": samples[norm],
                                             "threads": threads}
    device = detect_device("cpu")
    return {"benchmark": "norm-variants", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "device": device.name, "slug": device.slug, "cpu_flags": notable_cpu_flags(),
            "load_average": list(map(float, Path("/proc/loadavg").read_text().split()[:3])),
            "versions": library_versions(), "variants": variants}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Edge RDAFNet normalisation: InstanceNorm vs per-pixel LayerNorm vs none ({result['date']})", "",
             f"Machine: {result['device']}; CPU flags: {result['cpu_flags']}; load average at the end "
             f"{result['load_average']}. Versions: {result['versions']}.", "",
             "| norm | val PSNR (dB) | input PSNR | tile vs whole: max / mean grey levels | ORT CPU 720p ms (median) "
             "| Orin NX ms unfused / fused (projected) | unfusable passes | GMACs 720p |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for norm, v in result["variants"].items():
        last = v["validation_last"] or {}
        proj = v["projected_ms_720p"]["orin-nx-16gb"]
        lines.append(f"| {norm} | {last.get('psnr', float('nan')):.2f} | {last.get('input_psnr', float('nan')):.2f} "
                     f"| {v['tile_vs_whole_grey_levels']['max']} / {v['tile_vs_whole_grey_levels']['mean']:.3f} "
                     f"| {v['ort_cpu_720p_ms']['median']:.0f} ({v['ort_cpu_720p_ms']['threads']} thr) "
                     f"| {proj['unfused']:.1f} / {proj['fused']:.1f} | {v['unfusable_norm_passes']} | {v['gmacs_720p']:.1f} |")
    lines += ["", "Validation: the runs' last held-out validation (engine preset `mixed`, scikit-image's coffee and "
              "rocket photos). Tiles: `sdk.Deblurrer(tile=256)` on a 1024x768 blurred photo. The fused Orin schedule "
              "counts normalisation as free; InstanceNorm's statistics pass makes that optimistic for it "
              "(the unfusable passes column).", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", nargs="+", required=True, metavar="NORM=RUN_DIR")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: benchmarks/results/<machine>)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing results files")
    args = parser.parse_args(argv)
    runs = {k: Path(v) for k, v in (item.split("=", 1) for item in args.runs)}
    out = args.out or RESULTS / detect_device("cpu").slug
    refuse_overwrite(results_pair(out, "norm-variants"), args.overwrite)
    result = measure(runs, threads=args.threads, iters=args.iters)
    write_json_and_markdown(out, "norm-variants", result, markdown(result), overwrite=args.overwrite)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
