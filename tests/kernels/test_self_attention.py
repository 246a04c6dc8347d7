"""Triton flash attention (interpreter) against the PyTorch reference: values and gradients."""

from __future__ import annotations

import pytest
import torch
from kernel_testing import assert_close, leaf, reference_leaves

from kernels import self_attention, self_attention_reference


def _qkv(c: int, n: int, m: int, dtype: torch.dtype, layout: str, batch: int = 2, cv: int | None = None):
    g = torch.Generator().manual_seed(c * 100 + n + m)
    cv = c if cv is None else cv
    q, k = torch.randn(batch, c, n, generator=g), torch.randn(batch, c, m, generator=g)
    v = torch.randn(batch, cv, m, generator=g)
    if layout == "tokens-major":
        # (B, N, C) storage seen as (B, C, N): channels contiguous, as after a channels-last conv.
        q, k, v = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v))
    return [t.to(dtype) for t in (q, k, v)]


# (channels, queries, keys, dtype, layout, scale): the 7x13 and 1x1 token grids, queries != keys, the
# odd channel counts; MSAN's own scale is 1.
CASES = [
    (3, 91, 91, torch.float32, "channels-major", 1.0),
    (3, 1, 1, torch.float16, "tokens-major", 1.0),
    (96, 91, 70, torch.float16, "channels-major", 96 ** -0.5),
    (96, 1, 1, torch.float32, "tokens-major", 1.0),
    (130, 33, 91, torch.float32, "tokens-major", 130 ** -0.5),
    (130, 91, 1, torch.float16, "channels-major", 0.1),
]


@pytest.mark.parametrize(("c", "n", "m", "dtype", "layout", "scale"), CASES)
def test_matches_reference_with_gradients(interpreter: None, c: int, n: int, m: int, dtype: torch.dtype,
                                          layout: str, scale: float) -> None:
    inputs = [leaf(t) for t in _qkv(c, n, m, dtype, layout)]
    out = self_attention(*inputs, scale=scale)
    assert out.shape == (2, c, n) and out.dtype == dtype
    ref_inputs = reference_leaves(inputs)
    ref = self_attention_reference(*ref_inputs, scale=scale)
    assert_close(out, ref, dtype, "out")
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    out.backward(grad)
    ref.backward(grad.double())
    # With one key the softmax is constant and dq = dk = 0 exactly; rounding leaves residues of the
    # size of the terms that cancel, which dv's magnitude bounds.
    scale = max(float(t.grad.abs().max()) for t in ref_inputs if t.grad is not None)
    for name, ours, theirs in zip(("dq", "dk", "dv"), inputs, ref_inputs):
        assert_close(ours.grad, theirs.grad, dtype, name, scale=scale)


@pytest.mark.parametrize(("n", "m"), [(1961, 91), (1, 1961)])
def test_long_sequences(interpreter: None, n: int, m: int) -> None:
    # 37x53 = 1961 tokens: 31 query blocks with a masked tail, or one query streaming 31 key blocks
    # whose last one is masked. (All 1961 x 1961 would take the interpreter ~10 s.)
    q, k, v = _qkv(3, n, m, torch.float16, "channels-major", batch=1)
    assert_close(self_attention(q, k, v), self_attention_reference(q.double(), k.double(), v.double()),
                 torch.float16, "out")


def test_value_width_differs_from_query_width(interpreter: None) -> None:
    inputs = [leaf(t) for t in _qkv(16, 20, 24, torch.float32, "channels-major", cv=40)]
    out = self_attention(*inputs)
    ref_inputs = reference_leaves(inputs)
    ref = self_attention_reference(*ref_inputs)
    assert_close(out, ref, torch.float32)
    out.sum().backward()
    ref.sum().backward()
    for ours, theirs in zip(inputs, ref_inputs):
        assert_close(ours.grad, theirs.grad, torch.float32)


def test_large_logits_stay_finite(interpreter: None) -> None:
    # MSAN has no 1/sqrt(C): logits of several hundred must not overflow the online softmax.
    q, k, v = _qkv(64, 50, 50, torch.float32, "channels-major", batch=1)
    q, k = q * 4, k * 4
    out = self_attention(q, k, v)
    assert torch.isfinite(out).all()
    assert_close(out, self_attention_reference(q.double(), k.double(), v.double()), torch.float32)


def test_gradcheck_float64(interpreter: None) -> None:
    inputs = tuple(leaf(t) for t in _qkv(3, 5, 7, torch.float64, "channels-major", batch=1))
    assert torch.autograd.gradcheck(lambda *a: self_attention(*a, scale=0.7), inputs, fast_mode=True)


def test_too_many_channels_for_triton(interpreter: None) -> None:
    q, k, v = _qkv(257, 4, 4, torch.float32, "channels-major", batch=1)
    with pytest.raises(RuntimeError, match="up to 256"):
        self_attention(q, k, v)


def test_shape_mismatch_is_rejected(interpreter: None) -> None:
    q, k, v = _qkv(4, 6, 6, torch.float32, "channels-major")
    with pytest.raises(ValueError, match=r"need q \(B, C, N\)"):
        self_attention(q, k[:, :3], v)


@pytest.mark.gpu
def test_cuda_matches_reference(cuda_triton_dtype: torch.dtype) -> None:
    dtype = cuda_triton_dtype
    for c, n in ((32, 1000), (128, 3600), (256, 777)):
        inputs = [leaf(t.cuda()) for t in _qkv(c, n, n, dtype, "channels-major")]
        out = self_attention(*inputs, scale=c ** -0.5)
        ref_inputs = reference_leaves(inputs)
        ref = self_attention_reference(*ref_inputs, scale=c ** -0.5)
        assert_close(out, ref, dtype, "out")
        out.sum().backward()
        ref.sum().backward()
        for ours, theirs in zip(inputs, ref_inputs):
            assert_close(ours.grad, theirs.grad, dtype, "grad")
