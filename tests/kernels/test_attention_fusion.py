"""Triton attention fusion (interpreter) against its PyTorch reference, including the in-kernel map."""

from __future__ import annotations

import pytest
import torch
from kernel_testing import assert_close, leaf, reference_leaves, to_layout

from kernels import (
    attention_fusion,
    attention_fusion_reference,
    attention_fusion_with_map,
    attention_fusion_with_map_reference,
)

# (channels, height, width, number of maps, dtype, layout). 130 channels take two output-channel
# blocks and five 32-channel K chunks; 96 takes three chunks.
CASES = [
    (3, 37, 53, 2, torch.float16, "nhwc"),
    (3, 1, 1, 4, torch.float32, "nchw"),
    (96, 7, 13, 3, torch.float16, "nchw"),
    (96, 1, 1, 2, torch.float32, "nhwc"),
    (130, 3, 5, 2, torch.float32, "nhwc"),
    (130, 1, 1, 2, torch.float16, "nchw"),
]


def _inputs(c: int, h: int, w: int, n_maps: int, dtype: torch.dtype, layout: str, batch: int = 2):
    g = torch.Generator().manual_seed(c * 1000 + h * 10 + w + n_maps)
    maps = [to_layout(torch.rand(batch, c, h, w, generator=g), layout).to(dtype) for _ in range(n_maps)]
    fuse_weight = (torch.randn(c, c * n_maps, 1, 1, generator=g) / (c * n_maps) ** 0.5).to(dtype)
    fuse_bias = torch.randn(c, generator=g).to(dtype)
    dw_weight = (torch.randn(c, 1, 3, 3, generator=g) / 3).to(dtype)
    pw_weight = (torch.randn(c, c, 1, 1, generator=g) / c ** 0.5).to(dtype)
    features = to_layout(torch.randn(batch, c, h, w, generator=g), layout).to(dtype)
    return maps, [fuse_weight, fuse_bias, dw_weight, pw_weight, features]


@pytest.mark.parametrize(("c", "h", "w", "n_maps", "dtype", "layout"), CASES)
def test_matches_reference_with_gradients(interpreter: None, c: int, h: int, w: int, n_maps: int,
                                          dtype: torch.dtype, layout: str) -> None:
    # One image at 37x53 and at 130 channels: the interpreter's cost grows with the program count.
    maps, rest = _inputs(c, h, w, n_maps, dtype, layout, batch=1 if h * w > 1000 or c > 128 else 2)
    inputs = [leaf(t) for t in [*maps, *rest]]
    out = attention_fusion(inputs[:n_maps], *inputs[n_maps:])
    assert out.dtype == dtype
    if layout == "nhwc" and h * w > 1:
        assert out.is_contiguous(memory_format=torch.channels_last)
    ref_inputs = reference_leaves(inputs)
    ref = attention_fusion_reference(ref_inputs[:n_maps], *ref_inputs[n_maps:])
    assert_close(out, ref, dtype, "out")

    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
    out.backward(grad)
    ref.backward(grad.double())
    names = [f"dmap{j}" for j in range(n_maps)] + ["dfuse_weight", "dfuse_bias", "ddw", "dpw", "dfeatures"]
    for name, ours, theirs in zip(names, inputs, ref_inputs):
        assert ours.grad is not None and ours.grad.dtype == dtype, name
        assert_close(ours.grad, theirs.grad, dtype, name)


@pytest.mark.parametrize(("c", "h", "w", "n_previous", "dtype", "layout"), [
    (3, 7, 13, 1, torch.float32, "nchw"),
    (96, 7, 13, 2, torch.float16, "nhwc"),
    (130, 1, 1, 1, torch.float32, "nchw"),     # wider than one tile: map and fusion run as two kernels
    (5, 4, 3, 0, torch.float32, "nhwc"),       # only the new map
])
def test_with_map_matches_reference(interpreter: None, c: int, h: int, w: int, n_previous: int,
                                    dtype: torch.dtype, layout: str) -> None:
    previous, rest = _inputs(c, h, w, n_previous + 1, dtype, layout)
    previous = previous[:n_previous]
    g = torch.Generator().manual_seed(11)
    map_weight = (torch.randn(c, c, 1, 1, generator=g) / c ** 0.5).to(dtype)
    map_bias = torch.randn(c, generator=g).to(dtype)
    inputs = [leaf(t) for t in [*previous, map_weight, map_bias, *rest]]
    out, new_map = attention_fusion_with_map(inputs[:n_previous], *inputs[n_previous:])
    ref_inputs = reference_leaves(inputs)
    ref_out, ref_map = attention_fusion_with_map_reference(ref_inputs[:n_previous], *ref_inputs[n_previous:])
    assert_close(out, ref_out, dtype, "out")
    assert_close(new_map, ref_map, dtype, "new map")

    grad_out = torch.randn(out.shape, generator=g).to(dtype)
    grad_map = torch.randn(out.shape, generator=g).to(dtype)
    torch.autograd.backward((out, new_map), (grad_out, grad_map))
    torch.autograd.backward((ref_out, ref_map), (grad_out.double(), grad_map.double()))
    for j, (ours, theirs) in enumerate(zip(inputs, ref_inputs)):
        assert_close(ours.grad, theirs.grad, dtype, f"grad of input {j}")


def test_gradcheck_float64(interpreter: None) -> None:
    # The with-map op runs both kernels and the whole fusion backward, plus the map's own terms.
    previous, rest = _inputs(2, 2, 3, 2, torch.float64, "nchw", batch=1)
    g = torch.Generator().manual_seed(5)
    inputs = tuple(leaf(t) for t in [previous[0], torch.randn(2, 2, 1, 1, generator=g, dtype=torch.float64),
                                     torch.randn(2, generator=g, dtype=torch.float64), *rest])
    assert torch.autograd.gradcheck(lambda *a: attention_fusion_with_map(a[:1], *a[1:]), inputs, fast_mode=True)


def test_mixed_map_layouts(interpreter: None) -> None:
    maps, rest = _inputs(4, 5, 6, 2, torch.float32, "nchw")
    maps[1] = maps[1].contiguous(memory_format=torch.channels_last)
    ref = attention_fusion_reference([m.double() for m in maps], *[t.double() for t in rest])
    assert_close(attention_fusion(maps, *rest), ref, torch.float32)


def test_mismatched_weight_is_rejected(interpreter: None) -> None:
    maps, (fuse_weight, fuse_bias, dw, pw, features) = _inputs(4, 3, 3, 2, torch.float32, "nchw")
    with pytest.raises(ValueError, match=r"fuse_weight must be \(4, 8, 1, 1\)"):
        attention_fusion(maps, fuse_weight[:, :6], fuse_bias, dw, pw, features)


@pytest.mark.gpu
def test_cuda_matches_reference(cuda_triton_dtype: torch.dtype) -> None:
    dtype = cuda_triton_dtype
    for c, n_maps in ((32, 2), (128, 4), (192, 3)):
        maps, rest = _inputs(c, 45, 80, n_maps, dtype, "nhwc")
        inputs = [leaf(t.cuda()) for t in [*maps, *rest]]
        out = attention_fusion(inputs[:n_maps], *inputs[n_maps:])
        ref_inputs = reference_leaves(inputs)
        ref = attention_fusion_reference(ref_inputs[:n_maps], *ref_inputs[n_maps:])
        assert_close(out, ref, dtype, "out")
        out.sum().backward()
        ref.sum().backward()
        assert_close(inputs[0].grad, ref_inputs[0].grad, dtype, "dmap0")
