"""How blurred a frame looks: the variance of its Laplacian (Pech-Pacheco et al., ICPR 2000).

Sharp frames have strong edges, so their Laplacian varies a lot; motion blur flattens it. The score
is computed on the 8-bit grayscale frame, so uint8 and float frames of one scene score alike. It
depends on content and resolution: calibrate ``threshold`` on your own camera (``deblur run`` prints
the scores it sees with ``--skip-sharp``).

Example::

    >>> blur_score(frame) > DEFAULT_SHARP_THRESHOLD     # already sharp: no need to deblur
    True
"""

from __future__ import annotations

import cv2
import numpy as np

# Measured on `deblur demo`'s 24-frame clip (256x384 windows of sdk/data/demo_sharp.png): the sharp
# frames score 176-942 (median 357), the same frames with 9-17 px motion blur 26-157 (median 35).
# 160 falls in the gap; other cameras and scenes need their own value.
DEFAULT_SHARP_THRESHOLD = 160.0


def blur_score(frame: np.ndarray) -> float:
    """Variance of the Laplacian of ``frame`` (HxW, HxWx3 BGR/RGB or HxWx4; uint8, or any float dtype in [0, 1])."""
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.size == 0:
        raise ValueError(f"blur_score expects an HxW or HxWxC image array, got {getattr(frame, 'shape', frame)!r}")
    if frame.dtype.kind == "f":
        # float16/float64 go through float32 too; a plain astype(uint8) would truncate [0, 1] to zeros.
        frame = cv2.convertScaleAbs(frame.astype(np.float32, copy=False), alpha=255.0)
    elif frame.dtype != np.uint8:
        raise TypeError(f"blur_score expects uint8 or float (in [0, 1]) pixels, got dtype {frame.dtype}")
    if frame.ndim == 3:
        if frame.shape[2] == 1:
            frame = frame[..., 0]
        else:
            # Channel order does not change the score measurably: the grey weights differ by < 1/4.
            frame = cv2.cvtColor(frame[..., :3], cv2.COLOR_BGR2GRAY)
    laplacian = cv2.Laplacian(frame, cv2.CV_32F)
    return float(laplacian.var())


def is_sharp(frame: np.ndarray, threshold: float = DEFAULT_SHARP_THRESHOLD) -> bool:
    """True when ``frame`` scores above ``threshold``: deblurring it would only cost time."""
    return blur_score(frame) > threshold
