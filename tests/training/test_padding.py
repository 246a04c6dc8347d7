"""Training pads like the runtime: reflect-101, also when the pad is wider than the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sdk.processing import reflect_pad_inplace
from training.models.padding import crop_to, pad_to_multiple


@pytest.mark.parametrize("size", [(1, 1), (1, 5), (2, 3), (3, 7), (7, 9), (16, 13), (24, 24)])
def test_pad_matches_the_runtime_for_every_size(size: tuple[int, int]) -> None:
    h, w = size
    x = torch.arange(2 * 3 * h * w, dtype=torch.float32).reshape(2, 3, h, w)
    padded, original = pad_to_multiple(x, 8)
    ph, pw = -(-h // 8) * 8, -(-w // 8) * 8
    assert padded.shape == (2, 3, ph, pw) and original == (h, w)

    planes = np.zeros((2, 3, ph, pw), dtype=np.float32)
    planes[..., :h, :w] = x.numpy()
    reflect_pad_inplace(planes, h, w)
    np.testing.assert_array_equal(padded.numpy(), planes)
    assert torch.equal(crop_to(padded, original), x)


def test_tiny_pad_reflects_without_repeating_the_edge() -> None:
    row = torch.tensor([[[[0.0, 1.0, 2.0]]]])
    padded, _ = pad_to_multiple(row, 8)
    # reflect-101 of 0 1 2: ... 2 1 0 1 2 1 0 1 (never 2 2, which replicate would give)
    assert padded[0, 0, 0].tolist() == [0, 1, 2, 1, 0, 1, 2, 1]
    assert padded.shape[-2:] == (8, 8) and torch.equal(padded[0, 0, 5], padded[0, 0, 0])
