"""Quality across backends: PSNR/SSIM of one model on a paired test set, per backend and precision.

Every backend is scored by the trainer's own evaluation (:func:`training.evaluate.evaluate`: 8-bit
rounding, scikit-image PSNR/SSIM, reflect padding to the model's multiple), so the numbers are the
ones ``deblur eval`` prints. ONNX Runtime and TensorRT enter that evaluation through
:class:`BackendAsNet`, which makes an SDK backend look like a ``DeblurNet``.

Rows: PyTorch float32 (the reference), PyTorch bfloat16 and float16 autocast (CPU or CUDA), ONNX
Runtime float32 on CPU and CUDA, TensorRT FP16. Reduced-precision rows must stay within
:data:`TOLERANCE_DB` of the float32 PSNR; the table says whether each does.

Example::

    >>> mut = load_model_under_test("runs/nano/best.pt", workdir=Path("/tmp/q"))
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.models.base import DeblurNet

from .devices import slugify
from .latency import ModelUnderTest, load_model_under_test, resolve_device

SCHEMA = "deblur-quality/1"
TOLERANCE_DB = 0.1
QUALITY_BACKENDS = ("torch-fp32", "torch-bf16", "torch-fp16", "ort-cpu", "ort-cuda", "tensorrt")


class BackendAsNet(DeblurNet):
    """An :class:`sdk.backends.Backend` behind the ``DeblurNet`` interface, for the trainer's evaluation.

    Input and output are (B, 3, H, W) float32 tensors in the manifest's value range; H and W must be
    multiples of its ``pad_multiple`` (``training.evaluate`` pads).
    """

    def __init__(self, backend: Any) -> None:
        super().__init__()
        self.backend = backend
        manifest = backend.manifest
        # Instance attributes shadow the class-level defaults the evaluation reads.
        self.input_range = tuple(manifest.value_range)       # type: ignore[misc]
        self.pad_multiple = int(manifest.pad_multiple)       # type: ignore[misc]
        self.architecture = manifest.architecture            # type: ignore[misc]

    def forward_supervised(self, x: torch.Tensor) -> list[torch.Tensor]:
        batch = np.ascontiguousarray(x.detach().float().cpu().numpy())
        out = np.empty_like(batch)
        self.backend.infer(batch, out)
        return [torch.from_numpy(out).to(x.device)]


@dataclass(frozen=True)
class QualitySettings:
    backends: Sequence[str] = QUALITY_BACKENDS
    device: str = "auto"
    split: str = "test"
    max_images: int | None = None
    tolerance_db: float = TOLERANCE_DB
    # False: bf16/fp16 rows are listed as unavailable on CPUs that only emulate them (~50x slower).
    allow_emulated: bool = True


def _unavailable(name: str, reason: str) -> dict[str, Any]:
    return {"backend": name, "available": False, "reason": reason}


def _cpu_fp16_autocast() -> bool:
    """Whether CPU autocast takes float16 (PyTorch >= 2.3 does).

    On CPU the tensors between layers are float16 as on a GPU, so the row shows what float16 storage
    costs in PSNR; the kernels inside each layer may accumulate in float32 (as tensor cores do).
    """
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            out = torch.nn.functional.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 1, 1))
    except (RuntimeError, ValueError):
        return False
    return out.dtype == torch.float16


def _net_for(name: str, mut: ModelUnderTest, device: str,
             allow_emulated: bool = True) -> tuple[Any, str, torch.dtype | None, str, str]:
    """(network, torch device for the evaluation, autocast dtype, precision, where the arithmetic runs) for
    backend ``name``; raises Unavailable."""
    from .runners import Unavailable, parse_backend

    choice = parse_backend(name)
    cuda = device.startswith("cuda")
    if choice.family == "torch":
        if mut.torch_model is None:
            raise Unavailable(mut.no_torch_reason or "no PyTorch weights for this model")
        if choice.compile or choice.triton:
            raise Unavailable("quality rows cover precisions; compile/Triton run the same arithmetic as eager")
        if choice.precision == "fp16" and not cuda and not _cpu_fp16_autocast():
            raise Unavailable(f"this PyTorch ({torch.__version__}) has no float16 autocast on CPU")
        if choice.precision in ("bf16", "fp16") and not cuda and not allow_emulated:
            from .devices import cpu_emulates

            why = cpu_emulates(choice.precision)
            if why is not None:
                raise Unavailable(f"not scored by default: {why}; cap the set with --max-images to score it")
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(choice.precision)
        return mut.torch_model, device, dtype, choice.precision, device
    if mut.onnx_path is None:
        raise Unavailable(mut.no_onnx_reason or "no ONNX file for this model")
    if choice.family == "ort":
        import onnxruntime as ort

        from sdk.backends.onnxruntime import OnnxRuntimeBackend

        if choice.provider == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise Unavailable("this onnxruntime has no CUDA execution provider; install onnxruntime-gpu")
        net = BackendAsNet(OnnxRuntimeBackend(mut.onnx_path, device=choice.provider))
        return net, "cpu", None, "fp32", choice.provider
    try:
        from export.tensorrt import BuildOptions, ensure_engine, import_tensorrt

        import_tensorrt()
    except ImportError as exc:
        raise Unavailable(str(exc)) from None
    from sdk.backends.tensorrt import TensorRTBackend

    from .runners import TRT_CACHE

    engine = ensure_engine(mut.onnx_path, TRT_CACHE, BuildOptions(precision="fp16"))
    return BackendAsNet(TensorRTBackend(engine)), "cpu", None, "fp16", "cuda"


def run_quality(mut: ModelUnderTest, data: str | Path, settings: QualitySettings = QualitySettings()) -> dict[str, Any]:
    """Score ``mut`` on ``data``'s ``settings.split`` with every backend in ``settings``."""
    from training.data.datasets import open_dataset
    from training.evaluate import evaluate, summarize

    from .runners import Unavailable

    device = resolve_device(settings.device)
    dataset = open_dataset(data, settings.split)
    rows: list[dict[str, Any]] = []
    for name in settings.backends:
        try:
            net, run_device, dtype, precision, where = _net_for(name, mut, device, settings.allow_emulated)
        except Unavailable as exc:
            rows.append(_unavailable(name, str(exc)))
            continue
        except Exception as exc:  # a backend that cannot start is reported, not fatal
            rows.append(_unavailable(name, f"failed to start: {type(exc).__name__}: {exc}"))
            continue
        try:
            scores = evaluate(net, dataset, device=run_device, max_images=settings.max_images, progress=False,
                              autocast_dtype=dtype)
        except Exception as exc:  # e.g. an image outside an engine's profile
            rows.append(_unavailable(name, f"evaluation failed: {type(exc).__name__}: {exc}"))
            continue
        summary = summarize(scores)
        rows.append({"backend": name, "available": True, "precision": precision, "device": where,
                     "images": int(summary["images"]), "psnr": summary["output_psnr"], "ssim": summary["output_ssim"],
                     "input_psnr": summary["input_psnr"], "input_ssim": summary["input_ssim"]})
    reference = next((r for r in rows if r.get("available") and r["precision"] == "fp32"), None)
    for row in rows:
        if row.get("available") and reference is not None:
            row["delta_psnr_db"] = row["psnr"] - reference["psnr"]
            row["delta_ssim"] = row["ssim"] - reference["ssim"]
            if row is not reference:
                row["within_tolerance"] = bool(abs(row["delta_psnr_db"]) <= settings.tolerance_db)
    return {"schema": SCHEMA, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "model": mut.describe(), "data": str(data), "settings": {**asdict(settings), "device": device},
            "reference": reference["backend"] if reference else None, "rows": rows}


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "–"
    return "inf" if math.isinf(value) else format(value, spec)


