from __future__ import annotations

import pytest
import torch

from sdk.manifest import Manifest
from training.checkpoint import load_checkpoint, load_model, release_checkpoint, save_checkpoint
from training.models import build


def test_checkpoint_round_trip_rebuilds_the_same_network(tmp_path):
    torch.manual_seed(0)
    net = build("rdafnet-nano").eval()
    path = save_checkpoint(tmp_path / "ckpt.pt", net, step=7)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]        # no temporary file left behind
    model, manifest = load_model(path)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), net(x))
    assert isinstance(manifest, Manifest)
    assert manifest.variant == "rdafnet-nano" and manifest.value_range == (-1.0, 1.0)
    assert manifest.checkpoint_sha256 and len(manifest.checkpoint_sha256) == 64
    assert load_checkpoint(path)["step"] == 7


def test_missing_corrupt_and_foreign_checkpoints_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model(tmp_path / "nope.pt")
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(truncated, build("rdafnet-nano"))
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_model(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    with pytest.raises(ValueError, match="not a deblur-sdk checkpoint"):
        load_model(foreign)


def test_weights_of_another_variant_are_rejected(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", build("rdafnet-nano"))
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_name"] = "rdafnet-small"
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="do not fit 'rdafnet-small'"):
        load_model(path)


def test_the_tile_radius_is_measured_on_the_weights_that_ship_not_looked_up_by_architecture(tmp_path):
    torch.manual_seed(0)
    net = build("rdafnet-nano", base_channels=12, num_blocks=5, norm="none")
    assert net.receptive_field == 33            # the table's entry: the bundled default's trained weights
    with torch.no_grad():
        net.to_image.weight.zero_()             # tanh(0) + x: each output pixel is its input pixel
    raw = save_checkpoint(tmp_path / "raw.pt", net)
    assert load_model(raw)[1].receptive_field == 33                        # not measured: the table
    assert load_model(raw, measure_radius=True)[1].receptive_field == 0    # measured on these weights
    released = release_checkpoint(raw, tmp_path / "released.pt")
    assert load_checkpoint(released)["effective_radius"] == 0
    assert load_model(released)[1].receptive_field == 0


@pytest.mark.parametrize(("name", "kwargs", "exact"), [
    ("rdafnet-nano", {"num_blocks": 1, "norm": "instance"}, False),          # per-image statistics
    ("msan", {"num_stages": 2, "num_blocks": 1, "width": 8}, None),          # exactness unknown
])
def test_networks_that_may_not_tile_exactly_get_no_radius(tmp_path, name, kwargs, exact):
    raw = save_checkpoint(tmp_path / "raw.pt", build(name, **kwargs))
    released = release_checkpoint(raw, tmp_path / "released.pt")
    assert "effective_radius" not in load_checkpoint(released)
    manifest = load_model(released, measure_radius=True)[1]
    assert manifest.tile_exact is exact and manifest.receptive_field is None
