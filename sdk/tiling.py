"""Overlapping tiles for frames larger than a model's profile or a memory budget, blended without seams.

Tiles sit on a regular grid (the last row/column flush with the far edge). Inside each overlap the
weights ramp up with a raised cosine; the outermost quarter of every *interior* tile edge gets zero
weight, because that is where the tile's own zero/reflect padding corrupts a convolution's answer.
Weights are normalised by their sum, so a per-pixel network tiled equals it untiled to rounding, and a
network whose receptive field fits in a quarter of the overlap does too (:func:`exact_overlap`; the
Deblurrer raises the overlap to it when the manifest gives the receptive field). Networks with
per-image statistics (InstanceNorm, global pooling) normalise each tile by its own content and can
never match the whole frame exactly: tile them only when a frame does not fit (the Deblurrer warns).

Example::

    >>> plan = plan_tiles(1440, 2560, tile=(1088, 1088), overlap=32, multiple=8)
    >>> len(plan.ys), len(plan.xs)
    (2, 3)
    >>> blend_tiles(planes, out, plan, run_tile)       # run_tile(tile_in, tile_out) runs the network
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _round_down(n: int, multiple: int) -> int:
    return max(multiple, n // multiple * multiple)


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` shared."""
    if length <= tile:
        return [0]
    step = tile - overlap
    if step <= 0:
        raise ValueError(f"tile ({tile}) must be larger than the overlap ({overlap})")
    return list(range(0, length - tile, step)) + [length - tile]


def _ramp(overlap: int) -> np.ndarray:
    """Rising weights over an overlap: zeros on the outer quarter, then a raised cosine up to 1."""
    margin = overlap // 4
    rise = overlap - margin
    ramp = np.zeros(overlap, np.float32)
    i = np.arange(rise, dtype=np.float64)
    ramp[margin:] = 0.5 - 0.5 * np.cos(np.pi * (i + 0.5) / rise)
    return ramp


def axis_weights(starts: list[int], tile: int, length: int, overlap: int) -> list[np.ndarray]:
    """One weight profile per tile: 1 inside, ramps on edges shared with a neighbour, none at the image edge."""
    ramp = _ramp(min(overlap, tile)) if overlap > 0 else np.zeros(0, np.float32)
    profiles = []
    for s in starts:
        w = np.ones(min(tile, length), np.float32)
        if s > 0 and overlap:
            w[:len(ramp)] = np.minimum(w[:len(ramp)], ramp)
        if s + tile < length and overlap:
            w[-len(ramp):] = np.minimum(w[-len(ramp):], ramp[::-1])
        profiles.append(w)
    return profiles


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles go on a ``height`` x ``width`` image and how much each pixel of each counts."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    weights_y: tuple[np.ndarray, ...] = field(repr=False)
    weights_x: tuple[np.ndarray, ...] = field(repr=False)
    # 1 / (sum of weights) per row and per column: the grid is separable, so the 2-D sum is their product.
    inv_norm_y: np.ndarray = field(repr=False)
    inv_norm_x: np.ndarray = field(repr=False)

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)


def plan_tiles(height: int, width: int, *, tile: tuple[int, int], overlap: int, multiple: int = 1) -> TilePlan:
    """Lay tiles of at most ``tile`` (multiples of ``multiple``) over an image whose sides are multiples too."""
    overlap = _round_up(max(0, overlap), multiple) if overlap else 0
    tile_h, tile_w = min(tile[0], height), min(tile[1], width)
    if (tile_h < height and tile_h <= overlap) or (tile_w < width and tile_w <= overlap):
        raise ValueError(f"tile {tile[0]}x{tile[1]} must be larger than tile_overlap={overlap} "
                         f"(rounded to the model's multiple {multiple})")
    ys, xs = axis_starts(height, tile_h, overlap), axis_starts(width, tile_w, overlap)
    wy, wx = axis_weights(ys, tile_h, height, overlap), axis_weights(xs, tile_w, width, overlap)
    norm_y, norm_x = np.zeros(height, np.float32), np.zeros(width, np.float32)
    for s, w in zip(ys, wy):
        norm_y[s:s + tile_h] += w
    for s, w in zip(xs, wx):
        norm_x[s:s + tile_w] += w
    if not (norm_y > 0).all() or not (norm_x > 0).all():
        raise ValueError(f"tile {tile_h}x{tile_w} is too small for tile_overlap={overlap}: blending weights "
                         "leave pixels uncovered; use a tile at least twice the overlap")
    return TilePlan(height, width, tile_h, tile_w, tuple(ys), tuple(xs), tuple(wy), tuple(wx),
                    1.0 / norm_y, 1.0 / norm_x)


def min_blend_tile(overlap: int, multiple: int = 1) -> int:
    """The smallest tile that blends cleanly: its two overlaps (rounded as :func:`plan_tiles` rounds
    them) plus one ``multiple`` of its own."""
    return 2 * _round_up(max(0, overlap), multiple) + multiple


