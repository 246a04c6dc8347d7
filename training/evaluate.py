"""PSNR / SSIM of a model on a paired dataset, measured as the papers do: on 8-bit images.

Outputs and targets are rounded to uint8 first (the papers score saved PNGs), then scored with
scikit-image (``data_range=255``, SSIM over the colour axis). The model runs on the full image,
reflect-padded to its ``pad_multiple`` by ``forward_padded`` and cropped back.

Example::

    >>> model, manifest = load_model("runs/nano/best.pt")
    >>> scores = evaluate(model, open_dataset("synth", "test"))
    >>> print(format_table(summarize(scores)))
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from .models import DeblurNet
from .models.padding import forward_padded


def to_model_range(x: torch.Tensor, model: DeblurNet) -> torch.Tensor:
    """[0, 1] images -> the network's ``input_range``."""
    lo, hi = model.input_range
    return x * (hi - lo) + lo


def from_model_range(y: torch.Tensor, model: DeblurNet) -> torch.Tensor:
    """The network's ``input_range`` -> [0, 1] (not clamped)."""
    lo, hi = model.input_range
    return (y - lo) / (hi - lo)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """A (3, H, W) image in [0, 1] as an (H, W, 3) uint8 array, clamped and rounded as a PNG writer would."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image, got shape {tuple(image.shape)}")
    return (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def psnr_ssim(output: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM of two (H, W, 3) uint8 images."""
    if output.shape != target.shape or output.dtype != np.uint8 or target.dtype != np.uint8:
        raise ValueError(f"expected two uint8 images of one shape, got {output.shape} {output.dtype} "
                         f"and {target.shape} {target.dtype}")
    # Imported here: scikit-image pulls in SciPy (~1-2 s), which a training run needs only at validation.
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if np.array_equal(output, target):
        return math.inf, 1.0  # scikit-image divides by a zero MSE here
    psnr = peak_signal_noise_ratio(target, output, data_range=255)
    ssim = structural_similarity(target, output, channel_axis=2, data_range=255)
    return float(psnr), float(ssim)


@torch.no_grad()
def restore(model: DeblurNet, blur: torch.Tensor) -> torch.Tensor:
    """The model's restored (B, 3, H, W) image in [0, 1] (unclamped) for a [0, 1] batch of any size."""
    x = to_model_range(blur, model)
    return from_model_range(forward_padded(model, x, model.pad_multiple), model)


@dataclass(frozen=True)
class ImageScore:
    name: str
    input_psnr: float
    input_ssim: float
    output_psnr: float
    output_ssim: float


def _save_path(save_dir: Path, name: str) -> Path:
    path = (save_dir / name).with_suffix(".png")
    if save_dir.resolve() not in path.resolve().parents:
        raise ValueError(f"image name {name!r} would be written outside {save_dir}")
    return path


def spread_indices(total: int, count: int | None) -> list[int]:
    """``count`` indices evenly spaced over ``range(total)`` (all of them for None), first and last included.

    Test sets are stored source by source, so the first N pairs would all come from one photo or clip.
    """
    if count is None or count >= total:
        return list(range(total))
    if count < 1:
        raise ValueError(f"max_images must be positive, got {count}")
    if count == 1:
        return [0]
    return [round(i * (total - 1) / (count - 1)) for i in range(count)]


@torch.no_grad()
def evaluate(model: DeblurNet, dataset: Dataset, *, device: torch.device | str = "cpu",
             max_images: int | None = None, save_dir: str | os.PathLike[str] | None = None,
             progress: bool = True, autocast_dtype: torch.dtype | None = None) -> list[ImageScore]:
    """Score ``model`` on each full-size pair of ``dataset`` (input vs target and output vs target).

    ``max_images`` scores that many pairs spread evenly over the set (:func:`spread_indices`).
    ``save_dir`` also writes every restored image as a PNG named after the pair. ``autocast_dtype``
    runs the network under autocast (the scores still come from the rounded 8-bit images).
    """
    device = torch.device(device)
    model = model.to(device).eval()

    def restored(sample: dict[str, Any]) -> np.ndarray:
        blur = sample["blur"].unsqueeze(0).to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            return to_uint8(restore(model, blur)[0].float())

    return _score(restored, dataset, max_images=max_images, save_dir=save_dir, progress=progress)


def evaluate_deblurrer(deblurrer: Any, dataset: Dataset, *, max_images: int | None = None,
                       save_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> list[ImageScore]:
    """Score an ``sdk.Deblurrer`` (what users run: its own pre/post-processing, tiling, backend) on
    ``dataset``: every blurred image goes in as 8-bit RGB, the 8-bit output is scored.

    Example::

        >>> scores = evaluate_deblurrer(sdk.Deblurrer("model.onnx", color="rgb"), dataset)
    """
    if getattr(deblurrer, "color", "rgb") != "rgb":
        raise ValueError("pass a Deblurrer made with color='rgb': the datasets hold RGB images")
    return _score(lambda sample: deblurrer.process(to_uint8(sample["blur"])), dataset, max_images=max_images,
                  save_dir=save_dir, progress=progress)


def _score(restored: Callable[[dict[str, Any]], np.ndarray], dataset: Dataset, *, max_images: int | None,
           save_dir: str | os.PathLike[str] | None, progress: bool) -> list[ImageScore]:
    """Input and output scores of each pair ``restored`` turns into an 8-bit output; optionally saved as PNG."""
    from .data.imageio import write_rgb

    indices = spread_indices(len(dataset), max_images)  # type: ignore[arg-type]
    out_dir = Path(save_dir) if save_dir is not None else None
    scores = []
    for i in tqdm(indices, desc="eval", unit="img", disable=not progress, leave=False):
        sample = dataset[i]
        out8, blur8, sharp8 = restored(sample), to_uint8(sample["blur"]), to_uint8(sample["sharp"])
        scores.append(ImageScore(str(sample["name"]), *psnr_ssim(blur8, sharp8), *psnr_ssim(out8, sharp8)))
        if out_dir is not None:
            path = _save_path(out_dir, str(sample["name"]))
            path.parent.mkdir(parents=True, exist_ok=True)
            write_rgb(path, out8)
    return scores


def summarize(scores: Sequence[ImageScore]) -> dict[str, float]:
    """Mean of every score over the images (``images`` holds the count)."""
    if not scores:
        raise ValueError("no images were evaluated")
    keys = [f.name for f in fields(ImageScore) if f.name != "name"]
    summary = {k: float(np.mean([getattr(s, k) for s in scores])) for k in keys}
    summary["images"] = float(len(scores))
    return summary


def format_table(summary: dict[str, float]) -> str:
    """The summary as a small text table: input-vs-target and output-vs-target rows."""
    lines = [f"{'':<18}{'PSNR (dB)':>10}{'SSIM':>9}"]
    for label, key in (("input  vs target", "input"), ("output vs target", "output")):
        lines.append(f"{label:<18}{summary[key + '_psnr']:>10.2f}{summary[key + '_ssim']:>9.4f}")
    lines.append(f"mean over {int(summary['images'])} images")
    return "\n".join(lines)


def write_csv(scores: Iterable[ImageScore], path: str | os.PathLike[str]) -> Path:
    """One row per image: name, input_psnr, input_ssim, output_psnr, output_ssim."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(ImageScore)])
        writer.writeheader()
        for s in scores:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in asdict(s).items()})
    return path
