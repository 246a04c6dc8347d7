"""Quality across backends: PSNR/SSIM of one model on a paired test set, per backend and precision.

Every row is scored through :class:`sdk.Deblurrer`, the path users run: the blurred uint8 image goes
in, the SDK's own pre-processing, residual and colour handling and 8-bit rounding come out, and the
result is compared with the sharp image (PSNR on uint8, 255 peak; SSIM with scikit-image where it is
installed). Backends are opened through the one registry (:mod:`benchmarks.choices`), so a row is
exactly what ``sdk.Deblurrer(model, backend=..., precision=...)`` gives.

Rows: PyTorch float32 (the reference when there are weights) and bfloat16/float16 autocast, ONNX
Runtime float32, OpenVINO fp32/bf16/int8, TensorRT FP16. Reduced-precision rows must stay within
their tolerance of the float32 PSNR (:data:`TOLERANCES_DB`: 0.1 dB, int8 0.3 dB); the table says
whether each does.

Example::

    >>> mut = load_model_under_test(None, workdir=Path("/tmp/q"))          # the bundled model
    >>> result = run_quality(mut, "synth_out", QualitySettings(max_images=20))
    >>> write_quality(result, Path("benchmarks/results/cpu-amd-epyc-2c"))
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdk.files import IMAGE_SUFFIXES

from .choices import BenchContext, Unavailable, open_for_bench, parse_backend
from .devices import slugify
from .latency import ModelUnderTest, load_model_under_test, resolve_device

SCHEMA = "deblur-quality/2"
TOLERANCE_DB = 0.1
TOLERANCES_DB = {"bf16": 0.1, "fp16": 0.1, "int8": 0.3}
QUALITY_BACKENDS = ("torch-fp32", "torch-bf16", "torch-fp16", "ort-cpu", "ort-cuda", "openvino-fp32", "openvino-bf16",
                    "openvino-int8", "tensorrt")


@dataclass(frozen=True)
class QualitySettings:
    backends: Sequence[str] = QUALITY_BACKENDS
    device: str = "auto"
    split: str = "test"
    max_images: int | None = None
    tolerance_db: float = TOLERANCE_DB
    tolerances_db: dict[str, float] = field(default_factory=lambda: dict(TOLERANCES_DB))
    # False: bf16/fp16 rows are listed as unavailable on CPUs that only emulate them (~50x slower).
    allow_emulated: bool = True
    threads: int | None = None
    calibration: str | None = None        # frames for an openvino-int8 IR made on the fly (never the test split)


def paired_files(data: str | Path, split: str = "test", max_images: int | None = None) -> list[tuple[Path, Path]]:
    """(blurred, sharp) image pairs of ``data/<split>`` (or ``data`` itself): every ``blur/NAME`` with a
    ``sharp/NAME`` beside it, sorted; ``max_images`` of them spread evenly over the split."""
    root = Path(data)
    base = root / split if (root / split).is_dir() else root
    if not base.is_dir():
        raise FileNotFoundError(f"paired dataset not found: {base}")
    pairs = [(p, p.parent.parent / "sharp" / p.name) for p in sorted(base.rglob("*"))
             if p.parent.name == "blur" and p.suffix.lower() in IMAGE_SUFFIXES]
    pairs = [(b, s) for b, s in pairs if s.is_file()]
    if not pairs:
        raise ValueError(f"no blur/ + sharp/ image pairs under {base}")
    if max_images is not None and 0 < max_images < len(pairs):
        index = np.linspace(0, len(pairs) - 1, max_images).round().astype(int)
        pairs = [pairs[i] for i in index]
    return pairs


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (peak 255); inf when they are equal."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float | None:
    """SSIM of two uint8 colour images (scikit-image); None where scikit-image is not installed."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        return None
    return float(structural_similarity(b, a, channel_axis=2, data_range=255))


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known and len(known) == len(values) else None


