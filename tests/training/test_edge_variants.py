"""Edge RDAFNets without frame statistics: a tile computes what the whole frame computes."""

from __future__ import annotations

import pytest
import torch

from training.checkpoint import load_model, save_checkpoint
from training.models import build
from training.models.rdafnet import NORMS, RDAFNet


def _receptive_radius(model: torch.nn.Module, size: int = 192) -> int:
    """Half-width of the input region one output pixel depends on (non-zero gradient)."""
    x = torch.randn(1, 3, size, size, requires_grad=True)
    model(x)[0, :, size // 2, size // 2].sum().backward()
    rows = torch.nonzero(x.grad.abs().sum((0, 1, 3)) > 0)
    return int(max(size // 2 - rows.min(), rows.max() - size // 2))


@pytest.mark.parametrize("norm", ["layer", "none"])
def test_a_tile_with_enough_margin_equals_the_whole_frame(norm):
    torch.manual_seed(0)
    model = build("rdafnet-nano", norm=norm).eval()
    radius = _receptive_radius(model)
    assert radius < 96, f"{norm}: receptive radius {radius} px"
    x = torch.rand(1, 3, 224, 320) * 2 - 1
    with torch.no_grad():
        whole = model(x)
        # A 224x192 tile at the left edge; pixels farther than the radius from its right edge are interior.
        tile = model(x[..., :, :192])
    interior = 192 - radius - 2
    assert interior > 64
    diff = (whole[..., :interior] - tile[..., :interior]).abs().max().item()
    assert diff < 1e-5, f"{norm}: tile differs from whole frame by {diff}"


def test_instance_norm_tiles_differ_from_the_whole_frame():
    # The paper's InstanceNorm normalises each tile by its own statistics: no margin makes it exact.
    torch.manual_seed(0)
    model = build("rdafnet-nano", norm="instance").eval()
    x = torch.rand(1, 3, 224, 320) * 2 - 1
    x[..., 160:] *= 0.2   # the right part of the frame has other statistics than the left tile
    with torch.no_grad():
        whole, tile = model(x), model(x[..., :, :192])
    assert (whole[..., :64] - tile[..., :64]).abs().max().item() > 1e-3


def test_norm_is_recorded_and_rebuilt_from_checkpoints(tmp_path):
    model = build("rdafnet-nano", norm="none")
    assert model.model_kwargs["norm"] == "none"
    path = save_checkpoint(tmp_path / "nano.pt", model)
    again, _ = load_model(path)
    assert again.norm == "none"


def test_checkpoints_from_before_the_norm_option_rebuild_instance_norm(tmp_path):
    model = build("rdafnet-nano", norm="instance")
    model.model_kwargs = {"base_channels": 12, "num_blocks": 5}   # what such a checkpoint recorded
    path = save_checkpoint(tmp_path / "old.pt", model)
    again, _ = load_model(path)
    assert again.norm == "instance"


def test_layer_norm_adds_affine_parameters_only():
    base = sum(p.numel() for p in RDAFNet(12, 5, norm="none").parameters())
    layer = sum(p.numel() for p in RDAFNet(12, 5, norm="layer").parameters())
    # 5 blocks x 4 norms x (weight + bias) x 24 channels.
    assert layer - base == 5 * 4 * 2 * 24
    assert sum(p.numel() for p in RDAFNet(12, 5, norm="instance").parameters()) == base


def test_unknown_norm_is_refused():
    with pytest.raises(ValueError, match="norm must be one of"):
        RDAFNet(8, 2, norm="batch")
    assert NORMS == ("instance", "layer", "none")
