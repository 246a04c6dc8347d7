"""Object and camera motion PSFs: straight and curved paths of a given length, at constant or changing speed.

A point moving during the exposure traces a path; its PSF is the time spent near each pixel
(``psf.psf_from_trajectory`` rasterises it, centred and summing to 1). Straight paths are the classic
linear motion blur; curved ones are circular arcs that turn by up to ``max_turn`` radians, as a
panning or rotating camera gives. Speed may ramp along the path (acceleration), so the PSF is not
always a flat segment. Length 0 gives the identity PSF: a sharp sample.

Example::

    rng = np.random.default_rng(0)
    kernel = motion_psf(15.0, rng, curved=True)      # (K, K) float32, sums to 1
"""

from __future__ import annotations

import math

import numpy as np

from .psf import psf_from_trajectory

SAMPLES = 512          # points per path: dense enough for paths up to ~100 px
MAX_TURN = math.pi     # an arc of at most a half circle


def motion_path(length: float, rng: np.random.Generator, *, curved: bool = False,
                max_turn: float = MAX_TURN, samples: int = SAMPLES) -> np.ndarray:
    """Positions (complex x + iy) at equal time steps along a path of exactly ``length`` pixels."""
    if length < 0:
        raise ValueError(f"motion length must be >= 0 pixels, got {length}")
    # Speed ramps linearly from 1 - a to 1 + a: arc length as a function of time is quadratic.
    accel = rng.uniform(-0.5, 0.5)
    t = np.linspace(0.0, 1.0, samples)
    s = length * ((1 - accel) * t + accel * t * t)
    direction = rng.uniform(0, 2 * math.pi)
    turn = rng.uniform(-max_turn, max_turn) if curved else 0.0
    if abs(turn) < 1e-6 or length == 0:
        return s * complex(math.cos(direction), math.sin(direction))
    radius = length / abs(turn)
    phi = s / radius * math.copysign(1.0, turn)
    # An arc starting at the origin heading along `direction`.
    path = radius * (np.exp(1j * phi) - 1.0) * -1j * math.copysign(1.0, turn)
    return path * complex(math.cos(direction), math.sin(direction))


def motion_psf(length: float, rng: np.random.Generator, *, curved: bool = False,
               max_turn: float = MAX_TURN) -> np.ndarray:
    """The PSF of :func:`motion_path`: odd-sized, centred, non-negative, sums to 1."""
    return psf_from_trajectory(motion_path(length, rng, curved=curved, max_turn=max_turn))
