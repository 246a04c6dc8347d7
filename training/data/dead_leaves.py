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


def _leaf_colours(palette: np.ndarray | None, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` (count, 3) float32 colours: palette entries when a palette is given, else uniform RGB."""
    if palette is not None and len(palette):
        return palette[rng.integers(len(palette), size=count)].astype(np.float32)
    return rng.random((count, 3)).astype(np.float32)


def _texture(kind: int, h: int, w: int, colour: np.ndarray, other: np.ndarray, theta: float, period_u: float,
             phase: float) -> np.ndarray:
    """A (h, w, 3) fill: a gradient (kind 1) or a grating (kind 2) between two colours.

    ``period_u`` in [0, 1) picks the grating's period between 3 px and the leaf's shorter side."""
    c, s = math.cos(theta), math.sin(theta)
    along = np.arange(w, dtype=np.float32)[None, :] * c + np.arange(h, dtype=np.float32)[:, None] * s
    if kind == 1:
        # The extremes of a linear ramp over a rectangle lie at its corners.
        corners = [0.0, (w - 1) * c, (h - 1) * s, (w - 1) * c + (h - 1) * s]
        t = (along - min(corners)) / max(max(corners) - min(corners), 1.0)
    else:
        period = 3.0 + period_u * (max(4.0, min(h, w)) - 3.0)
        t = 0.5 + 0.5 * np.sin(along * np.float32(2 * math.pi / period) + np.float32(phase))
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
    canvas[:] = _leaf_colours(palette, 1, rng)[0]
    # Leaves centred beyond the border too, so that edges do not thin out near it.
    radii = sample_radii(MAX_LEAVES, r_min * s, r_max * s, alpha, rng)
    # Drawn back to front, so the last leaf is on top; enough leaves that the background is gone.
    expected_area = np.cumsum(np.pi * radii ** 2)
    count = int(min(MAX_LEAVES, np.searchsorted(expected_area, 4.0 * H * W) + 1))
    radii = radii[:count]
    # Every leaf's parameters in whole arrays: a Python loop of numpy scalar draws cost ~50 us a leaf, and a
    # 128-px training crop has thousands of leaves (the data engine's slowest source before this).
    kinds = rng.choice(3, size=count, p=TEXTURE_SHARE)
    cx = rng.uniform(-radii, W + radii)
    cy = rng.uniform(-radii, H + radii)
    colours, others = _leaf_colours(palette, count, rng), _leaf_colours(palette, count, rng)
    sides = np.where(rng.random(count) < 0.5, rng.integers(3, 9, size=count), 0)   # 0: a disc
    # n independent uniform angles per polygon, sorted (a convex polygon inscribed in the leaf's circle);
    # the unused slots sort to the end.
    angles = rng.uniform(0, 2 * math.pi, (count, 8))
    angles[np.arange(8) >= sides[:, None]] = np.inf
    angles = np.sort(angles, axis=1)
    used = np.isfinite(angles)
    angles[~used] = 0.0
    vertices = np.stack([cx[:, None] + radii[:, None] * np.cos(angles),
                         cy[:, None] + radii[:, None] * np.sin(angles)], axis=2)
    texture = rng.random((count, 3)) * (math.pi, 1.0, 2 * math.pi)       # orientation, period, phase
    x0s, x1s = np.maximum(0, (cx - radii).astype(int) - 1), np.minimum(W, (cx + radii).astype(int) + 2)
    y0s, y1s = np.maximum(0, (cy - radii).astype(int) - 1), np.minimum(H, (cy + radii).astype(int) + 2)
    visible = (x1s > x0s) & (y1s > y0s)
    flat = (kinds == 0) | (radii < 3 * s)
    # Integer geometry for OpenCV, rounded once for all leaves (half to even, like Python's round).
    polys = np.round(vertices).astype(np.int32)
    centres = np.round(np.stack([cx, cy], axis=1)).astype(int).tolist()
    disc_r = np.maximum(1, np.round(radii)).astype(int).tolist()
    flat_colours = colours.astype(np.float64).tolist()
    for i in np.flatnonzero(visible).tolist():
        n = int(sides[i])
        if flat[i]:
            # Flat leaves straight onto the canvas: the bulk of all leaves, and the cheap ones.
            if n:
                cv2.fillConvexPoly(canvas, polys[i, :n], flat_colours[i], lineType=cv2.LINE_8)
            else:
                cv2.circle(canvas, centres[i], disc_r[i], flat_colours[i], -1, lineType=cv2.LINE_8)
            continue
        x0, x1, y0, y1 = int(x0s[i]), int(x1s[i]), int(y0s[i]), int(y1s[i])
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        if n:
            cv2.fillConvexPoly(mask, np.round(vertices[i, :n] - (x0, y0)).astype(np.int32), 1, lineType=cv2.LINE_8)
        else:
            cv2.circle(mask, (round(cx[i] - x0), round(cy[i] - y0)), disc_r[i], 1, -1, lineType=cv2.LINE_8)
        fill = _texture(int(kinds[i]), y1 - y0, x1 - x0, colours[i], others[i], *texture[i])
        region = canvas[y0:y1, x0:x1]
        inside = mask.astype(bool)
        region[inside] = fill[inside]
    if s > 1:
        canvas = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(canvas, 0.0, 1.0)
