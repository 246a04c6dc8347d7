"""MSAN against the authors' code: exact sizes, MACs, and their outputs under the fixture's weights."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tests.training.official_weights import golden, official_param_count, official_shapes, official_state_dict
from training.models import build, forward_padded, from_official, spec
from training.models.complexity import count_macs, count_parameters
from training.models.msan import MSAN, EncoderDecoder, GroupedConvSelfAttention, convert_official_state_dict

TINY = {"width": 4, "num_blocks": 1}
# The package re-exports the op under the submodule's own name, so fetch the module itself.
self_attention_module = importlib.import_module("kernels.self_attention")


def meta_official_layout() -> dict[str, torch.Tensor]:
    """The authors' keys and shapes with no data: enough for everything the converter checks."""
    return {k: torch.empty(s, device="meta") for k, s in official_shapes("msan").items()}


@pytest.fixture(scope="module")
def official_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    """The fixture weights saved and reloaded the way the authors ship MSAN.pth: a plain state_dict."""
    path = tmp_path_factory.mktemp("msan") / "MSAN.pth"
    torch.save(official_state_dict("msan"), path)
    return torch.load(path, map_location="cpu", weights_only=True)


def test_paper_configuration_has_the_authors_parameter_counts() -> None:
    with torch.device("meta"):
        net = MSAN()
        attention = GroupedConvSelfAttention(128)
    assert count_parameters(net) == 8_924_720 == official_param_count("msan")
    assert count_parameters(attention) == 52_993
    assert count_parameters(net.stages[0]) == 2_230_532
    assert [count_parameters(s) for s in net.stages[1:]] == [2_231_396] * 3


def test_macs_at_256_count_convs_transposed_convs_and_attention_matmuls() -> None:
    with torch.device("meta"):
        net = MSAN()
    assert count_macs(net, (1, 3, 256, 256)) == pytest.approx(105.3e9, rel=0.02)

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 3, 256, 256, device="meta"))
    by_op = counter.get_flop_counts()["Global"]
    tokens, channels = (256 // 8) ** 2, 128
    # Two (N x N x C) matmuls per stage; they grow with N^2, which is why 720p is costly.
    assert by_op[torch.ops.aten.bmm] // 2 == 4 * 2 * tokens * tokens * channels

    # Transposed convs are counted at full cost (C_in * C_out * k^2 per input pixel).
    with torch.device("meta"):
        up = nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1)
    assert count_macs(up, (1, 128, 64, 64)) == 128 * 64 * 16 * 64 * 64


def test_official_weights_reproduce_the_authors_outputs(official_checkpoint: dict[str, torch.Tensor]) -> None:
    net = from_official("msan", official_checkpoint).eval()
    x = torch.from_numpy(golden("input"))
    with torch.no_grad():
        residuals = net.residuals(x)
        images = net.forward_supervised(x)
        final = net(x)
    for name, ours in zip(("msan_d4", "msan_d3", "msan_d2", "msan_d1"), residuals):
        expected = golden(name)
        assert ours.shape == expected.shape
        assert np.abs(ours.numpy() - expected).max() < 1e-4, name
    assert len(images) == 4
    torch.testing.assert_close(images[-1], residuals[0] + x)
    torch.testing.assert_close(images[0], residuals[-1] + x)
    torch.testing.assert_close(final, images[-1])


def test_converter_maps_official_names_onto_readable_ones(official_checkpoint: dict[str, torch.Tensor]) -> None:
    ours = convert_official_state_dict(official_checkpoint)
    assert len(ours) == len(official_checkpoint) == 412
    assert ours["stages.3.attention.gamma"] is official_checkpoint["edcoder4.sa.gamma"]
    assert ours["stages.1.attention.downsample.weight"] is official_checkpoint["edcoder2.sa.gconv.weight"]
    assert ours["stages.1.up1.weight"] is official_checkpoint["edcoder2.layer7.weight"]
    assert ours["stages.0.bottleneck.3.conv2.bias"] is official_checkpoint["edcoder1.layer6.3.conv2.bias"]
    assert ours["stages.2.tail.weight"] is official_checkpoint["edcoder3.layer11.weight"]


