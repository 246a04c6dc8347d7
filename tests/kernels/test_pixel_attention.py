"""Triton pixel attention (interpreter) against its PyTorch reference: values, maps, gradients."""

from __future__ import annotations

import pytest
import torch
from kernel_testing import assert_close, leaf, reference_leaves, to_layout

from kernels import pixel_attention, pixel_attention_reference

# (channels, height, width, dtype, layout): every odd size, both dtypes and layouts, at a cost the
# interpreter affords (37x53 only at 3 channels; 96 takes the single-tile kernel, 130 the tiled one).
CASES = [
    (3, 37, 53, torch.float16, "nchw"),
    (3, 7, 13, torch.float32, "nhwc"),
    (3, 1, 1, torch.float16, "nhwc"),
    (96, 7, 13, torch.float16, "nhwc"),
    (96, 1, 1, torch.float32, "nchw"),
    (130, 7, 13, torch.float32, "nhwc"),
    (130, 1, 1, torch.float16, "nchw"),
]


def _inputs(c: int, h: int, w: int, dtype: torch.dtype, layout: str, batch: int = 2):
    g = torch.Generator().manual_seed(c * 1000 + h * 10 + w)
    x = to_layout(torch.randn(batch, c, h, w, generator=g), layout).to(dtype)
    weight = (torch.randn(c, c, 1, 1, generator=g) / c ** 0.5).to(dtype)
    bias = torch.randn(c, generator=g).to(dtype)
    return x, weight, bias


@pytest.mark.parametrize(("c", "h", "w", "dtype", "layout"), CASES)
def test_matches_reference_with_gradients(interpreter: None, c: int, h: int, w: int, dtype: torch.dtype,
                                          layout: str) -> None:
    inputs = [leaf(t) for t in _inputs(c, h, w, dtype, layout)]
    out, attn = pixel_attention(*inputs, return_map=True)
    assert out.dtype == dtype and attn.dtype == dtype
    if layout == "nhwc" and h * w > 1:
        assert out.is_contiguous(memory_format=torch.channels_last), "output must keep the input's layout"
    ref_inputs = reference_leaves(inputs)
    ref_out, ref_attn = pixel_attention_reference(*ref_inputs, return_map=True)
    assert_close(out, ref_out, dtype, "out")
    assert_close(attn, ref_attn, dtype, "map")

    g = torch.Generator().manual_seed(7)
    grad_out, grad_map = torch.randn(out.shape, generator=g), torch.randn(out.shape, generator=g)
    torch.autograd.backward((out, attn), (grad_out.to(dtype), grad_map.to(dtype)))
    torch.autograd.backward((ref_out, ref_attn), (grad_out.to(dtype).double(), grad_map.to(dtype).double()))
    for name, ours, ref in zip(("dx", "dweight", "dbias"), inputs, ref_inputs):
        assert ours.grad is not None and ours.grad.dtype == dtype
        assert_close(ours.grad, ref.grad, dtype, name)


def test_without_map_and_without_bias(interpreter: None) -> None:
    x, weight, _ = _inputs(5, 4, 6, torch.float32, "nchw")
    x, weight = leaf(x), leaf(weight)
    out = pixel_attention(x, weight, None)
    assert isinstance(out, torch.Tensor)
    ref_x, ref_w = reference_leaves([x, weight])
    ref = pixel_attention_reference(ref_x, ref_w, None)
    assert_close(out, ref, torch.float32, "out")
    out.sum().backward()
    ref.sum().backward()
    assert_close(x.grad, ref_x.grad, torch.float32, "dx")
    assert_close(weight.grad, ref_w.grad, torch.float32, "dweight")


def test_gradcheck_float64(interpreter: None) -> None:
    x, weight, bias = (leaf(t) for t in _inputs(3, 2, 3, torch.float64, "nchw", batch=1))
    assert torch.autograd.gradcheck(lambda *a: pixel_attention(*a, return_map=True), (x, weight, bias),
                                    fast_mode=True)


def test_strided_input_is_handled(interpreter: None) -> None:
    # A channel slice is neither NCHW- nor NHWC-contiguous: the wrapper must copy, not misread it.
    x, weight, bias = _inputs(4, 5, 5, torch.float32, "nchw")
    wide = torch.cat([x, x], dim=1)[:, 2:6]
    assert_close(pixel_attention(wide, weight, bias), pixel_attention_reference(wide.double(), weight.double(),
                                                                                 bias.double()), torch.float32)


@pytest.mark.parametrize("weight_shape", [(4, 3, 1, 1), (4, 4, 3, 3)])
def test_bad_weight_is_rejected(interpreter: None, weight_shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"weight must be \(4, 4, 1, 1\)"):
        pixel_attention(torch.randn(1, 4, 3, 3), torch.randn(weight_shape), None)


@pytest.mark.gpu
def test_cuda_matches_reference(cuda_triton_dtype: torch.dtype) -> None:
    dtype = cuda_triton_dtype
    for c in (32, 128, 192):
        x, weight, bias = (leaf(t.cuda()) for t in _inputs(c, 45, 80, dtype, "nhwc"))
        out, attn = pixel_attention(x, weight, bias, return_map=True)
        ref_inputs = reference_leaves([x, weight, bias])
        ref_out, ref_attn = pixel_attention_reference(*ref_inputs, return_map=True)
        assert_close(out, ref_out, dtype, "out")
        assert_close(attn, ref_attn, dtype, "map")
        out.sum().backward()
        ref_out.sum().backward()
        assert_close(x.grad, ref_inputs[0].grad, dtype, "dx")
