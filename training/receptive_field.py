"""How far a trained network's output really reaches: its effective receptive radius, measured on its weights.

The theoretical support of a deep network (the farthest input with a non-zero gradient) is far larger than
what trained weights use, and what they use grows with training: the same architecture has an 11 px radius
after 600 steps and 33 px after 7,000. The runtime sizes its tile overlap from this radius (four times it,
``sdk.tiling.exact_overlap``), so it is measured on the weights that ship -- by ``python -m training.release``
and by ``deblur export`` -- and stored with them, not looked up by architecture.

- **influence**: ``|d out / d in|`` summed over input channels around a probed output pixel (worst output
  channel and probe position; a blurred photo is the input, since the network is not linear);
- **tail(R)**: the influence summed over input pixels farther than R (Chebyshev). Content beyond R can move
  the output by at most ``input range x tail(R)`` to first order;
- **effective radius**: the smallest R whose bound is under half an 8-bit grey level.

Example::

    model, _ = load_model("runs/small-engine/best.pt")
    radius = measure_effective_radius(model)          # pixels; tile_overlap = 4 * radius
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

PROBE = 256                       # first gradient probe size: four times the radius of our single-stage edge nets
MAX_PROBE = 1024                  # a U-Net's deep levels reach far; past this the radius is reported unknown
GREY_LEVELS = 255
OFFSETS = ((0, 0), (5, -7), (-9, 3))


def probe_frame(height: int, width: int) -> np.ndarray:
    """A natural, blurred BGR uint8 frame: scikit-image's astronaut resized, with 15 px linear motion blur."""
    import cv2
    from skimage import data

    image = cv2.resize(data.astronaut()[..., ::-1], (width, height), interpolation=cv2.INTER_CUBIC)
    kernel = np.zeros((15, 15), np.float32)
    kernel[7, :] = 1 / 15
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def influence(model: Any, *, size: int = PROBE, offsets: Sequence[tuple[int, int]] = OFFSETS) -> np.ndarray:
    """``|d out / d in|`` summed over input channels, as a ``size x size`` map centred on the probed pixel:
    the worst output channel and probe position (a crop of :func:`probe_frame` is the input)."""
    frame = probe_frame(size + 32, size + 32)[16:16 + size, 16:16 + size, ::-1].copy()
    low, high = model.input_range
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255 * (high - low) + low
    worst = np.zeros((size, size), np.float64)
    c = size // 2
    for dy, dx in offsets:
        for channel in range(3):
            xi = x.clone().requires_grad_(True)
            model(xi)[0, channel, c + dy, c + dx].backward()
            g = xi.grad[0].abs().sum(0).double().numpy()           # type: ignore[union-attr]
            worst = np.maximum(worst, np.roll(g, (-dy, -dx), axis=(0, 1)))
    return worst


def tail_by_radius(grad: np.ndarray) -> np.ndarray:
    """``tail[R]``: the sum of ``grad`` over pixels farther than R (Chebyshev) from the centre."""
    size = grad.shape[0]
    c = size // 2
    yy, xx = np.mgrid[:size, :size]
    dist = np.maximum(abs(yy - c), abs(xx - c))
    per_ring = np.bincount(dist.ravel(), weights=grad.ravel())
    return per_ring[::-1].cumsum()[::-1] - per_ring          # strictly outside radius R


def effective_radius(tail: np.ndarray, value_span: float) -> int:
    """The smallest R at which anything beyond R moves an output by under half a grey level (first order)."""
    below = value_span * tail < 0.5 * value_span / GREY_LEVELS
    if not below.any():
        raise ValueError("the influence never falls below half a grey level inside the probe: use a larger probe")
    return int(np.argmax(below))


def grown_tail(model: torch.nn.Module, *, size: int = PROBE, max_size: int = MAX_PROBE) -> tuple[int, np.ndarray, int]:
    """``(probe size, tail, effective radius)`` of ``model``'s current weights (see
    :func:`measure_effective_radius`, which this measures for)."""
    probe = copy.deepcopy(model).float().cpu().eval()
    for p in probe.parameters():
        p.requires_grad_(False)
    low, high = probe.input_range                            # type: ignore[attr-defined, misc]
    while True:
        with torch.enable_grad():
            tail = tail_by_radius(influence(probe, size=size))
        try:
            radius = effective_radius(tail, float(high - low))
        except ValueError:
            radius = None
        if radius is not None and 4 * radius <= size:
            return size, tail, radius
        if 2 * size > max_size:
            raise ValueError(f"the influence reaches past a quarter of a {size}-px probe "
                             f"(radius {radius if radius is not None else '> ' + str(size // 2)} px): "
                             "the effective radius is unknown")
        size *= 2


def measure_effective_radius(model: torch.nn.Module, *, size: int = PROBE, max_size: int = MAX_PROBE) -> int:
    """The effective radius of ``model``'s current weights, in pixels (a float32 copy on the CPU, in eval
    mode: the caller's module, device and mode are untouched).

    A probe only sees influence inside itself, and its own borders cut what lies beyond them, so a radius
    is trusted only when it is at most a quarter of the probe; otherwise the probe doubles (up to
    ``max_size``). Raises ``ValueError`` when even the largest probe cannot hold the influence (the
    radius is then unknown, not small)."""
    return grown_tail(model, size=size, max_size=max_size)[2]
