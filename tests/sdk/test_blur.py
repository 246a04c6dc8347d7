"""The blur score separates the demo clip's sharp frames from their motion-blurred copies."""

from __future__ import annotations

import numpy as np
import pytest

from sdk.blur import DEFAULT_SHARP_THRESHOLD, blur_score, is_sharp
from sdk.cli.demo import load_demo_image, make_demo_clip


def test_default_threshold_separates_the_demo_clip():
    pairs = make_demo_clip(load_demo_image(), frames=24)
    blurred = [blur_score(b) for b, _ in pairs]
    sharp = [blur_score(s) for _, s in pairs]
    # The numbers DEFAULT_SHARP_THRESHOLD's comment quotes (measured on this clip).
    assert 25 < min(blurred) and max(blurred) < 158 and 176 < min(sharp)
    assert not any(is_sharp(b) for b, _ in pairs) and all(is_sharp(s) for _, s in pairs)
    assert max(blurred) < DEFAULT_SHARP_THRESHOLD < min(sharp)


def test_score_ignores_dtype_and_layout():
    image = load_demo_image()[:128, :128]
    score = blur_score(image)
    assert blur_score(image.astype(np.float32) / 255) == pytest.approx(score, rel=0.01)
    gray = np.dot(image[..., :3].astype(np.float32), [0.114, 0.587, 0.299]).round().astype(np.uint8)
    assert blur_score(gray) == pytest.approx(score, rel=0.02)
    assert blur_score(np.dstack([image, image[..., :1]])) == score
    assert blur_score(np.full((32, 32, 3), 90, np.uint8)) == 0.0
    with pytest.raises(ValueError, match="HxW or HxWxC"):
        blur_score(np.zeros(5, np.uint8))


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_every_float_dtype_scores_like_float32(dtype):
    image = load_demo_image()[:128, :128]
    as_float32 = blur_score(image.astype(np.float32) / 255)
    assert as_float32 > 100       # a textured crop: a score of 0 would mean the pixels were lost
    assert blur_score((image / 255).astype(dtype)) == pytest.approx(as_float32, rel=0.01)


def test_integer_dtypes_other_than_uint8_are_refused():
    with pytest.raises(TypeError, match="uint8 or float"):
        blur_score(np.zeros((8, 8), np.uint16))
