"""The exported manifest says whether a network's tiles can equal its whole-frame output (issue 13,
finding 7): per-image statistics (InstanceNorm, GroupNorm, global pooling) make that impossible."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.checkpoint import model_manifest, tile_exactness
from training.models import build


class _Local(nn.Module):
    receptive_field = 2          # two 3x3 convolutions

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))


@pytest.mark.parametrize("layer", [nn.InstanceNorm2d(8), nn.GroupNorm(2, 8), nn.AdaptiveAvgPool2d(1)])
def test_a_layer_with_per_image_statistics_makes_tiles_inexact(layer):
    model = _Local()
    model.body.insert(1, layer)
    assert tile_exactness(model) is False


def test_a_local_network_with_a_declared_receptive_field_is_exact_and_unknown_otherwise():
    assert tile_exactness(_Local()) is True
    plain = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1))
    assert tile_exactness(plain) is None


def test_model_manifest_carries_the_verdict():
    torch.manual_seed(0)
    model = build("rdafnet-nano")
    model.add_module("extra_norm", nn.InstanceNorm2d(3))    # any per-image-statistics layer anywhere
    manifest = model_manifest(model)
    assert manifest.tile_exact is False and manifest.receptive_field is None
