"""benchmarks/kernels.py: its traffic/FLOP arithmetic, and its refusal to run without a GPU."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

bench = importlib.import_module("benchmarks.kernels")

# One 1x128x360x640 fp16 tensor (RDAFNet's 720p block input): perf-anchors.md §2 calls it T = 59.0 MB.
T = 128 * 360 * 640 * 2


def test_pixel_attention_cost_matches_the_roofline_notes() -> None:
    cost = bench.pixel_attention_cost(1, 128, 360, 640, return_map=False)
    assert cost.min_bytes == 2 * T == 117_964_800           # perf-anchors: fully fused PA = 2T = 118 MB
    assert cost.flops == 7_549_747_200                       # 2 * 128 * 128 * 230,400 = 7.55 GFLOP
    assert bench.pixel_attention_cost(1, 128, 360, 640, return_map=True).min_bytes == 3 * T


def test_fusion_costs() -> None:
    fusion = bench.attention_fusion_cost(1, 128, 360, 640, maps=4)
    assert fusion.min_bytes == 6 * T                         # 4 maps + features in, out once: (k + 2)T
    assert fusion.flops == 230_400 * (2 * 4 * 128 * 128 + 2 * 9 * 128 + 2 * 128 * 128)
    with_map = bench.attention_fusion_with_map_cost(1, 128, 360, 640, previous=3)
    assert with_map.min_bytes == fusion.min_bytes
    assert with_map.flops == fusion.flops + 2 * 128 * 128 * 230_400


def test_attention_cost_at_msan_720p() -> None:
    cost = bench.self_attention_cost(1, 128, 14_400)
    assert cost.flops == 4 * 14_400 ** 2 * 128 == 106_168_320_000   # perf-anchors: 0.11 TFLOP
    assert cost.min_bytes == 4 * 128 * 14_400 * 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_refuses_without_cuda(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert bench.main(["--out", str(tmp_path / "k.json")]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "k.json").exists()
