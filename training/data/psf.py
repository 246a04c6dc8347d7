"""Camera-shake point-spread functions from random camera trajectories (Boracchi & Foi 2012).

The trajectory model of Boracchi & Foi, "Modeling the Performance of Image Restoration From Motion
Blur" (IEEE TIP 2012), also used to make DeblurGAN's training blur: the image-plane position of a
point follows a 2-D path sampled at ``steps`` instants on a sub-pixel grid. At each instant the
velocity changes by

* a Gaussian random perturbation (``gaussian_term``; hand tremor),
* a pull back towards the start (``centripetal``; hands return to where they aimed),
* rarely, an impulsive "big shake" that nearly reverses the direction (``big_shake_freq``),

all scaled by ``anxiety``, and is then renormalised to constant speed, so the path length is exactly
``length`` pixels. The PSF is the time the point spends near each pixel: the samples are splatted
bilinearly onto a grid centred on their mean, so the PSF is non-negative, sums to 1 and its centre of
mass is the kernel centre (the blurred image is not shifted against the sharp one).

Example::

    rng = np.random.default_rng(0)
    path = random_trajectory(length=20.0, rng=rng)
    kernel = psf_from_trajectory(path.points)          # (K, K) float32, K odd, sums to 1
    blurred = convolve(linear_image, kernel)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

# DeblurGAN draws anxiety from {0.003, 0.005, 0.007, 0.008, 0.009, 0.01}; the range reaches down to
# 5e-4 as well so that near-straight (linear-motion) blur is also represented.
ANXIETY_RANGE = (5e-4, 1e-2)


@dataclass(frozen=True)
class Trajectory:
    """Positions (x + iy, pixels) at equal time steps, and the parameters that produced them."""

    points: np.ndarray
    params: dict[str, float] = field(default_factory=dict)


def random_trajectory(length: float, rng: np.random.Generator, anxiety: float | None = None,
                      steps: int = 2000) -> Trajectory:
    """A random camera path of total length ``length`` pixels (model in the module docstring).

    ``anxiety`` (shakiness) is drawn log-uniformly from ``ANXIETY_RANGE`` unless given; the other
    parameters are drawn as in Boracchi & Foi and recorded in ``Trajectory.params``.
    """
    if length < 0:
        raise ValueError(f"trajectory length must be >= 0 pixels, got {length}")
    if steps < 2:
        raise ValueError(f"a trajectory needs at least 2 steps, got {steps}")
    if anxiety is None:
        anxiety = float(np.exp(rng.uniform(np.log(ANXIETY_RANGE[0]), np.log(ANXIETY_RANGE[1]))))
    centripetal = 0.7 * rng.random()
    gaussian_term = 10.0 * rng.random()
    big_shake_freq = 0.2 * rng.random()
    start_angle = 2.0 * math.pi * rng.random()
    tremor = rng.standard_normal(steps - 1) + 1j * rng.standard_normal(steps - 1)
    shake_draws = rng.random(steps - 1)
    shake_turns = rng.random(steps - 1) - 0.5

    step = length / (steps - 1)
    shake_probability = big_shake_freq * anxiety
    velocity = complex(math.cos(start_angle), math.sin(start_angle)) * step
    points = np.zeros(steps, dtype=np.complex128)
    big_shakes = 0
    # A recurrence (each velocity depends on the last), so it runs as a loop over pre-drawn noise.
    for t in range(steps - 1):
        kick = 0j
        if shake_draws[t] < shake_probability:
            kick = 2.0 * velocity * complex(math.cos(math.pi + shake_turns[t]), math.sin(math.pi + shake_turns[t]))
            big_shakes += 1
        velocity += kick + anxiety * (gaussian_term * tremor[t] - centripetal * points[t]) * step
        speed = abs(velocity)
        if speed > 0:
            velocity *= step / speed
        points[t + 1] = points[t] + velocity
    params = {"length": float(length), "steps": int(steps), "anxiety": float(anxiety),
              "centripetal": float(centripetal), "gaussian_term": float(gaussian_term),
              "big_shake_freq": float(big_shake_freq), "start_angle": float(start_angle),
              "big_shakes": int(big_shakes)}
    return Trajectory(points, params)


def psf_from_trajectory(points: np.ndarray) -> np.ndarray:
    """Rasterise trajectory samples (complex x + iy) into an odd-sized, centred PSF that sums to 1."""
    points = np.asarray(points, dtype=np.complex128)
    if points.ndim != 1 or points.size == 0:
        raise ValueError(f"expected a non-empty 1-D array of complex positions, got shape {points.shape}")
    centred = points - points.mean()
    radius = int(math.ceil(max(np.abs(centred.real).max(), np.abs(centred.imag).max())))
    size = 2 * radius + 3  # one spare pixel each side for the bilinear footprint
    centre = radius + 1
    x, y = centred.real + centre, centred.imag + centre
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    flat = np.zeros(size * size, dtype=np.float64)
    for dy, dx, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                           (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        flat += np.bincount((y0 + dy) * size + (x0 + dx), weights=weight, minlength=size * size)
    psf = flat.reshape(size, size)
    return (psf / psf.sum()).astype(np.float32)


def transform_trajectory(points: np.ndarray, scale: float, rotation: float) -> np.ndarray:
    """Scale and rotate (radians) a trajectory: the same shake seen at another image position
    when the camera also rotates, which is what makes real shake blur vary across the frame."""
    return np.asarray(points) * (scale * complex(math.cos(rotation), math.sin(rotation)))


def convolve(image: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Convolve every channel of a float32 (H, W, C) image with ``psf`` (reflected at the borders).

    ``cv2.filter2D`` correlates, so the kernel is flipped to make this a true convolution.
    """
    if psf.ndim != 2 or psf.shape[0] % 2 == 0 or psf.shape[1] % 2 == 0:
        raise ValueError(f"expected an odd-sized 2-D PSF, got shape {psf.shape}")
    return cv2.filter2D(np.asarray(image, dtype=np.float32), -1, cv2.flip(psf, -1), borderType=cv2.BORDER_REFLECT)
