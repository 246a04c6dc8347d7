"""Procedural "dead leaves" images: unlimited edges and textures with natural-image statistics.

The dead-leaves model (Matheron; Lee, Mumford & Huang 2001) drops opaque shapes of random size,
position and colour on top of each other. With radii drawn from a power law ``p(r) ~ r**-alpha``,
``alpha`` near 3, the result is scale invariant and has the 1/f power spectrum of natural photos.
Achddou, Gousseau & Ladjal, "Synthetic images as a regularity prior for image restoration neural
networks" (SSVM 2021) and its 2023 follow-up (textured leaves) showed that restoration networks
trained on such images alone come close to ones trained on photos; here they extend a small photo
set with endless sharp material, drawn on the fly, nothing downloaded.

What is drawn: discs and convex polygons (the 2023 paper's shape mix), back to front, on a canvas
supersampled ``supersample`` times and reduced with an area filter (anti-aliased edges, as a lens
and sensor give); each leaf is flat, a linear gradient or a sinusoidal grating (texture), coloured
from a palette of natural colours when one is given (pixels of real photos), else uniformly in RGB.

Example::

    rng = np.random.default_rng(0)
    image = dead_leaves(128, rng)                   # (128, 128, 3) float32 sRGB values in [0, 1]
    radii = sample_radii(1000, 1.0, 64.0, 3.0, rng) # the power law alone
"""

from __future__ import annotations

import math

import cv2
import numpy as np

ALPHA = 3.0                      # the exponent of natural images (Lee, Mumford & Huang 2001)
TEXTURE_SHARE = (0.4, 0.3, 0.3)  # flat, gradient, grating leaves
MAX_LEAVES = 20000               # bounds the cost of one image when r_min is tiny


def sample_radii(count: int, r_min: float, r_max: float, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """``count`` radii from ``p(r) ~ r**-alpha`` on ``[r_min, r_max]`` by inverting its CDF."""
    if not 0 < r_min < r_max:
        raise ValueError(f"need 0 < r_min < r_max, got {r_min}, {r_max}")
    if alpha <= 1:
        raise ValueError(f"alpha must be > 1 for a normalisable power law, got {alpha}")
    u = rng.random(count)
    e = 1.0 - alpha
    return (r_min ** e + u * (r_max ** e - r_min ** e)) ** (1.0 / e)


def _leaf_colour(palette: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    if palette is not None and len(palette):
        return palette[int(rng.integers(len(palette)))].astype(np.float32)
    return rng.random(3).astype(np.float32)


def _texture(kind: int, h: int, w: int, colour: np.ndarray, other: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """A (h, w, 3) fill: a gradient or a grating between two colours (kind 1, 2)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, math.pi)
    along = xx * math.cos(theta) + yy * math.sin(theta)
    if kind == 1:
        t = (along - along.min()) / max(float(np.ptp(along)), 1.0)
    else:
        period = rng.uniform(3.0, max(4.0, min(h, w)))
        t = 0.5 + 0.5 * np.sin(2 * math.pi * along / period + rng.uniform(0, 2 * math.pi))
    return colour + t[..., None] * (other - colour)


def dead_leaves(size: int | tuple[int, int], rng: np.random.Generator, *, r_min: float = 1.0,
                r_max: float | None = None, alpha: float = ALPHA, palette: np.ndarray | None = None,
                supersample: int = 2) -> np.ndarray:
    """A dead-leaves image of ``size`` (side or (height, width)) pixels: float32 (H, W, 3) in [0, 1].

    ``r_min``/``r_max`` are in output pixels (``r_max`` defaults to half the longer side); ``palette``
    is an (N, 3) array of colours in [0, 1] to draw leaf colours from.
    """
    height, width = (size, size) if isinstance(size, int) else size
    if min(height, width) < 1 or supersample < 1:
        raise ValueError(f"size and supersample must be positive, got {size}, {supersample}")
    r_max = max(height, width) / 2 if r_max is None else r_max
    s = supersample
    H, W = height * s, width * s
    canvas = np.empty((H, W, 3), np.float32)
    canvas[:] = _leaf_colour(palette, rng)
    # Leaves centred beyond the border too, so that edges do not thin out near it.
    radii = sample_radii(MAX_LEAVES, r_min * s, r_max * s, alpha, rng)
    # Drawn back to front, so the last leaf is on top; enough leaves that the background is gone.
    expected_area = np.cumsum(np.pi * radii ** 2)
    count = int(min(MAX_LEAVES, np.searchsorted(expected_area, 4.0 * H * W) + 1))
    kinds = rng.choice(3, size=count, p=TEXTURE_SHARE)
    for i in range(count):
        r = float(radii[i])
        cx, cy = rng.uniform(-r, W + r), rng.uniform(-r, H + r)
        colour = _leaf_colour(palette, rng)
        sides = int(rng.integers(3, 9)) if rng.random() < 0.5 else 0   # 0: a disc
        x0, x1 = max(0, int(cx - r) - 1), min(W, int(cx + r) + 2)
        y0, y1 = max(0, int(cy - r) - 1), min(H, int(cy + r) + 2)
        if x1 <= x0 or y1 <= y0:
            continue
        if sides:
            angles = np.sort(rng.uniform(0, 2 * math.pi, sides))
            poly = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
        if kinds[i] == 0 or r < 3 * s:
            # Flat leaves straight onto the canvas: the bulk of all leaves, and the cheap ones.
            col = tuple(float(c) for c in colour)
            if sides:
                cv2.fillConvexPoly(canvas, np.round(poly).astype(np.int32), col, lineType=cv2.LINE_8)
            else:
                cv2.circle(canvas, (round(cx), round(cy)), max(1, round(r)), col, -1, lineType=cv2.LINE_8)
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        if sides:
            cv2.fillConvexPoly(mask, np.round(poly - (x0, y0)).astype(np.int32), 1, lineType=cv2.LINE_8)
        else:
            cv2.circle(mask, (round(cx - x0), round(cy - y0)), max(1, round(r)), 1, -1, lineType=cv2.LINE_8)
        fill = _texture(int(kinds[i]), y1 - y0, x1 - x0, colour, _leaf_colour(palette, rng), rng)
        region = canvas[y0:y1, x0:x1]
        inside = mask.astype(bool)
        region[inside] = fill[inside]
    if s > 1:
        canvas = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(canvas, 0.0, 1.0)
