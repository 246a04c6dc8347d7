"""How far a trained network's output really reaches: theoretical support, effective radius, tile sweep.

For one checkpoint this measures, on this machine:

- **support** (theoretical receptive field): the largest distance (pixels, Chebyshev) at which the
  input has any non-zero gradient on a central output pixel;
- **influence tail**: for each radius R, ``tail(R)`` = the sum of ``|d out / d in|`` over input pixels
  farther than R (all input channels; the worst output channel and probe position). Content beyond
  R can move that output by at most ``full input range x tail(R)`` to first order, so the
  **effective radius** is the smallest R whose bound is below half an 8-bit grey level;
- **tile sweep**: ``sdk.Deblurrer(tile=256)`` on a blurred photo against the whole frame, for
  several ``tile_overlap`` values: max and mean absolute difference in 8-bit grey levels.

Results: ``benchmarks/results/<machine>/receptive-field-<variant>.{json,md}``.

Example::

    python -m benchmarks.receptive_field runs/norm-none/best.pt --overlaps 0 8 16 32 64
"""

from __future__ import annotations

import argparse
import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.receptive_field import GREY_LEVELS, grown_tail, probe_frame

from .devices import detect_device, library_versions, notable_cpu_flags
from .norm_variants import RESULTS
from .report import write_json_and_markdown

def tile_frame(tile: int) -> tuple[int, int]:
    """The photo the sweep tiles: 512x768 for 256-px tiles, and for larger tiles room for two rows of
    tiles and three columns once the overlap is large."""
    return max(512, tile + tile // 2), max(768, 2 * tile)


def tile_sweep(checkpoint: Path, overlaps: Sequence[int], *, tile: int = 256) -> list[dict[str, Any]]:
    import sdk

    frame = probe_frame(*tile_frame(tile))
    whole = sdk.Deblurrer(checkpoint, backend="torch", device="cpu", max_pixels=frame.shape[0] * frame.shape[1])
    reference = whole.process(frame).astype(np.int16)
    rows = []
    for overlap in overlaps:
        tiled = sdk.Deblurrer(checkpoint, backend="torch", device="cpu", tile=tile)
        tiled.tile_overlap = overlap          # exactly this overlap, not the manifest's rule
        diff = np.abs(tiled.process(frame).astype(np.int16) - reference)
        rows.append({"overlap": overlap, "tile": tile, "max": int(diff.max()), "mean": float(diff.mean()),
                     "share_off": float((diff > 0).mean())})
    return rows


def measure(checkpoint: Path, overlaps: Sequence[int], *, tile: int = 256) -> dict[str, Any]:
    import torch

    from training.checkpoint import load_model

    torch.set_num_threads(1)
    model, _ = load_model(checkpoint)
    model.eval()
    probe, tail, radius = grown_tail(model)         # the probe grows until it holds 4x the radius
    support = int(np.nonzero(tail > 0)[0].max()) + 1 if (tail > 0).any() else 0
    device = detect_device("cpu")
    return {
        "benchmark": "receptive-field", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device.name, "slug": device.slug, "cpu_flags": notable_cpu_flags(), "versions": library_versions(),
        "load_average": list(map(float, Path("/proc/loadavg").read_text().split()[:3])),
        "checkpoint": str(checkpoint), "variant": model.model_name, "model_kwargs": dict(model.model_kwargs),
        "probe_px": probe, "support_px": support, "effective_radius_px": radius,
        "bound_grey_levels_by_radius": {r: float(tail[r] * GREY_LEVELS) for r in
                                        (0, 2, 4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256)
                                        if r < len(tail)},
        "tile": tile, "tile_frame": list(tile_frame(tile)),
        "tile_sweep": tile_sweep(checkpoint, overlaps, tile=tile),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Receptive field of {result['variant']} {result['model_kwargs']} ({result['date']})", "",
             f"Checkpoint `{result['checkpoint']}`. Machine: {result['device']} (CPU flags: "
             f"{', '.join(result.get('cpu_flags', [])) or 'not recorded'}; shared, load average "
             f"{result['load_average']}). Versions: {result['versions']}.", "",
             f"- theoretical support: **{result['support_px']} px** (largest distance with a non-zero gradient "
             f"inside the {result.get('probe_px', 256)}-px probe)",
             f"- effective radius: **{result['effective_radius_px']} px** (content beyond it moves an output by "
             "under half a grey level, first order, whatever it is)", "",
             "| radius R (px) | worst-case change from everything beyond R (grey levels, first order) |",
             "|---:|---:|"]
    lines += [f"| {r} | {v:.3f} |" for r, v in result["bound_grey_levels_by_radius"].items()]
    tile = result.get("tile", 256)
    height, width = result.get("tile_frame", tile_frame(tile))
    lines += ["", f"Tiled (`sdk.Deblurrer(tile={tile})`, torch CPU) vs whole frame on a "
              f"{width}x{height} blurred photo:", "",
              "| tile_overlap | max grey levels | mean | pixels that differ |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['overlap']} | {r['max']} | {r['mean']:.4f} | {100 * r['share_off']:.2f}% |"
              for r in result["tile_sweep"]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 8, 16, 32, 64])
    parser.add_argument("--tile", type=int, default=256, help="tile size of the sweep (default 256)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: benchmarks/results/<machine>)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing results files")
    parser.add_argument("--suffix", default="", help="results file name suffix, e.g. -campaign-5000")
    args = parser.parse_args(argv)
    result = measure(args.checkpoint, args.overlaps, tile=args.tile)
    out = args.out or RESULTS / result["slug"]
    write_json_and_markdown(out, f"receptive-field-{result['variant']}{args.suffix}", result, markdown(result),
                            overwrite=args.overwrite)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
