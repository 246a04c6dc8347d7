"""FP16 safety: overflowing layers are flagged, emulation shows the damage, float32 pins repair it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from export.fp16 import FP16_MAX, analyse_fp16, calibration_frames, flag_layers, psnr, run_recorded


class Overflowing(nn.Module):
    """``boost`` scales activations past 65504 (its weights fit float16); ``shrink`` brings them back."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 8, 3, padding=1)
        self.boost = nn.Conv2d(8, 8, 1)
        self.shrink = nn.Conv2d(8, 8, 1)
        self.tail = nn.Conv2d(8, 3, 3, padding=1)
        with torch.no_grad():
            self.boost.weight.fill_(6.0e4)
            self.boost.bias.zero_()
            self.shrink.weight.copy_(torch.eye(8).view(8, 8, 1, 1) * 1.0e-5)
            self.shrink.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.head(x))
        return x + 0.1 * self.tail(self.shrink(self.boost(y)))


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    return calibration_frames((32, 32), photos=("astronaut", "coffee"))


def test_calibration_frames_are_blurred_photos_in_unit_range():
    sharp = calibration_frames((48, 64), blur_length=1)
    blurred = calibration_frames((48, 64))
    assert sharp.shape == blurred.shape == (4, 3, 48, 64)
    assert 0.0 <= float(blurred.min()) and float(blurred.max()) <= 1.0
    # Motion blur removes high frequencies: the horizontal gradient energy drops.
    def energy(t: torch.Tensor) -> float:
        return float((t[..., 1:] - t[..., :-1]).abs().mean())
    assert energy(blurred) < 0.8 * energy(sharp)


def test_an_overflowing_layer_is_flagged_and_its_fp32_pin_recovers_the_psnr(frames):
    torch.manual_seed(0)
    report = analyse_fp16(Overflowing(), frames, value_range=(-1.0, 1.0))
    assert report.layers["boost"].max_output > FP16_MAX
    # boost overflows; shrink receives values float16 cannot hold: both stay in float32, nothing else.
    assert report.fp32_layers == ["boost", "shrink"]
    assert report.psnr_fp16 == -math.inf            # inf/NaN in the all-float16 output
    assert report.psnr_pinned >= 40.0 and report.ok
    text = report.format()
    assert "keep fp32: boost (Conv2d): output" in text and "overflows float16" in text


def test_emulation_rounds_every_value_to_float16_outside_pinned_layers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1)).eval()
    x = torch.rand(1, 3, 16, 16)
    exact, _ = run_recorded(net, x)
    emulated, _ = run_recorded(net, x, emulate_fp16=True)
    assert torch.equal(emulated, emulated.half().float())            # a float16 value, as an engine returns
    error = float((emulated - exact).abs().max())
    assert 0.0 < error < 2e-3                                         # float16 rounding, not a different result
    pinned, _ = run_recorded(net, x, emulate_fp16=True, keep_fp32=["0", "1", "2"])
    assert torch.equal(pinned, exact)                                 # every layer in float32: the float32 result


class Fragile(nn.Module):
    """No value near 65504, yet float16 ruins it: ``lift`` puts every channel at 200 +- 0.01 (float16's step
    there is 0.125) and ``norm`` then blows that rounding up to the channel's full range."""

    def __init__(self) -> None:
        super().__init__()
        self.lift = nn.Conv2d(3, 4, 1)
        self.norm = nn.InstanceNorm2d(4)
        self.head = nn.Conv2d(4, 3, 1)
        with torch.no_grad():
            self.lift.weight.fill_(0.01)
            self.lift.bias.fill_(200.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.05 * self.head(self.norm(self.lift(x)))


def test_precision_loss_without_overflow_is_found_by_group_and_pinned(frames):
    torch.manual_seed(0)
    report = analyse_fp16(Fragile(), frames, value_range=(-1.0, 1.0))
    assert report.overflow_layers == [] and report.psnr_fp16 < 40.0
    # Each of the two alone in float16 costs the same (the rounding of lift's output is what hurts): both pinned.
    assert [label for label, _ in report.precision_groups] == ["lift", "norm"]
    assert report.fp32_layers == ["lift", "norm"] and report.psnr_pinned >= 40.0
    assert "keep fp32: lift: float16 rounding costs too much here" in report.format()
    assert analyse_fp16(Fragile(), frames, value_range=(-1.0, 1.0), precision_groups=0).fp32_layers == []


def test_module_groups_split_the_largest_module_first():
    from export.fp16 import module_groups
    from training.models import build

    groups = module_groups(build("rdafnet-nano", num_blocks=4), count=12)
    assert [g.label for g in groups] == [
        "<model> (own ops)", "to_image", "trunk (own ops)", "trunk.shallow", "trunk.down", "trunk.up",
        "trunk.fuse_skip", "trunk.blocks (own ops)", "trunk.blocks.0", "trunk.blocks.1", "trunk.blocks.2",
        "trunk.blocks.3"]
    block = next(g for g in groups if g.name == "trunk.blocks.0")
    assert "trunk.blocks.0.convs.3" in block.layers and "trunk.blocks.1" not in block.layers


def test_large_softmax_logits_and_norm_inputs_are_flagged():
    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.InstanceNorm2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = 200.0 * x.flatten(2)
            attended = torch.softmax(logits, dim=-1).reshape(x.shape) * x
            return self.norm(500.0 * attended) + x

    _, stats = run_recorded(Attention(), torch.rand(1, 2, 8, 8))
    flagged = flag_layers(stats)
    assert flagged == ["", "norm"]
    assert any("softmax/exp logits up to" in f for f in stats[""].flags)
    assert any("normalisation input" in f and "variance overflows float16" in f for f in stats["norm"].flags)


def test_psnr_is_measured_on_clipped_unit_images():
    ref = torch.zeros(1, 3, 4, 4)
    assert psnr(ref, ref, (-1.0, 1.0)) == math.inf
    # 0.02 in [-1, 1] is 0.01 in [0, 1]: MSE 1e-4 -> 40 dB.
    assert psnr(ref, ref + 0.02, (-1.0, 1.0)) == pytest.approx(40.0, abs=1e-6)
    assert psnr(ref, ref + 5.0, (-1.0, 1.0)) == pytest.approx(psnr(ref, torch.ones_like(ref), (-1.0, 1.0)))
    assert psnr(ref, torch.full_like(ref, float("nan")), (-1.0, 1.0)) == -math.inf


def test_a_zoo_model_runs_through_the_analysis(frames):
    from export.onnx import reference_kernels
    from training.models import build

    torch.manual_seed(0)
    # norm="instance": the paper's block (the edge nano drops it), so the report must show the InstanceNorm op.
    net = build("rdafnet-nano", num_blocks=1, norm="instance").eval()
    with reference_kernels():
        report = analyse_fp16(net, frames, value_range=net.input_range)
    assert report.fp32_layers == [] and report.psnr_fp16 == report.psnr_pinned
    assert report.psnr_fp16 > 50.0
    block = set().union(*(layer.ops for name, layer in report.layers.items()
                          if name == "trunk.blocks.0" or name.startswith("trunk.blocks.0.")))
    assert block >= {"sigmoid", "instance_norm", "conv2d", "mul"}   # the norms are submodules of the block