@pytest.mark.parametrize("corrupt, message", [
    (lambda sd: sd.update({"edcoder1.layer12.weight": torch.empty(3, device="meta")}), "official MSAN layout"),
    (lambda sd: sd.update({"edcoder1.sa.softmax.weight": torch.empty(3, device="meta")}), "attention"),
    (lambda sd: sd.update({"edcoder1.layer2.0.conv3.weight": torch.empty(3, device="meta")}), "ResBlock"),
    (lambda sd: sd.update({"classifier.weight": torch.empty(3, device="meta")}), "official MSAN layout"),
    (lambda sd: sd.pop("edcoder3.sa.degconv.bias"), "missing"),
    (lambda sd: sd.pop("edcoder2.layer8.3.conv1.weight"), "missing"),
    (lambda sd: sd.update({"edcoder2.layer1.weight": torch.empty(32, 3, 3, 3, device="meta")}), "shape"),
    (lambda sd: [sd.pop(k) for k in list(sd) if k.startswith("edcoder2.")], "edcoder1..edcoderN"),
])
def test_converter_rejects_checkpoints_of_another_layout(corrupt, message: str) -> None:
    state_dict = meta_official_layout()
    corrupt(state_dict)
    with pytest.raises(ValueError, match=message):
        convert_official_state_dict(state_dict)


def test_from_official_rejects_our_own_layout() -> None:
    with torch.device("meta"):
        ours = MSAN(**TINY).state_dict()
    with pytest.raises(ValueError, match="official MSAN layout"):
        from_official("msan", ours, **TINY)


@pytest.mark.parametrize("size", [(40, 56), (24, 8)])
def test_multiples_of_8_with_odd_attention_grids_work(size: tuple[int, int]) -> None:
    # 40x56 puts a 5x7 grid of tokens into the attention; 24x8 a 3x1 one.
    net = build("msan", **TINY).eval()
    x = torch.rand(2, 3, *size) - 0.5
    with torch.no_grad():
        images = net.forward_supervised(x)
    assert [tuple(y.shape) for y in images] == [(2, 3, *size)] * 4


@pytest.mark.parametrize("side", [4, 12, 20, 36])
def test_sides_that_are_not_multiples_of_8_cannot_line_up(side: int) -> None:
    # Three exact halvings are undone by x2 transposed convs; a side of 4 * odd already breaks the third.
    stage = EncoderDecoder(3, width=4, num_blocks=0)
    with pytest.raises(RuntimeError):
        stage(torch.zeros(1, 3, side, 16))
    assert MSAN.pad_multiple == 8
    with pytest.raises(ValueError, match="multiples of 8"):
        MSAN(**TINY)(torch.zeros(1, 3, side, 16))


def test_any_size_runs_through_forward_padded() -> None:
    net = MSAN(**TINY).eval()
    x = torch.rand(1, 3, 37, 45) - 0.5
    with torch.no_grad():
        y = forward_padded(net, x, net.pad_multiple)
    assert y.shape == x.shape


def test_attention_runs_through_the_kernel_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[int, ...], float]] = []
    reference = self_attention_module.self_attention_reference

    def spy(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        calls.append((tuple(q.shape), scale))
        return reference(q, k, v, scale)

    monkeypatch.setenv("DEBLUR_KERNELS", "reference")
    monkeypatch.setattr(self_attention_module, "self_attention_reference", spy)
    net = MSAN(**TINY).eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 48))
    # One call per stage, (B, C, N) with C = 4 * width and N = (H/8)(W/8), and no 1/sqrt(C) scaling.
    assert calls == [((1, 16, 4 * 6), 1.0)] * 4


def test_attention_is_the_identity_until_gamma_learns() -> None:
    block = GroupedConvSelfAttention(8)
    assert block.gamma.item() == 0.0
    x = torch.randn(1, 8, 16, 16)
    torch.testing.assert_close(block(x), x)
    with torch.no_grad():
        block.gamma.fill_(0.5)
    assert (block(x) - x).abs().max() > 1e-3


def test_registry_entry_and_conventions() -> None:
    entry = spec("msan")
    assert entry.paper == "MSAN (002)"
    assert entry.official_converter is convert_official_state_dict
    net = build("msan", num_stages=2, num_blocks=[1, 2], width=4)
    assert isinstance(net, MSAN)
    assert (net.architecture, net.input_range, net.pad_multiple) == ("msan", (-0.5, 0.5), 8)
    assert (net.model_name, net.model_kwargs) == ("msan", {"num_stages": 2, "num_blocks": [1, 2], "width": 4})
    assert [len(s.enc1) for s in net.stages] == [1, 2]
    assert [s.head.in_channels for s in net.stages] == [3, 6]


@pytest.mark.parametrize("kwargs", [{"num_stages": 0}, {"num_blocks": [4, 4]}, {"num_blocks": -1}, {"width": 0}])
def test_constructor_rejects_impossible_configurations(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        MSAN(**kwargs)
