"""Spatially varying camera-shake blur of one sharp image (linear light).

Real shake blur varies over the frame because the camera also rotates. It is modelled here as a
smooth kernel field: ``n`` PSFs made from one random trajectory (``training.data.psf``), each seen
with its own scale and rotation, blended with smooth weight maps that sum to 1 at every pixel::

    blurred(x) = sum_k w_k(x) * (image ∗ psf_k)(x)

The weight maps are a softmax over random ``grid x grid`` logits upsampled bicubically, so the blur
changes gradually across the image. One PSF gives ordinary uniform blur.

Example::

    field = random_shake_field(length=18.0, kernels=3, rng=np.random.default_rng(0))
    blurred = apply_shake_field(linear_image, field, rng=np.random.default_rng(1))
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .psf import convolve, psf_from_trajectory, random_trajectory, transform_trajectory

# Per-PSF variation of the base trajectory across the frame: +-40% length, +-20 degrees.
SCALE_SPREAD = 0.4
ROTATION_SPREAD = np.deg2rad(20.0)
WEIGHT_GRID = 3
WEIGHT_SHARPNESS = 2.0  # logit scale: higher makes sharper transitions between the PSFs' regions


@dataclass(frozen=True)
class ShakeField:
    """The PSFs of one image and the parameters that made them (for the synthesis record)."""

    psfs: tuple[np.ndarray, ...]
    params: dict

    @property
    def margin(self) -> int:
        """Pixels of context needed around an output region so that no border is reflected into it."""
        return max(max(p.shape) for p in self.psfs) // 2


def random_shake_field(length: float, kernels: int, rng: np.random.Generator) -> ShakeField:
    """``kernels`` PSFs from one random trajectory of ``length`` pixels (the first unchanged, the
    others scaled by 1 +- ``SCALE_SPREAD`` and rotated by +- ``ROTATION_SPREAD``)."""
    if kernels < 1:
        raise ValueError(f"need at least one PSF, got kernels={kernels}")
    path = random_trajectory(length, rng)
    psfs, variations = [], []
    for k in range(kernels):
        scale = 1.0 if k == 0 else float(rng.uniform(1 - SCALE_SPREAD, 1 + SCALE_SPREAD))
        rotation = 0.0 if k == 0 else float(rng.uniform(-ROTATION_SPREAD, ROTATION_SPREAD))
        psf = psf_from_trajectory(transform_trajectory(path.points, scale, rotation))
        psfs.append(psf)
        variations.append({"scale": scale, "rotation_rad": rotation, "kernel_size": int(psf.shape[0])})
    return ShakeField(tuple(psfs), {"trajectory": path.params, "psfs": variations})


def smooth_weight_maps(count: int, height: int, width: int, rng: np.random.Generator,
                       grid: int = WEIGHT_GRID, sharpness: float = WEIGHT_SHARPNESS) -> np.ndarray:
    """(count, height, width) float32 maps, each smooth, non-negative, summing to 1 at every pixel."""
    logits = rng.standard_normal((count, grid, grid)).astype(np.float32) * np.float32(sharpness)
    up = np.stack([cv2.resize(lg, (width, height), interpolation=cv2.INTER_CUBIC) for lg in logits])
    up -= up.max(axis=0, keepdims=True)  # stable softmax
    weights = np.exp(up)
    return weights / weights.sum(axis=0, keepdims=True)


def apply_shake_field(image: np.ndarray, field: ShakeField, rng: np.random.Generator) -> np.ndarray:
    """Blur a linear float32 (H, W, 3) image with the field's PSFs blended by random smooth maps."""
    if len(field.psfs) == 1:
        return convolve(image, field.psfs[0])
    weights = smooth_weight_maps(len(field.psfs), image.shape[0], image.shape[1], rng)
    out = np.zeros_like(image, dtype=np.float32)
    for w, psf in zip(weights, field.psfs):
        out += w[:, :, None] * convolve(image, psf)
    return out
