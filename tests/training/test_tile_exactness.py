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


@pytest.mark.parametrize(("name", "norm", "receptive_field", "exact"), [
    ("rdafnet-nano", None, 33, True),          # norm none: measured on the bundled checkpoint (campaign step 7,000)
    ("rdafnet-nano", "layer", None, True),     # per-pixel LayerNorm is local, its radius unmeasured
    ("rdafnet-nano", "instance", None, False),
    ("rdafnet-small", None, 28, True),         # norm none: measured on the bundled "small" (campaign step 6,000)
    ("rdafnet-single", None, None, False),     # the paper's InstanceNorm
])
def test_rdafnet_manifests_say_how_the_runtime_can_tile_them(name, norm, receptive_field, exact):
    model = build(name, **({"norm": norm} if norm else {}))
    manifest = model_manifest(model)
    assert (manifest.receptive_field, manifest.tile_exact) == (receptive_field, exact)


def test_the_bundled_size_gets_an_overlap_from_its_effective_radius_not_its_support():
    from sdk.tiling import overlap_for_model

    manifest = model_manifest(build("rdafnet-nano"))
    overlap = overlap_for_model(32, manifest.receptive_field, manifest.tile_exact, manifest.pad_multiple)
    assert overlap == 132           # 4 x 33 px (measured effective radius), where 4 x the 75-px support would be 300


def test_a_checkpoint_saved_before_the_tiling_fields_loads_with_them(tmp_path):
    from training.checkpoint import load_model, save_checkpoint

    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "old.pt", build("rdafnet-nano", num_blocks=5))
    payload = torch.load(path, weights_only=True)
    for key in ("receptive_field", "tile_exact"):       # as written by the code of before issue 13
        del payload["manifest"][key]
    torch.save(payload, path)
    _, manifest = load_model(path)
    assert (manifest.receptive_field, manifest.tile_exact) == (33, True)
