"""benchmarks.receptive_field on a small local network: probe, radius and tile sweep agree."""

from __future__ import annotations

import torch

from benchmarks.receptive_field import markdown, measure, tile_frame
from training.checkpoint import save_checkpoint
from training.models import build


def test_the_sweep_frame_holds_two_rows_and_three_columns_of_large_tiles():
    assert tile_frame(256) == (512, 768)                   # the sweep every earlier results file used
    assert tile_frame(1056) == (1584, 2112)


def test_a_measured_radius_bounds_what_the_tile_sweep_sees(tmp_path):
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "tiny.pt", build("rdafnet-nano", base_channels=4, num_blocks=1))
    result = measure(path, [0, 64], tile=128)
    assert result["probe_px"] >= 4 * result["effective_radius_px"] > 0
    assert result["support_px"] >= result["effective_radius_px"]
    assert result["tile_frame"] == [512, 768]
    no_overlap, wide = result["tile_sweep"]
    # Zero overlap: every tile border is a seam; 64 px (a 16-px margin) holds this net's reach.
    assert no_overlap["max"] > wide["max"] and wide["max"] <= 2, result["tile_sweep"]
    assert isinstance(result["cpu_flags"], list) and "CPU flags:" in markdown(result)
    assert "tile=128" in markdown(result)