def quality_markdown(result: dict[str, Any]) -> str:
    tol = result["settings"]["tolerance_db"]
    lines = [f"# Quality across backends: {result['model']['label']}", "",
             f"PSNR/SSIM on {result['data']} [{result['settings']['split']}] with `training.evaluate` (8-bit outputs, "
             f"scikit-image), {result['created']}. Reference: {result['reference'] or 'none (no float32 row)'}; "
             f"reduced precision must stay within {tol} dB PSNR of it.", "",
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


def write_quality(result: dict[str, Any], folder: str | Path) -> list[Path]:
    """``<folder>/<model>-quality.json`` and ``.md``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{slugify(result['model']['label'])}-quality"
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    md_path.write_text(quality_markdown(result), encoding="utf-8")
    return [json_path, md_path]


def main(argv: Sequence[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=None, help="registry name, .pt or .onnx; default: the bundled model")
    parser.add_argument("--data", required=True, help="paired dataset folder (e.g. the output of `deblur synth`)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-images", type=int, default=None, metavar="N",
                        help="score N pairs spread evenly over the split (bf16/fp16 on AVX2 CPUs are ~50x slower)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="folder for <model>-quality.{json,md}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="deblur-quality-") as tmp:
        mut = load_model_under_test(args.model, workdir=Path(tmp))
        result = run_quality(mut, args.data, QualitySettings(device=args.device, split=args.split,
                                                             max_images=args.max_images))
    for path in write_quality(result, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
