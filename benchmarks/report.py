"""Writers for benchmark results: JSON (everything), Markdown (the tables), PNG (latency vs resolution).

Results of one model on one machine go to ``<root>/<device slug>/<model label>.{json,md,png}``;
:func:`write_summary` collects every JSON of a device folder into ``summary.md`` with the headline
ratios (``torch.compile`` and ONNX Runtime against PyTorch eager float32).

Example::

    >>> paths = write_results(result, Path("benchmarks/results"))
    >>> sorted(p.suffix for p in paths)
    ['.json', '.md', '.png']
    >>> write_summary(Path("benchmarks/results/cpu-amd-epyc-2c"))

Run ``python -m benchmarks.report DIR`` to rebuild a folder's ``summary.md``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .devices import slugify

BASELINE = "torch-fp32"
SUMMARY_NAME = "summary.md"


def result_dir(result: dict[str, Any], root: Path) -> Path:
    return root / result["device"]["slug"]


def refuse_overwrite(paths: Iterable[Path], overwrite: bool) -> None:
    """FileExistsError naming the first existing path, unless ``overwrite``: results are never replaced silently."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists (results are not overwritten unless asked: pass --overwrite, "
                              "or write to another --out folder)")


def results_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """The ``.json`` and ``.md`` files of one benchmark's results; check them with :func:`refuse_overwrite`
    before measuring, so that a long run does not end in FileExistsError."""
    return folder / f"{name}.json", folder / f"{name}.md"


