"""Reading and writing image files for paired datasets, with errors that name the file.

Images are decoded with OpenCV and handed on as RGB ``numpy`` arrays in their stored bit depth
(``uint8`` or ``uint16``); ``to_unit_float`` turns them into ``float32`` in [0, 1]. Keeping the raw
integers until after cropping saves converting pixels that augmentation throws away.

Example::

    raw = read_rgb("GOPRO_Large/test/GOPR0384_11_00/sharp/000001.png")   # (720, 1280, 3) uint8
    img = to_unit_float(raw)                                             # float32 in [0, 1]
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sdk.files import IMAGE_SUFFIXES

# Anything else in a dataset folder (thumbnails, notes) is skipped.
IMAGE_EXTENSIONS = frozenset(IMAGE_SUFFIXES)


class DatasetError(ValueError):
    """A dataset on disk is not what its layout promises (unmatched names, sizes, unreadable files)."""


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` into an (H, W, 3) RGB array of dtype uint8 or uint16.

    Grey images are repeated over three channels and an alpha channel is dropped, so every pair
    has the same layout. Raises ``FileNotFoundError`` or ``DatasetError`` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    # imdecode on the bytes (not imread on the name) also reads paths OpenCV cannot spell on Windows.
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise DatasetError(f"cannot decode image {path}: not a readable image file (corrupt or truncated?)")
    if image.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"image {path} has pixel type {image.dtype}; expected 8- or 16-bit integers")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    raise DatasetError(f"image {path} has {channels} channels; expected 1, 3 or 4")


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 / uint16 array -> float32 in [0, 1] (same shape)."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) * np.float32(1.0 / 65535.0)
    raise TypeError(f"expected a uint8 or uint16 image, got {image.dtype}")


def write_rgb(path: str | Path, image: np.ndarray) -> None:
    """Write an (H, W, 3) RGB uint8/uint16 array; the format follows the file extension."""
    path = Path(path)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected an (H, W, 3) uint8 or uint16 RGB array for {path}, got {image.shape} {image.dtype}")
    ok, encoded = cv2.imencode(path.suffix or ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {path}")
    encoded.tofile(str(path))
