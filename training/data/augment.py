"""Training augmentation for image pairs, as the deblurring papers use it.

A random crop (reflect-padded at the bottom/right first when the image is smaller than the crop, as
MPRNet/RDAFNet's ``dataset_RGB.py`` do) and one of the 8 flips/rotations of the square (the dihedral
group), applied identically to the blurred and the sharp image so that they stay aligned.

Randomness comes only from the ``numpy.random.Generator`` passed in; ``item_rng(seed, epoch, index)``
builds one per item so that an item's augmentation depends on nothing but those three numbers (not
on the DataLoader worker that loads it, nor on what was loaded before): resumed training replays
the same crops.

Example::

    rng = item_rng(seed=0, epoch=3, index=17)
    blur_crop, sharp_crop = augment_pair(blur, sharp, crop=(256, 256), rng=rng)
"""

from __future__ import annotations

import numpy as np

DIHEDRAL_TRANSFORMS = 8


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one item of one epoch; independent streams for every (seed, epoch, index)."""
    if min(seed, epoch, index) < 0:
        raise ValueError(f"seed, epoch and index must be >= 0, got {seed}, {epoch}, {index}")
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, index]))


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """Transform ``k`` in 0..7 of an (H, W, ...) array: ``k % 4`` quarter turns, then a left-right
    flip when ``k >= 4``. ``k == 0`` is the identity."""
    if not 0 <= k < DIHEDRAL_TRANSFORMS:
        raise ValueError(f"dihedral transform index must be in 0..7, got {k}")
    out = np.rot90(image, k % 4, axes=(0, 1))
    if k >= 4:
        out = out[:, ::-1]
    return out


def pad_to_size(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad the bottom and right of an (H, W, C) array up to at least ``height`` x ``width``."""
    for axis, target in ((0, height), (1, width)):
        pad = target - image.shape[axis]
        if pad > 0:
            widths = [(0, 0)] * image.ndim
            widths[axis] = (0, pad)
            # A 1-pixel-wide axis has nothing to reflect; repeat its edge instead.
            image = np.pad(image, widths, mode="reflect" if image.shape[axis] > 1 else "edge")
    return image


def _crop_size(crop: int | tuple[int, int]) -> tuple[int, int]:
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    if ch <= 0 or cw <= 0:
        raise ValueError(f"crop size must be positive, got {crop}")
    return int(ch), int(cw)


def _check_same_size(blur: np.ndarray, sharp: np.ndarray) -> None:
    if blur.shape != sharp.shape:
        raise ValueError(f"blurred and sharp images differ in shape: {blur.shape} vs {sharp.shape}")


def augment_pair(
    blur: np.ndarray, sharp: np.ndarray, crop: int | tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random crop (reflect-padding small images) plus a random one of the 8 flips/rotations,
    identical for both (H, W, C) arrays. A non-square crop is only rotated by half turns so the
    output keeps its (height, width)."""
    _check_same_size(blur, sharp)
    ch, cw = _crop_size(crop)
    blur, sharp = pad_to_size(blur, ch, cw), pad_to_size(sharp, ch, cw)
    top = int(rng.integers(0, blur.shape[0] - ch + 1))
    left = int(rng.integers(0, blur.shape[1] - cw + 1))
    window = (slice(top, top + ch), slice(left, left + cw))
    k = int(rng.integers(0, DIHEDRAL_TRANSFORMS))
    if ch != cw and k % 2 == 1:
        k -= 1  # a quarter turn would swap height and width; use the half-turn member of the same flip
    return dihedral(blur[window], k), dihedral(sharp[window], k)


def center_crop_pair(
    blur: np.ndarray, sharp: np.ndarray, crop: int | tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic centre crop of both arrays (reflect-padded when smaller), for validation."""
    _check_same_size(blur, sharp)
    ch, cw = _crop_size(crop)
    blur, sharp = pad_to_size(blur, ch, cw), pad_to_size(sharp, ch, cw)
    top, left = (blur.shape[0] - ch) // 2, (blur.shape[1] - cw) // 2
    window = (slice(top, top + ch), slice(left, left + cw))
    return blur[window], sharp[window]
