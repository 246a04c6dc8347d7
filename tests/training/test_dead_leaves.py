"""Dead-leaves images: the power-law size distribution, coverage, value range, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.dead_leaves import dead_leaves, sample_radii


@pytest.mark.parametrize("alpha", [2.5, 3.0, 4.0])
def test_radii_follow_the_power_law(alpha):
    rng = np.random.default_rng(0)
    r = sample_radii(200_000, 1.0, 100.0, alpha, rng)
    assert r.min() >= 1.0 and r.max() <= 100.0
    # Maximum-likelihood exponent of a power law truncated far above the data (Clauset et al. 2009);
    # the truncation at 100 biases it by < 0.01 for these alphas.
    estimate = 1.0 + len(r) / np.log(r).sum()
    assert estimate == pytest.approx(alpha, abs=0.03)
    # The CDF at 2 px, in closed form: (1 - 2**(1-a)) / (1 - 100**(1-a)).
    expected = (1 - 2.0 ** (1 - alpha)) / (1 - 100.0 ** (1 - alpha))
    assert (r <= 2.0).mean() == pytest.approx(expected, abs=0.005)


def test_bad_power_law_parameters_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        sample_radii(10, 5.0, 1.0, 3.0, rng)
    with pytest.raises(ValueError):
        sample_radii(10, 1.0, 5.0, 1.0, rng)


def test_images_are_covered_in_range_and_reproducible():
    a = dead_leaves(64, np.random.default_rng(4))
    b = dead_leaves(64, np.random.default_rng(4))
    assert a.shape == (64, 64, 3) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0
    # Many leaves of many sizes: many distinct colours, edges everywhere, not one flat background.
    assert len(np.unique(a.reshape(-1, 3).round(3), axis=0)) > 200
    assert np.abs(np.diff(a, axis=1)).mean() > 0.02


def test_palette_colours_are_used():
    palette = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    image = dead_leaves((40, 56), np.random.default_rng(1), palette=palette, supersample=1)
    assert image.shape == (40, 56, 3)
    # Only mixtures of red and blue (gradients and gratings between two palette colours): no green.
    assert image[..., 1].max() == 0.0


def test_spectrum_falls_like_natural_images():
    # Natural images have a power spectrum ~ 1/f^2 (slope about -2 in log-log); white noise has 0.
    image = dead_leaves(256, np.random.default_rng(2)).mean(axis=2)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))) ** 2
    yy, xx = np.indices(spectrum.shape) - 128
    radius = np.hypot(yy, xx).astype(int)
    radial = np.bincount(radius.ravel(), spectrum.ravel()) / np.bincount(radius.ravel())
    f = np.arange(4, 100)
    slope = np.polyfit(np.log(f), np.log(radial[f]), 1)[0]
    assert -3.2 < slope < -1.2
