"""A capped evaluation samples the whole test set, not its first source."""

from __future__ import annotations

import pytest
import torch

from training.evaluate import evaluate, spread_indices
from training.models.base import DeblurNet


def test_spread_indices_cover_the_set_evenly() -> None:
    assert spread_indices(360, 60)[:3] == [0, 6, 12] and spread_indices(360, 60)[-1] == 359
    idx = spread_indices(360, 60)
    assert len(idx) == len(set(idx)) == 60 and idx == sorted(idx)
    assert spread_indices(10, None) == list(range(10)) == spread_indices(10, 50)
    assert spread_indices(7, 1) == [0] and spread_indices(7, 2) == [0, 6] and spread_indices(5, 4) == [0, 1, 3, 4]
    with pytest.raises(ValueError, match="positive"):
        spread_indices(10, 0)


class _Identity(DeblurNet):
    input_range = (0.0, 1.0)
    pad_multiple = 1

    def forward_supervised(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x]


def test_max_images_scores_pairs_from_every_source() -> None:
    # Three "sources" stored one after another, 4 pairs each, as a synthesised test split is.
    pairs = [{"blur": torch.full((3, 8, 8), 0.5), "sharp": torch.full((3, 8, 8), 0.5), "name": f"src{s}/{i}.png"}
             for s in range(3) for i in range(4)]
    scores = evaluate(_Identity(), pairs, max_images=3, progress=False)  # type: ignore[arg-type]
    assert [s.name for s in scores] == ["src0/0.png", "src1/2.png", "src2/3.png"]
