"""The roofline projection and the edge-size search (meta device only: no arithmetic, no timing)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks.devices import PEAKS, DevicePeak
from benchmarks.roofline import OpCost, project_ms, total_macs, trace_ops
from benchmarks.sizing import BUDGETS_MS, depth_fit, recommend, size_row
from training.models import build
from training.models.complexity import count_macs

UNIT = DevicePeak("unit", "1 TFLOP/s, 1000 GB/s", fp16_tflops=1.0, bandwidth_gbs=1000.0, basis="test")


def test_op_cost_is_the_slower_of_compute_and_memory():
    compute_bound = OpCost("conv", flops=6 * 10**9, bytes=10**6)       # 6 GFLOP at 0.6 TFLOP/s = 10 ms
    memory_bound = OpCost("conv", flops=10**6, bytes=8 * 10**9)        # 8 GB at 800 GB/s = 10 ms
    elementwise = OpCost("sigmoid", flops=0, bytes=4 * 10**9)          # 4 GB at 800 GB/s = 5 ms
    assert project_ms([compute_bound], UNIT) == pytest.approx(10.0)
    assert project_ms([memory_bound], UNIT) == pytest.approx(10.0)
    assert project_ms([compute_bound, memory_bound, elementwise], UNIT, "unfused") == pytest.approx(25.0)
    assert project_ms([compute_bound, memory_bound, elementwise], UNIT, "fused") == pytest.approx(20.0)
    with pytest.raises(ValueError, match="schedule"):
        project_ms([], UNIT, "magic")


def test_trace_counts_the_same_macs_as_complexity():
    net = build("rdafnet-nano", num_blocks=1)
    ops = trace_ops(net, (1, 3, 32, 48))
    assert total_macs(ops) == count_macs(net, (1, 3, 32, 48))
    assert all(p.device.type == "cpu" for p in net.parameters())   # the caller's model is untouched


def test_views_move_no_bytes_and_convs_count_weights():
    class ReshapeConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x.reshape(1, 4, 16, 16))

    ops = trace_ops(ReshapeConv(), (1, 4, 256))     # the reshape is a view: not recorded
    assert [op.op for op in ops] == ["aten.convolution"]
    (conv,) = ops
    assert conv.flops == 2 * 8 * 4 * 9 * 16 * 16
    # fp16 bytes: input 4x16x16, weight 8x4x3x3, output 8x16x16
    assert conv.bytes == 2 * (4 * 256 + 8 * 4 * 9 + 8 * 256)


def test_projected_time_is_linear_in_block_count():
    fit = depth_fit(8, size=(64, 64))
    with torch.device("meta"):
        net = build("rdafnet-single", base_channels=8, num_blocks=5)
    ops = trace_ops(net, (1, 3, 64, 64))
    for schedule in ("fused", "unfused"):
        assert fit.time_ms(5, schedule) == pytest.approx(project_ms(ops, PEAKS["orin-nx-16gb"], schedule), rel=1e-9)
    assert fit.macs(5) == total_macs(ops)


def test_recommendation_fits_its_budget_and_has_enough_depth():
    search = [depth_fit(c) for c in (8, 12, 16)]
    budget = BUDGETS_MS["rdafnet-nano"]
    rec = recommend(search, budget, "fused")
    assert rec is not None and rec.num_blocks >= 4
    assert rec.projected_ms <= budget
    assert rec.direct_ms == pytest.approx(rec.projected_ms, rel=1e-9)
    # One more block at the chosen width no longer fits (or the width is at the 16-block cap).
    chosen = next(f for f in search if f.base_channels == rec.base_channels)
    assert rec.num_blocks == 16 or chosen.time_ms(rec.num_blocks + 1, "fused") > budget


def test_size_row_projects_every_device_and_orders_them():
    row = size_row("rdafnet-nano")
    assert row.params == 174_264
    assert row.macs["1280x720"] == count_macs(build("rdafnet-nano"), (1, 3, 720, 1280))
    ms = row.projected_ms["1280x720"]
    # Faster devices project lower times, and the fused schedule is never slower than unfused.
    assert ms["orin-nano-8gb/fused"] > ms["orin-nx-16gb/fused"] > ms["agx-orin-64gb/fused"] > ms["h100-sxm/fused"]
    assert all(ms[f"{k}/fused"] <= ms[f"{k}/unfused"] for k in ("orin-nx-16gb", "rtx-4090", "h100-sxm"))