def score(deblur: Any, pairs: list[tuple[Path, Path]]) -> dict[str, Any]:
    """Mean PSNR/SSIM of ``deblur.process(blurred)`` against the sharp images, and of the blurred input itself."""
    import cv2

    out_psnr, out_ssim, in_psnr, in_ssim = [], [], [], []
    for blur_path, sharp_path in pairs:
        blur, sharp = cv2.imread(str(blur_path), cv2.IMREAD_COLOR), cv2.imread(str(sharp_path), cv2.IMREAD_COLOR)
        if blur is None or sharp is None or blur.shape != sharp.shape:
            raise ValueError(f"{blur_path} / {sharp_path}: unreadable, or not the same size")
        out = deblur.process(blur)
        out_psnr.append(psnr(out, sharp))
        out_ssim.append(ssim(out, sharp))
        in_psnr.append(psnr(blur, sharp))
        in_ssim.append(ssim(blur, sharp))
    return {"images": len(pairs), "psnr": _mean(out_psnr), "ssim": _mean(out_ssim), "input_psnr": _mean(in_psnr),
            "input_ssim": _mean(in_ssim)}


def _unavailable(name: str, reason: str) -> dict[str, Any]:
    return {"backend": name, "available": False, "reason": reason}


def run_quality(mut: ModelUnderTest, data: str | Path, settings: QualitySettings = QualitySettings()) -> dict[str, Any]:
    """Score ``mut`` on ``data``'s ``settings.split`` through :class:`sdk.Deblurrer` with every backend in ``settings``."""
    from sdk.deblurrer import Deblurrer

    device = resolve_device(settings.device)
    pairs = paired_files(data, settings.split, settings.max_images)
    context = BenchContext(device=device, threads=settings.threads, allow_emulated_bf16=settings.allow_emulated,
                           calibration=Path(settings.calibration) if settings.calibration else None,
                           workdir=mut.workdir)
    rows: list[dict[str, Any]] = []
    for name in settings.backends:
        choice = parse_backend(name)
        if choice.backend == "torch" and choice.precision in ("bf16", "fp16") and not device.startswith("cuda") \
                and not settings.allow_emulated:
            from .devices import cpu_emulates

            why = cpu_emulates(choice.precision)
            if why is not None:
                rows.append(_unavailable(name, f"not scored by default: {why}; cap the set with --max-images to score it"))
                continue
        try:
            backend, _notes = open_for_bench(choice, mut, context)
        except Unavailable as exc:
            rows.append(_unavailable(name, str(exc)))
            continue
        except Exception as exc:  # a backend that cannot start is reported, not fatal
            rows.append(_unavailable(name, f"failed to start: {type(exc).__name__}: {exc}"))
            continue
        try:
            scores = score(Deblurrer(backend), pairs)
        except Exception as exc:  # e.g. an image outside an engine's profile
            rows.append(_unavailable(name, f"evaluation failed: {type(exc).__name__}: {exc}"))
            continue
        finally:
            backend.close()
        rows.append({"backend": name, "available": True, "precision": backend.precision, "device": backend.device,
                     **scores})
    reference = next((r for r in rows if r.get("available") and r["precision"] == "fp32"), None)
    for row in rows:
        if row.get("available") and reference is not None:
            row["delta_psnr_db"] = row["psnr"] - reference["psnr"]
            row["delta_ssim"] = (row["ssim"] - reference["ssim"]
                                 if row["ssim"] is not None and reference["ssim"] is not None else None)
            if row is not reference:
                tolerance = settings.tolerances_db.get(row["precision"], settings.tolerance_db)
                row["tolerance_db"] = tolerance
                row["within_tolerance"] = bool(abs(row["delta_psnr_db"]) <= tolerance)
    return {"schema": SCHEMA, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "model": mut.describe(), "data": str(data), "settings": {**asdict(settings), "device": device},
            "pairs": [str(b) for b, _ in pairs], "reference": reference["backend"] if reference else None, "rows": rows}


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "–"
    return "inf" if math.isinf(value) else format(value, spec)