def write_json_and_markdown(folder: Path, name: str, result: dict[str, Any], text: str, *,
                            overwrite: bool = False) -> tuple[Path, Path]:
    """``<folder>/<name>.json`` (the full result) and ``<name>.md`` (``text``); existing files are kept
    (FileExistsError) unless ``overwrite``."""
    json_path, md_path = results_pair(folder, name)
    refuse_overwrite((json_path, md_path), overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    md_path.write_text(text, encoding="utf-8")
    return json_path, md_path


def write_results(result: dict[str, Any], root: str | os.PathLike[str], *, plot: bool = True,
                  overwrite: bool = False) -> list[Path]:
    """Write ``<root>/<device>/<model>.json``, ``.md`` and (with ``plot`` and matplotlib) ``.png``; returns the paths.

    Existing files are kept (FileExistsError) unless ``overwrite``.
    """
    folder = result_dir(result, Path(root))
    stem = folder / slugify(result["model"]["label"])
    if plot and importlib.util.find_spec("matplotlib") is None:
        plot = False   # a runtime-only install: the numbers still get written
    targets = [stem.with_suffix(s) for s in (".json", ".md", *((".png",) if plot else ()))]
    refuse_overwrite(targets, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [write_json(result, stem.with_suffix(".json")), write_markdown(result, stem.with_suffix(".md"))]
    if plot:
        paths.append(write_plot(result, stem.with_suffix(".png")))
    return paths


def write_json(result: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


def _ok_runs(result: dict[str, Any]) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    for entry in result["backends"]:
        for run in entry.get("runs", []):
            if "device_ms" in run:
                yield entry, run


def baseline_name(result: dict[str, Any]) -> str:
    """What speed-ups are relative to: PyTorch eager float32 where it ran, else the first backend that ran."""
    ran = [entry["backend"] for entry, _ in _ok_runs(result)]
    return BASELINE if BASELINE in ran or not ran else ran[0]


def _baseline_p50(result: dict[str, Any]) -> dict[tuple[str, int], float]:
    name = baseline_name(result)
    return {(run["size"], run["batch"]): run["device_ms"]["p50_ms"]
            for entry, run in _ok_runs(result) if entry["backend"] == name}


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown(result: dict[str, Any]) -> str:
    """The Markdown report of one benchmark result."""
    model, device, settings = result["model"], result["device"], result["settings"]
    peak_label = "% of derived FP32 peak" if device["kind"] == "cpu" else "% of FP16 tensor peak"
    lines = [f"# Latency: {model['label']} on {device['name']}", "",
             f"Measured {result['created']} with `deblur bench`. Device-only time runs the network on input already "
             "on the device (the backend's own device call, which synchronises); end to end is `sdk.Deblurrer.process` "
             "on uint8 BGR frames: pre/post-processing and host<->device copies included.", "",
             f"- model: {model['source']}; {model['architecture']} / {model['variant']}, "
             f"{_fmt(model['params'], ',') if model['params'] is not None else 'unknown'} parameters ({model['params_source']})",
             f"- MACs: {model['macs_note']}",
             f"- device: {device['name']} ({device['kind']}); peak {_fmt(device['peak_tflops'], '.3f')} TFLOP/s: "
             f"{device['peak_basis']}",
             f"- CPU: {device.get('cpu', {}).get('model', '?')}, flags {', '.join(device.get('cpu', {}).get('flags', [])) or 'not read'}",
             f"- clocks: {', '.join(f'{k} {v}' for k, v in device['clocks'].items()) or 'not readable'}",
             f"- settings: warmup {settings['warmup']}, iterations {settings['iters']}, threads {settings['threads']}, "
             f"device {settings['device']}, torch.compile backend {settings['compile_backend']}, "
             f"CPUs allowed {settings.get('cpu_affinity', '?')}",
             f"- versions: {', '.join(f'{k} {v}' for k, v in result['versions'].items())}"]
    loads = sorted({f"{run['load_average_1m']['min']}-{run['load_average_1m']['max']}" for _, run in _ok_runs(result)
                    if "load_average_1m" in run})
    if loads:
        lines.append(f"- interleaved: backends alternated call by call; 1-minute load average while timing {', '.join(loads)}")
    lines += [f"- note: {n}" for n in model.get("notes", [])] + [""]
    baseline = _baseline_p50(result)
    header = ("backend", "input", "batch", "device p50 ms", "p90", "p99", "mean", "end-to-end p50 ms", "e2e p99",
              "fps device", "fps e2e", f"speed-up vs {baseline_name(result)}", "TFLOP/s", peak_label, "host RSS peak MB", "GPU MB")
    rows = []
    for entry, run in _ok_runs(result):
        d, e = run["device_ms"], run["end_to_end_ms"]
        base = baseline.get((run["size"], run["batch"]))
        size = f"{run['width']}x{run['height']}"
        if (run["padded_height"], run["padded_width"]) != (run["height"], run["width"]):
            size += f" (padded {run['padded_width']}x{run['padded_height']})"
        gpu = run.get("gpu_nvml_used_delta_mb", run.get("gpu_torch_max_allocated_mb"))
        fraction = run.get("fraction_of_peak")
        rows.append((entry["backend"], size, str(run["batch"]), _fmt(d["p50_ms"]), _fmt(d["p90_ms"]), _fmt(d["p99_ms"]),
                     _fmt(d["mean_ms"]), _fmt(e["p50_ms"]), _fmt(e["p99_ms"]), _fmt(d["fps"], ".1f"), _fmt(e["fps"], ".1f"),
                     _fmt(base / d["p50_ms"] if base else None, ".2f") + ("x" if base else ""),
                     _fmt(run.get("achieved_tflops"), ".4f"), _fmt(None if fraction is None else 100 * fraction, ".1f"),
                     _fmt(run["host_rss_peak_mb"], ".0f"), _fmt(gpu, ".0f")))
    lines += ["## Results", ""] + _table(header, rows) + [""]
    failed = [(entry["backend"], run) for entry in result["backends"] for run in entry.get("runs", []) if "error" in run]
    if failed:
        lines += ["## Failed runs", ""] + [f"- {b} {r['size']} x{r['batch']}: {r['error']}" for b, r in failed] + [""]
    unavailable = [e for e in result["backends"] if not e.get("available")]
    if unavailable:
        lines += ["## Unavailable backends", ""] + [f"- `{e['backend']}`: {e['reason']}" for e in unavailable] + [""]
    notes = [(e["backend"], n) for e in result["backends"] for n in e.get("notes", [])]
    setup = [(e["backend"], r["size"], r["batch"], r["setup_seconds"]) for e, r in _ok_runs(result) if r.get("setup_seconds")]
    if notes or setup:
        lines += ["## Backend notes", ""] + [f"- `{b}`: {n}" for b, n in notes]
        lines += [f"- `{b}` {s} x{n}: compile/build {t:.1f} s before timing" for b, s, n, t in setup]
        lines.append("")
    return "\n".join(lines)


def write_markdown(result: dict[str, Any], path: Path) -> Path:
    path.write_text(markdown(result), encoding="utf-8")
    return path


def write_plot(result: dict[str, Any], path: Path) -> Path:
    """Latency (p50, log scale) against input megapixels: one line per backend, device-only solid,
    end to end dashed; one panel per batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    batches = sorted({run["batch"] for _, run in _ok_runs(result)}) or [1]
    fig, axes = plt.subplots(1, len(batches), figsize=(6.5 * len(batches), 4.5), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    backends = [e["backend"] for e in result["backends"] if any("device_ms" in r for r in e.get("runs", []))]
    for ax, batch in zip(axes[0], batches):
        for i, backend in enumerate(backends):
            runs = sorted(((r["height"] * r["width"] / 1e6, r) for e, r in _ok_runs(result)
                           if e["backend"] == backend and r["batch"] == batch), key=lambda t: t[0])
            if not runs:
                continue
            mpx = [m for m, _ in runs]
            color = colors[i % len(colors)]
            ax.plot(mpx, [r["device_ms"]["p50_ms"] for _, r in runs], "o-", color=color, label=f"{backend} device")
            ax.plot(mpx, [r["end_to_end_ms"]["p50_ms"] for _, r in runs], "s--", color=color, alpha=0.6,
                    label=f"{backend} end to end")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = sorted({(r["height"] * r["width"] / 1e6, f"{r['width']}x{r['height']}")
                        for _, r in _ok_runs(result) if r["batch"] == batch})
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks([m for m, _ in ticks], [label for _, label in ticks], rotation=30)
        ax.set_xlabel("input size (log of pixel count)")
        ax.set_ylabel("p50 latency per call (ms)")
        ax.set_title(f"{result['model']['label']}, batch {batch}")
        ax.grid(True, which="both", alpha=0.3)
        if backends:
            ax.legend(fontsize=7)
    fig.suptitle(result["device"]["name"], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- a folder's summary
def load_results(folder: Path) -> list[dict[str, Any]]:
    results = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and str(data.get("schema", "")).startswith("deblur-bench/"):
            results.append(data)
    return results


def summary_markdown(results: Sequence[dict[str, Any]], compared: Sequence[str] = ("torch-compile", "ort-cpu")) -> str:
    """Headline table: for every model and size, PyTorch eager p50 and each of ``compared`` as a speed-up."""
    if not results:
        raise ValueError("no deblur-bench JSON results to summarise")
    device = results[0]["device"]
    header = ["model", "input", "batch", f"{BASELINE} p50 ms"]
    for name in compared:
        header += [f"{name} p50 ms", f"{name} speed-up"]
    rows = []
    for result in results:
        p50 = {(e["backend"], r["size"], r["batch"]): r for e, r in _ok_runs(result)}
        keys = sorted({(r["size"], r["batch"], r["height"], r["width"]) for _, r in _ok_runs(result)},
                      key=lambda k: (k[2] * k[3], k[1]))
        for size, batch, h, w in keys:
            base = p50.get((BASELINE, size, batch))
            row = [result["model"]["label"], f"{w}x{h}", str(batch), _fmt(base["device_ms"]["p50_ms"] if base else None)]
            for name in compared:
                other = p50.get((name, size, batch))
                ms = other["device_ms"]["p50_ms"] if other else None
                row += [_fmt(ms), f"{base['device_ms']['p50_ms'] / ms:.2f}x" if base and ms else "–"]
            rows.append(row)
    unavailable = sorted({f"`{e['backend']}`: {e['reason']}" for r in results for e in r["backends"]
                          if not e.get("available") and e["backend"] in (BASELINE, *compared)})
    lines = [f"# Benchmark summary: {device['name']}", "",
             f"Device-only p50 latency; speed-up = {BASELINE} p50 / backend p50 (above 1 is faster than PyTorch eager). "
             "Each model's own file has every percentile, end-to-end times, memory and versions.", "",
             f"- clocks at the first run: {', '.join(f'{k} {v}' for k, v in device['clocks'].items()) or 'not readable'}",
             f"- threads: {sorted({r['settings']['threads'] for r in results})}", ""]
    lines += _table(header, rows) + [""]
    if unavailable:
        lines += ["Unavailable here:", ""] + [f"- {u}" for u in unavailable] + [""]
    return "\n".join(lines)


def write_summary(folder: str | os.PathLike[str], compared: Sequence[str] = ("torch-compile", "ort-cpu")) -> Path:
    folder = Path(folder)
    path = folder / SUMMARY_NAME
    path.write_text(summary_markdown(load_results(folder), compared), encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description="rebuild a results folder's summary.md")
    parser.add_argument("folder", help="a results folder, e.g. benchmarks/results/cpu-amd-epyc-2c")
    parser.add_argument("--compare", default="torch-compile,ort-cpu", help="backends compared with torch-fp32")
    args = parser.parse_args(argv)
    print(write_summary(args.folder, [b for b in args.compare.split(",") if b]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
