"""Pre- and post-processing, written once for every backend: frame <-> model tensor.

Pre: check the frame, pick its colour channels in the model's order, scale uint8 [0, 255] or float32
[0, 1] into the model's value range, write them planar (C, H, W) into a reused float32 buffer, and
reflect-pad the bottom/right to the size the model needs (buffers come from an :class:`ArrayPool`). Post: optionally add the input back
(``residual="add"``), crop, map back to [0, 255] (rounded, saturated) or [0, 1], and rebuild the caller's
own format: BGR or RGB, grayscale, or with its alpha channel kept.

Example::

    >>> conv, pool = FrameConverter(manifest, color="bgr"), ArrayPool()
    >>> spec = inspect_frame(frame, color="bgr")                    # raises on a bad frame
    >>> planes = conv.to_model(frame, spec, pool.take(conv.planes_shape(spec, (720, 1280))))
    >>> result = conv.from_model(network_output, frame, spec)       # same shape and dtype as frame
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from .manifest import Manifest

MAX_SIDE = 1 << 15          # 32768 px: beyond any camera; larger is a bug (e.g. a transposed buffer)
MAX_PIXELS = 1 << 27        # 134 MP: a 16k x 8k panorama still fits; more would not fit host memory as float32
COLORS = ("bgr", "rgb")
# Float frames may stray this far outside [0, 1] (rounding in the caller's own arithmetic) and still pass.
FLOAT_SLACK = 1.0 / 512


def expected_frames(color: str) -> str:
    order = color.upper()
    return (f"an HxWx3 uint8 numpy array in {order} order (or float32 in [0, 1]); "
            f"HxW grayscale and HxWx4 {order}A frames also work")


@dataclass(frozen=True)
class FrameSpec:
    """What a frame looks like, so the result can be rebuilt in the same format."""

    height: int
    width: int
    channels: int              # 1, 3 or 4
    dtype: np.dtype            # uint8 or float32
    ndim: int                  # 2 for HxW grayscale, else 3

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.height, self.width) if self.ndim == 2 else (self.height, self.width, self.channels)


def inspect_frame(frame: object, *, color: str = "bgr") -> FrameSpec:
    """Check ``frame`` and describe it; ``TypeError``/``ValueError`` name what was expected instead."""
    want = expected_frames(color)
    if frame is None:
        raise TypeError(f"expected a frame: {want}; got None (did the capture fail?)")
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"expected a frame: {want}; got {type(frame).__name__}")
    if frame.dtype not in (np.uint8, np.float32):
        hint = (" (convert with frame.astype(np.float32), dividing by 255 if it holds 0..255)"
                if frame.dtype.kind == "f" else "")
        raise TypeError(f"expected a frame: {want}; got dtype {frame.dtype}{hint}")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected a frame: {want}; got shape {frame.shape}")
    height, width = frame.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"expected a frame: {want}; got an empty array of shape {frame.shape}")
    if height > MAX_SIDE or width > MAX_SIDE or height * width > MAX_PIXELS:
        raise ValueError(f"frame of {height}x{width} px is larger than this SDK handles "
                         f"(at most {MAX_SIDE} px a side and {MAX_PIXELS:,} px); got shape {frame.shape}")
    if frame.dtype == np.float32:
        check_float_range(frame)
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    return FrameSpec(height, width, channels, frame.dtype, frame.ndim)


def check_float_range(frame: np.ndarray) -> None:
    """Float frames must hold [0, 1]: a 0..255 float frame would otherwise come back all white."""
    lo, hi = float(frame.min()), float(frame.max())   # NaN propagates into both
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("float32 frame contains NaN or Inf; expected values in [0, 1]")
    if lo < -FLOAT_SLACK or hi > 1.0 + FLOAT_SLACK:
        hint = " (a 0..255 frame: divide it by 255, or pass it as uint8)" if hi > 1.0 + FLOAT_SLACK and hi <= 255.0 else ""
        raise ValueError(f"float32 frame holds values in [{lo:g}, {hi:g}]; expected [0, 1]{hint}")


def padded_size(height: int, width: int, multiple: int, minimum: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """The smallest size >= (height, width) and >= ``minimum`` whose sides are multiples of ``multiple``."""
    def up(n: int) -> int:
        return -(-n // multiple) * multiple
    return up(max(height, minimum[0])), up(max(width, minimum[1]))


def _reflect_index(size: int, padded: int) -> np.ndarray:
    """Source indices of the rows (or columns) ``size..padded-1`` under reflect-101 padding, any pad width."""
    if size == 1:
        return np.zeros(padded - size, dtype=np.intp)
    period = 2 * (size - 1)
    k = np.arange(size, padded) % period
    return np.where(k < size, k, period - k)


def reflect_pad_inplace(planes: np.ndarray, height: int, width: int) -> None:
    """Fill ``planes[..., height:, :]`` and ``[..., width:]`` by reflecting the valid top-left region.

    Reflect-101 (the edge pixel is not repeated), as ``torch``'s "reflect" and ``cv2.BORDER_REFLECT_101``;
    pads wider than the image keep reflecting instead of failing.
    """
    total_h, total_w = planes.shape[-2:]
    if total_h > height:
        planes[..., height:, :width] = planes[..., _reflect_index(height, total_h), :width]
    if total_w > width:
        planes[..., :, width:] = planes[..., :, _reflect_index(width, total_w)]


class ArrayPool:
    """Float32 arrays handed out by shape and given back, so a steady stream allocates nothing per frame.

    Thread-safe. Keeps at most ``keep`` spare arrays of a shape and forgets every spare when more than
    ``shapes`` distinct shapes are in play, so memory stays bounded when frame sizes keep changing.
    Arrays that are never given back (a frame whose processing failed) are simply garbage-collected.
    """

    def __init__(self, keep: int = 4, shapes: int = 8) -> None:
        self.keep, self.shapes = keep, shapes
        self._free: dict[tuple[int, ...], list[np.ndarray]] = {}
        self._lock = threading.Lock()
        self.allocations = 0

    def take(self, shape: tuple[int, ...]) -> np.ndarray:
        with self._lock:
            spare = self._free.get(shape)
            if spare:
                return spare.pop()
            self.allocations += 1
        return np.empty(shape, np.float32)

    def give(self, *arrays: np.ndarray) -> None:
        with self._lock:
            for array in arrays:
                if array.shape not in self._free and len(self._free) >= self.shapes:
                    self._free.clear()
                spare = self._free.setdefault(array.shape, [])
                if len(spare) < self.keep and all(a is not array for a in spare):
                    spare.append(array)


class FrameConverter:
    """Frame <-> model tensor for one manifest and one frame colour order. Holds no buffers: the caller
    passes them (from an :class:`ArrayPool`), so one converter serves every thread."""

    def __init__(self, manifest: Manifest, *, color: str = "bgr") -> None:
        if color not in COLORS:
            raise ValueError(f"color must be one of {COLORS}, got {color!r}")
        self.manifest = manifest
        self.color = color
        lo, hi = manifest.value_range
        self._lo, self._span = np.float32(lo), np.float32(hi - lo)
        # Frames arrive in `color` order; the model wants manifest.color_order.
        self._swap = color.upper() != manifest.color_order

    def planes_for(self, spec: FrameSpec) -> int:
        """How many image planes a frame becomes: its colour channels, or 3 for grayscale into an RGB model."""
        if self.manifest.in_channels == 3:
            return 3
        return 1 if spec.channels == 1 else 3

    def batch_view(self, planes: np.ndarray) -> np.ndarray:
        """Planes (P, H, W) as the model's NCHW batch: one P-channel image, or P one-channel images."""
        p, h, w = planes.shape
        c = self.manifest.in_channels
        return planes.reshape(1, p, h, w) if c == p else planes.reshape(p, 1, h, w)

    # ------------------------------------------------------------------ pre
    def planes_shape(self, spec: FrameSpec, padded_hw: tuple[int, int]) -> tuple[int, int, int]:
        return (self.planes_for(spec), *padded_hw)

    def to_model(self, frame: np.ndarray, spec: FrameSpec, planes: np.ndarray) -> np.ndarray:
        """Fill ``planes`` (P, Hp, Wp) float32 with the frame in the model's range and colour order,
        reflect-padded to its size; returns it."""
        h, w = spec.height, spec.width
        scale = self._span / np.float32(255.0) if spec.dtype == np.uint8 else self._span
        valid = planes[:, :h, :w]
        if spec.channels == 1:
            gray = frame.reshape(h, w)
            np.multiply(gray, scale, out=valid[0], casting="unsafe")
            valid[0] += self._lo
            if planes.shape[0] > 1:
                valid[1:] = valid[0]
        else:
            color = frame[..., :3]
            if self._reorders():
                color = color[..., ::-1]
            np.multiply(color.transpose(2, 0, 1), scale, out=valid, casting="unsafe")
            valid += self._lo
        reflect_pad_inplace(planes, h, w)
        return planes

    # ------------------------------------------------------------------ post
    def from_model(self, planes: np.ndarray, frame: np.ndarray, spec: FrameSpec,
                   *, model_input: np.ndarray | None = None) -> np.ndarray:
        """The network's planes (P, Hp, Wp) back in ``frame``'s format; a new array the caller owns."""
        if self.manifest.residual == "add":
            if model_input is None:
                raise ValueError("residual='add' models need the model input to add back")
            planes += model_input
        valid = planes[:, :spec.height, :spec.width]
        if spec.channels == 1:
            if len(valid) == 1:
                return self._convert(valid, spec.dtype)[0].reshape(spec.shape)
            # A 3-channel model's answer to a gray frame: back to gray with the model's own channel order.
            code = cv2.COLOR_RGB2GRAY if self.manifest.color_order == "RGB" else cv2.COLOR_BGR2GRAY
            return cv2.cvtColor(cv2.merge(self._convert(valid, spec.dtype)), code).reshape(spec.shape)
        ordered = valid[::-1] if self._reorders() else valid
        channels = self._convert(ordered, spec.dtype)
        if spec.channels == 4:
            channels.append(np.ascontiguousarray(frame[..., 3]))   # alpha passes through untouched
        return cv2.merge(channels)

    def _reorders(self) -> bool:
        # Only 3-channel models see the channels reordered; 1-channel models take them as a batch.
        return self._swap and self.manifest.in_channels == 3

    def _convert(self, planes: np.ndarray, dtype: np.dtype) -> list[np.ndarray]:
        """Model-range float planes -> uint8 (rounded, saturated by cv2 in one pass) or float32 in [0, 1]."""
        inv = 1.0 / float(self._span)
        if dtype == np.uint8:
            alpha, beta = 255.0 * inv, -float(self._lo) * 255.0 * inv
            return [cv2.addWeighted(p, alpha, p, 0.0, beta, dtype=cv2.CV_8U) for p in planes]
        out = [cv2.addWeighted(p, inv, p, 0.0, -float(self._lo) * inv, dtype=cv2.CV_32F) for p in planes]
        for p in out:
            np.clip(p, 0.0, 1.0, out=p)
        return out