def quality_markdown(result: dict[str, Any]) -> str:
    tols = ", ".join(f"{k} {v} dB" for k, v in result["settings"]["tolerances_db"].items())
    lines = [f"# Quality across backends: {result['model']['label']}", "",
             f"PSNR/SSIM on {result['data']} [{result['settings']['split']}], {len(result['pairs'])} pairs, through "
             f"`sdk.Deblurrer` (the shipped pre/post-processing, 8-bit outputs; SSIM by scikit-image), "
             f"{result['created']}. Reference: {result['reference'] or 'none (no float32 row)'}; reduced precision must "
             f"stay within its tolerance of it ({tols}).", "",
             "| backend | precision | device | images | PSNR dB | SSIM | ΔPSNR dB vs reference | ΔSSIM | within tolerance |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        if not row.get("available"):
            continue
        within = row.get("within_tolerance")
        lines.append(f"| {row['backend']} | {row['precision']} | {row['device']} | {row['images']} | "
                     f"{_fmt(row['psnr'], '.3f')} | {_fmt(row['ssim'], '.4f')} | {_fmt(row.get('delta_psnr_db'), '+.3f')} | "
                     f"{_fmt(row.get('delta_ssim'), '+.4f')} | {'–' if within is None else ('yes' if within else 'NO')} |")
    first = next((r for r in result["rows"] if r.get("available")), None)
    if first is not None:
        lines += ["", f"Input (blurred) vs target: PSNR {_fmt(first['input_psnr'], '.3f')} dB, "
                      f"SSIM {_fmt(first['input_ssim'], '.4f')}."]
    missing = [r for r in result["rows"] if not r.get("available")]
    if missing:
        lines += ["", "Not scored here:", ""] + [f"- `{r['backend']}`: {r['reason']}" for r in missing]
    return "\n".join(lines) + "\n"


def write_quality(result: dict[str, Any], folder: str | Path, *, overwrite: bool = False) -> list[Path]:
    """``<folder>/<model>-quality.json`` and ``.md`` (existing files kept unless ``overwrite``)."""
    from .report import refuse_overwrite

    folder = Path(folder)
    stem = folder / f"{slugify(result['model']['label'])}-quality"
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    refuse_overwrite([json_path, md_path], overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    md_path.write_text(quality_markdown(result), encoding="utf-8")
    return [json_path, md_path]


def main(argv: Sequence[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=None,
                        help="registry name, .pt, .onnx, .xml or .engine; default: the bundled model")
    parser.add_argument("--data", required=True, help="paired dataset folder (e.g. the output of `deblur synth`)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-images", type=int, default=None, metavar="N",
                        help="score N pairs spread evenly over the split (bf16/fp16 on AVX2 CPUs are ~50x slower)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backends", default=",".join(QUALITY_BACKENDS), help="comma-separated benchmark backend names")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--int8", metavar="XML", default=None, help="an int8 OpenVINO IR of the model (for openvino-int8)")
    parser.add_argument("--calibration", metavar="DIR", default=None,
                        help="frames to make an int8 IR from when --int8 is not given (use the train split, not test)")
    parser.add_argument("--out", required=True, help="folder for <model>-quality.{json,md}")
    parser.add_argument("--overwrite", action="store_true", help="replace existing results files")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="deblur-quality-") as tmp:
        mut = load_model_under_test(args.model, workdir=Path(tmp))
        if args.int8:
            mut.model_files.append(Path(args.int8))
        backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
        result = run_quality(mut, args.data, QualitySettings(backends=backends, device=args.device, split=args.split,
                                                             max_images=args.max_images, threads=args.threads,
                                                             calibration=args.calibration))
    for path in write_quality(result, args.out, overwrite=args.overwrite):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
