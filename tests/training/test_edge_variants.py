"""Edge RDAFNets without frame statistics: a tile computes what the whole frame computes."""

from __future__ import annotations

import pytest
import torch

from training.checkpoint import load_model, save_checkpoint
from training.models import build, forward_padded
from training.models.complexity import count_macs, count_parameters
from training.models.rdafnet import NORMS, RDAFNet, RDAFUNet


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


# --- the U-Net edge variant -------------------------------------------------------------------------

def _tiny_unet() -> RDAFUNet:
    torch.manual_seed(0)
    return RDAFUNet(8, (8, 16, 32, 64), (1, 1, 1), 1, (1, 1, 1)).eval()


def _support_along_width(model: torch.nn.Module, width: int = 1536, height: int = 32) -> int:
    """Columns on each side of the centre with a non-zero gradient for the centre output pixel."""
    x = torch.randn(1, 3, height, width, requires_grad=True)
    model(x)[0, :, height // 2, width // 2].sum().backward()
    cols = torch.nonzero(x.grad.abs().sum((0, 1, 2)) > 0)
    return int(max(width // 2 - cols.min(), cols.max() - width // 2))


def test_unet_keeps_shape_and_range_and_refuses_what_its_four_levels_cannot_take():
    net = _tiny_unet()
    x = torch.rand(2, 3, 32, 80) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and float(y.abs().max()) <= 1.0 and not torch.equal(y, x)
    assert net.pad_multiple == 16
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.zeros(1, 3, 40, 48))
    with pytest.raises(ValueError, match="at least 32"):
        net(torch.zeros(1, 3, 16, 48))
    with torch.no_grad():
        assert forward_padded(net, torch.zeros(1, 3, 37, 51), net.pad_multiple).shape == (1, 3, 37, 51)


def test_unet_configuration_errors_are_clear():
    with pytest.raises(ValueError, match="need 4 widths"):
        RDAFUNet(8, (8, 16, 32), (1, 1), 1, (1, 1))
    with pytest.raises(ValueError, match="middle >= 1"):
        RDAFUNet(8, (8, 16, 32, 64), (1, 1, 1), 0, (1, 1, 1))
    with pytest.raises(ValueError, match="norm must be one of"):
        RDAFUNet(norm="batch")


def test_unet_nano_stays_inside_the_edge_budget():
    net = build("rdafnet-unet-nano")
    assert count_parameters(net) == 2_393_328
    macs = count_macs(net, (1, 3, 720, 1280))
    assert 40e9 < macs <= 50e9, macs        # issue 11: <= 50 GMACs per 1280x720 frame
    assert all(w % 16 == 0 for w in (16, 32, 64, 128))


@pytest.mark.parametrize(("offset", "exact"), [(48, True), (8, False)])
def test_unet_tiles_on_the_16_pixel_grid_equal_the_whole_frame(offset, exact):
    net = _tiny_unet()
    support = _support_along_width(net)
    assert 64 < support < 700, support
    length = -(-(2 * support + 96) // 16) * 16                  # the tile: a multiple of 16 wide
    x = torch.rand(1, 3, 32, -(-(offset + length + 16) // 16) * 16) * 2 - 1
    with torch.no_grad():
        whole = net(x)
        tile = net(x[..., offset:offset + length])
    # Columns farther than the support from both tile borders cannot see them.
    interior = slice(support + 1, length - support - 1)
    diff = (whole[..., offset:offset + length][..., interior] - tile[..., interior]).abs().max().item()
    if exact:
        assert diff < 1e-5, f"tile at x={offset} differs by {diff}"
    else:       # off the grid the strided layers sample other pixels: no margin makes that exact
        assert diff > 1e-4, f"tile at x={offset} unexpectedly matches ({diff})"


def test_unet_checkpoint_round_trip_keeps_its_layout(tmp_path):
    torch.manual_seed(0)
    model = build("rdafnet-unet-nano", widths=(16, 32, 48, 64), middle=1).eval()
    path = save_checkpoint(tmp_path / "unet.pt", model)
    again, manifest = load_model(path)
    assert isinstance(again, RDAFUNet) and manifest.pad_multiple == 16 and manifest.tile_exact is True
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