def largest_overlap(tile: int, multiple: int = 1) -> int:
    """The largest overlap (a multiple of ``multiple``) that tiles of ``tile`` pixels can hold."""
    return max(0, (tile - multiple) // 2 // multiple * multiple)


def exact_overlap(receptive_field: int, multiple: int = 1) -> int:
    """The overlap at which tiles of a local network equal the whole frame: every pixel a tile's answer
    counts for (all but the outer quarter of each overlap, see :func:`_ramp`) must lie at least
    ``receptive_field`` pixels inside the tile, where the tile's own border cannot reach it."""
    return _round_up(4 * max(0, receptive_field), multiple)


def overlap_for_model(requested: int, receptive_field: int | None, tile_exact: bool | None,
                      multiple: int = 1) -> int:
    """``requested``, raised to :func:`exact_overlap` for a local network of known receptive field
    (``tile_exact`` not False); per-image-statistics networks (False) and unknown ones keep ``requested``."""
    if receptive_field is None or tile_exact is False:
        return requested
    return max(requested, exact_overlap(receptive_field, multiple))


def fit_overlap(overlap: int, max_hw: tuple[int, int] | None, multiple: int = 1, *, warn: bool = True) -> int:
    """``overlap``, reduced (with a warning unless ``warn`` is False) when the largest tile could not hold it twice.

    A model whose profile stops at 64x64 cannot use 72-pixel tiles, which the default overlap of 32
    would need; 24 pixels of overlap fit (24 + 8 + 24 <= 64 with a multiple of 8).
    """
    overlap = max(0, int(overlap))
    if max_hw is None or min_blend_tile(overlap, multiple) <= min(max_hw):
        return overlap
    fitted = largest_overlap(min(max_hw), multiple)
    if warn:
        warnings.warn(f"tile_overlap={overlap} does not fit the largest tile {max_hw[0]}x{max_hw[1]} "
                      f"(tiles need twice the overlap plus {multiple}); using tile_overlap={fitted}",
                      UserWarning, stacklevel=3)
    return fitted


def choose_tile(height: int, width: int, *, max_hw: tuple[int, int] | None, max_pixels: int | None,
                overlap: int, multiple: int = 1, min_hw: tuple[int, int] = (1, 1)) -> tuple[int, int] | None:
    """The tile size for an image of this (padded) size, or None when it runs whole.

    Takes the largest tile the limits allow, then evens the tiles out so that no tile is mostly padding
    (e.g. 1100 rows under a 1088 limit become two tiles of ~570, not 1088 + 44). Tiles always stay
    inside the model's ``[min_hw, max_hw]``; ``max_pixels`` is a soft budget that yields to them.
    Raises ``ValueError`` when ``max_hw`` is too small to hold ``overlap`` (see :func:`fit_overlap`).
    """
    fits_shape = max_hw is None or (height <= max_hw[0] and width <= max_hw[1])
    fits_budget = max_pixels is None or height * width <= max_pixels
    if fits_shape and fits_budget:
        return None
    cap_h = min(height, max_hw[0]) if max_hw else height
    cap_w = min(width, max_hw[1]) if max_hw else width
    if max_pixels is not None and cap_h * cap_w > max_pixels:
        shrink = math.sqrt(max_pixels / (cap_h * cap_w))
        cap_h, cap_w = int(cap_h * shrink), int(cap_w * shrink)
    floor = min_blend_tile(overlap, multiple)
    sizes = []
    for length, cap, lo, hi in ((height, cap_h, min_hw[0], max_hw[0] if max_hw else height),
                                (width, cap_w, min_hw[1], max_hw[1] if max_hw else width)):
        hi = min(hi, length)
        if length > hi and floor > hi:
            raise ValueError(f"the model takes tiles of at most {hi} pixels, too small for tile_overlap={overlap} "
                             f"(a tile needs {floor}); use tile_overlap <= {largest_overlap(hi, multiple)}")
        tile = _balanced(length, max(_round_down(cap, multiple), min(floor, length), lo), overlap, multiple)
        sizes.append(min(max(tile, lo), hi))    # evening out may leave the profile: clamp back into it
    return sizes[0], sizes[1]


def _balanced(length: int, cap: int, overlap: int, multiple: int) -> int:
    if length <= cap:
        return length
    n = math.ceil((length - overlap) / max(cap - overlap, 1))
    return min(cap, _round_up(math.ceil((length + (n - 1) * overlap) / n), multiple))


def blend_tiles(planes: np.ndarray, out: np.ndarray, plan: TilePlan,
                run_tile: Callable[[np.ndarray, np.ndarray], None],
                tile_in: np.ndarray | None = None, tile_out: np.ndarray | None = None) -> None:
    """Run ``run_tile(tile_in, tile_out)`` on every tile of ``planes`` (P, H, W) and blend into ``out``.

    ``tile_in``/``tile_out`` are optional reused (P, tile_h, tile_w) float32 buffers.
    """
    p = planes.shape[0]
    shape = (p, plan.tile_h, plan.tile_w)
    tile_in = tile_in if tile_in is not None and tile_in.shape == shape else np.empty(shape, np.float32)
    tile_out = tile_out if tile_out is not None and tile_out.shape == shape else np.empty(shape, np.float32)
    out.fill(0.0)
    weights: dict[tuple[int, int], np.ndarray] = {}
    for iy, y in enumerate(plan.ys):
        for ix, x in enumerate(plan.xs):
            np.copyto(tile_in, planes[:, y:y + plan.tile_h, x:x + plan.tile_w])
            run_tile(tile_in, tile_out)
            # First, middle and last tiles of a row share profiles: at most 9 distinct 2-D weight maps.
            key = (min(iy, 1) + (iy == len(plan.ys) - 1) * 2, min(ix, 1) + (ix == len(plan.xs) - 1) * 2)
            w = weights.get(key)
            if w is None:
                w = weights[key] = np.outer(plan.weights_y[iy], plan.weights_x[ix])
            tile_out *= w
            out[:, y:y + plan.tile_h, x:x + plan.tile_w] += tile_out
    out *= plan.inv_norm_y[:, None]
    out *= plan.inv_norm_x[None, :]
