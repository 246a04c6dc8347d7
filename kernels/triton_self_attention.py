"""Triton flash attention for MSAN's layout: ``out = V · softmax(scale · QᵀK)ᵀ``, tokens on the last axis.

q (B, D, N), k (B, D, M), v (B, Dv, M) -> out (B, Dv, N). In the usual row-major notation this is
softmax(Q Kᵀ) V with Q = qᵀ, K = kᵀ, V = vᵀ; the kernels read the (B, C, N) tensors through their
strides, so nothing is transposed in memory.

- Forward (FlashAttention-2 schedule): a program owns BLOCK_M queries and streams over keys in
  blocks of BLOCK_N with an online softmax (running max and sum, ``exp2`` with log2(e) folded into
  the scale). Memory is O((N + M) · C); the N x M matrix never exists. It also stores the per-query
  log-sum-exp (fp32, B x N) for the backward. The key tail is masked, so N and M need not be
  multiples of the block (MSAN's 720p token count 14,400 is 112.5 x 128).
- Backward: ``delta = rowsum(dO · O)`` in PyTorch (one fused reduction), then two Triton kernels
  that recompute the probabilities block by block from the saved log-sum-exp: one owns a key block
  and accumulates dK and dV over all queries, the other owns a query block and accumulates dQ. No
  atomics, so gradients are deterministic.

Registers per thread and shared memory per program, measured by ``python -m kernels.resource_usage``
(triton 3.9.0, bundled ptxas 12.9; fp16, C=128, N=14,400; no spills):

==========================================  =====  ===================  ===================
kernel (config)                             warps  sm_87 regs / smem    sm_90 regs / smem
==========================================  =====  ===================  ===================
_attention_fwd_kernel M=64, N=32              4    177 / 36,864 B       128 / 49,152 B
_attention_bwd_dkdv_kernel M=32, N=32         4    168 / 34,816 B       200 / 34,816 B
_attention_bwd_dq_kernel M=32, N=32           4    242 / 32,768 B       250 / 32,768 B
==========================================  =====  ===================  ===================

Head dims (channel counts) up to 256 are supported; the tile holds all channels of a token.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import triton
import triton.language as tl

from . import triton_tiles as tiles
from .triton_common import (
    KERNEL_DTYPES,
    LAUNCH_OPTIONS,
    TRITON_TYPE,
    KernelSpec,
    Pointer,
    accumulator,
    block_size,
    compute_dtype,
    dot_precision,
    launchable,
)

MAX_CHANNELS = 256
LOG2E = 1.4426950408889634


@triton.jit
def _attention_fwd_kernel(
    q_ptr, k_ptr, v_ptr,
    n_queries, n_keys, qk_channels, v_channels, qk_scale,
    stride_qb, stride_qc, stride_qn,
    stride_kb, stride_kc, stride_kn,
    stride_vb, stride_vc, stride_vn,
    stride_ob, stride_oc, stride_on,
    out_ptr, lse_ptr,
    WRITE_LSE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, DOT_PRECISION: tl.constexpr, ACC: tl.constexpr,
):
    batch = tl.program_id(1).to(tl.int64)
    offs_m, mask_m = tiles.block_range(tl.program_id(0), n_queries, BLOCK_M)
    offs_d, mask_d = tiles.block_range(0, qk_channels, BLOCK_D)
    offs_dv, mask_dv = tiles.block_range(0, v_channels, BLOCK_DV)
    # qk_scale = scale * log2(e): the softmax runs in base 2 (exp2 is the hardware instruction).
    q = tiles.load_2d(q_ptr + batch * stride_qb, offs_m, stride_qn, mask_m, offs_d, stride_qc, mask_d)
    k_base = k_ptr + batch * stride_kb + offs_d[:, None] * stride_kc
    v_base = v_ptr + batch * stride_vb + offs_dv[None, :] * stride_vc
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=ACC)
    l_i = tl.zeros([BLOCK_M], dtype=ACC)
    acc = tl.zeros([BLOCK_M, BLOCK_DV], dtype=ACC)
    for n0 in range(0, n_keys, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask_n = offs_n < n_keys
        k = tl.load(k_base + offs_n[None, :] * stride_kn, mask=mask_d[:, None] & mask_n[None, :], other=0.0)
        scores = tl.dot(q, k, input_precision=DOT_PRECISION, out_dtype=ACC) * qk_scale
        scores = tl.where(mask_n[None, :], scores, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(scores, axis=1))
        p = tl.exp2(scores - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(v_base + offs_n[:, None] * stride_vn, mask=mask_n[:, None] & mask_dv[None, :], other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION, out_dtype=ACC)
        m_i = m_new
    acc = acc / l_i[:, None]
    tiles.store_2d(out_ptr + batch * stride_ob, acc, offs_m, stride_on, mask_m, offs_dv, stride_oc, mask_dv)
    if WRITE_LSE:
        tl.store(lse_ptr + batch * n_queries + offs_m, m_i + tl.log2(l_i), mask=mask_m)


@triton.jit
def _attention_bwd_dkdv_kernel(
    q_ptr, k_ptr, v_ptr, do_ptr, lse_ptr, delta_ptr,
    n_queries, n_keys, qk_channels, v_channels, qk_scale, scale,
    stride_qb, stride_qc, stride_qn,
    stride_kb, stride_kc, stride_kn,
    stride_vb, stride_vc, stride_vn,
    stride_ob, stride_oc, stride_on,
    dk_ptr, dv_ptr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, DOT_PRECISION: tl.constexpr, ACC: tl.constexpr,
):
    # One program owns BLOCK_N keys and sweeps every query block: the transposed (key-major) form.
    batch = tl.program_id(1).to(tl.int64)
    offs_n, mask_n = tiles.block_range(tl.program_id(0), n_keys, BLOCK_N)
    offs_d, mask_d = tiles.block_range(0, qk_channels, BLOCK_D)
    offs_dv, mask_dv = tiles.block_range(0, v_channels, BLOCK_DV)
    k = tiles.load_2d(k_ptr + batch * stride_kb, offs_n, stride_kn, mask_n, offs_d, stride_kc, mask_d)
    v = tiles.load_2d(v_ptr + batch * stride_vb, offs_n, stride_vn, mask_n, offs_dv, stride_vc, mask_dv)
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=ACC)
    dv = tl.zeros([BLOCK_N, BLOCK_DV], dtype=ACC)
    q_base = q_ptr + batch * stride_qb + offs_d[:, None] * stride_qc
    do_base = do_ptr + batch * stride_ob + offs_dv[:, None] * stride_oc
    for m0 in range(0, n_queries, BLOCK_M):
        offs_m = m0 + tl.arange(0, BLOCK_M)
        mask_m = offs_m < n_queries
        q_t = tl.load(q_base + offs_m[None, :] * stride_qn, mask=mask_d[:, None] & mask_m[None, :], other=0.0)
        do_t = tl.load(do_base + offs_m[None, :] * stride_on, mask=mask_dv[:, None] & mask_m[None, :], other=0.0)
        # Padded queries get lse = +inf, so their probabilities are exactly zero.
        lse = tl.load(lse_ptr + batch * n_queries + offs_m, mask=mask_m, other=float("inf"))
        delta = tl.load(delta_ptr + batch * n_queries + offs_m, mask=mask_m, other=0.0)
        scores_t = tl.dot(k, q_t, input_precision=DOT_PRECISION, out_dtype=ACC) * qk_scale        # [N, M]
        p_t = tl.exp2(scores_t - lse[None, :])
        dv += tl.dot(p_t.to(do_t.dtype), tl.trans(do_t), input_precision=DOT_PRECISION, out_dtype=ACC)
        dp_t = tl.dot(v, do_t, input_precision=DOT_PRECISION, out_dtype=ACC)                      # [N, M]
        ds_t = p_t * (dp_t - delta[None, :])
        dk += tl.dot(ds_t.to(q_t.dtype), tl.trans(q_t), input_precision=DOT_PRECISION, out_dtype=ACC)
    tiles.store_2d(dk_ptr + batch * stride_kb, dk * scale, offs_n, stride_kn, mask_n, offs_d, stride_kc, mask_d)
    tiles.store_2d(dv_ptr + batch * stride_vb, dv, offs_n, stride_vn, mask_n, offs_dv, stride_vc, mask_dv)


@triton.jit
def _attention_bwd_dq_kernel(
    q_ptr, k_ptr, v_ptr, do_ptr, lse_ptr, delta_ptr,
    n_queries, n_keys, qk_channels, v_channels, qk_scale, scale,
    stride_qb, stride_qc, stride_qn,
    stride_kb, stride_kc, stride_kn,
    stride_vb, stride_vc, stride_vn,
    stride_ob, stride_oc, stride_on,
    dq_ptr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, DOT_PRECISION: tl.constexpr, ACC: tl.constexpr,
):
    batch = tl.program_id(1).to(tl.int64)
    offs_m, mask_m = tiles.block_range(tl.program_id(0), n_queries, BLOCK_M)
    offs_d, mask_d = tiles.block_range(0, qk_channels, BLOCK_D)
    offs_dv, mask_dv = tiles.block_range(0, v_channels, BLOCK_DV)
    q = tiles.load_2d(q_ptr + batch * stride_qb, offs_m, stride_qn, mask_m, offs_d, stride_qc, mask_d)
    do = tiles.load_2d(do_ptr + batch * stride_ob, offs_m, stride_on, mask_m, offs_dv, stride_oc, mask_dv)
    lse = tl.load(lse_ptr + batch * n_queries + offs_m, mask=mask_m, other=float("inf"))
    delta = tl.load(delta_ptr + batch * n_queries + offs_m, mask=mask_m, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=ACC)
    k_base = k_ptr + batch * stride_kb + offs_d[:, None] * stride_kc
    v_base = v_ptr + batch * stride_vb + offs_dv[:, None] * stride_vc
    for n0 in range(0, n_keys, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask_n = offs_n < n_keys
        k_t = tl.load(k_base + offs_n[None, :] * stride_kn, mask=mask_d[:, None] & mask_n[None, :], other=0.0)
        v_t = tl.load(v_base + offs_n[None, :] * stride_vn, mask=mask_dv[:, None] & mask_n[None, :], other=0.0)
        scores = tl.dot(q, k_t, input_precision=DOT_PRECISION, out_dtype=ACC) * qk_scale            # [M, N]
        p = tl.exp2(scores - lse[:, None])
        p = tl.where(mask_n[None, :], p, 0.0)
        dp = tl.dot(do, v_t, input_precision=DOT_PRECISION, out_dtype=ACC)                          # [M, N]
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k_t.dtype), tl.trans(k_t), input_precision=DOT_PRECISION, out_dtype=ACC)
    tiles.store_2d(dq_ptr + batch * stride_qb, dq * scale, offs_m, stride_qn, mask_m, offs_d, stride_qc, mask_d)


def _config(qk_channels: int, v_channels: int) -> dict[str, int]:
    """Fixed tiles (checked spill-free at sm_87 and sm_90 by the compile test)."""
    block_d, block_dv = block_size(qk_channels), block_size(v_channels)
    widest = max(block_d, block_dv)
    block_n = 64 if widest <= 64 else (32 if widest <= 128 else 16)
    return {"BLOCK_M": 64, "BLOCK_N": block_n, "BLOCK_D": block_d, "BLOCK_DV": block_dv,
            "num_warps": 4, "num_stages": 2}


def _bwd_config(qk_channels: int, v_channels: int) -> dict[str, dict[str, int]]:
    """Tiles of the two backward kernels (they differ: each keeps a different operand resident)."""
    block_d, block_dv = block_size(qk_channels), block_size(v_channels)
    widest = max(block_d, block_dv)
    if widest <= 64:
        dkdv, dq = (32, 64), (64, 32)
    elif widest <= 128:
        dkdv, dq = (32, 32), (32, 32)
    else:
        dkdv, dq = (16, 16), (16, 16)
    return {name: {"BLOCK_M": m, "BLOCK_N": n, "BLOCK_D": block_d, "BLOCK_DV": block_dv,
                   "num_warps": 4, "num_stages": 1}
            for name, (m, n) in (("dkdv", dkdv), ("dq", dq))}


def _strides(t: torch.Tensor) -> tuple[int, int, int]:
    return t.stride(0), t.stride(1), t.stride(2)


def launch_attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, write_lse: bool,
                             out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flash-attention forward into ``out`` (any strides) or a new (B, Cv, N) tensor; also the LSE."""
    b, d, n = q.shape
    dv, m = v.shape[1], v.shape[2]
    if out is None:
        out = torch.empty((b, dv, n), device=q.device, dtype=q.dtype)
    elif tuple(out.shape) != (b, dv, n):
        raise ValueError(f"self_attention: out must be {(b, dv, n)}, got {tuple(out.shape)}")
    lse = torch.empty((b, n), device=q.device, dtype=compute_dtype(q.dtype)) if write_lse else None
    cfg = _config(d, dv)
    grid = (triton.cdiv(n, cfg["BLOCK_M"]), b)
    launchable(_attention_fwd_kernel)[grid](
        q, k, v, n, m, d, dv, float(scale) * LOG2E, *_strides(q), *_strides(k), *_strides(v), *_strides(out),
        out, lse if lse is not None else out, WRITE_LSE=write_lse, BLOCK_M=cfg["BLOCK_M"], BLOCK_N=cfg["BLOCK_N"],
        BLOCK_D=cfg["BLOCK_D"], BLOCK_DV=cfg["BLOCK_DV"],
        DOT_PRECISION=dot_precision(q.dtype), ACC=accumulator(q.dtype),
        num_warps=cfg["num_warps"], num_stages=cfg["num_stages"], **LAUNCH_OPTIONS)
    return out, lse


def launch_attention_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                              lse: torch.Tensor, grad_out: torch.Tensor, scale: float,
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    b, d, n = q.shape
    dv_channels, m = v.shape[1], v.shape[2]
    # Contiguous operands, so the gradients (allocated contiguous) share their strides.
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    grad_out = grad_out.to(q.dtype).contiguous()
    compute = compute_dtype(q.dtype)
    delta = (grad_out.to(compute) * out.to(compute)).sum(dim=1).contiguous()        # (B, N)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    cfgs = _bwd_config(d, dv_channels)

    def options(cfg: dict[str, int]) -> dict[str, Any]:
        return {**cfg, "DOT_PRECISION": dot_precision(q.dtype), "ACC": accumulator(q.dtype), **LAUNCH_OPTIONS}

    qk_scale = float(scale) * LOG2E
    args = (q, k, v, grad_out, lse, delta, n, m, d, dv_channels, qk_scale, float(scale),
            *_strides(q), *_strides(k), *_strides(v), *_strides(grad_out))
    launchable(_attention_bwd_dkdv_kernel)[(triton.cdiv(m, cfgs["dkdv"]["BLOCK_N"]), b)](
        *args, dk, dv, **options(cfgs["dkdv"]))
    launchable(_attention_bwd_dq_kernel)[(triton.cdiv(n, cfgs["dq"]["BLOCK_M"]), b)](
        *args, dq, **options(cfgs["dq"]))
    return dq, dk, dv


class _SelfAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        needs_grad = any(ctx.needs_input_grad[:3])
        out, lse = launch_attention_forward(q, k, v, scale, write_lse=needs_grad)
        ctx.scale = scale
        if needs_grad:
            ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = launch_attention_backward(q, k, v, out, lse, grad_out, ctx.scale)
        return dq, dk, dv, None


def self_attention_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Triton path of :func:`kernels.self_attention` (differentiable)."""
    check_inputs(q, k, v, scale)
    dtype = q.dtype
    return _SelfAttention.apply(q, k.to(dtype), v.to(dtype), float(scale))


def check_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> None:
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError(f"self_attention: q, k, v must be (B, C, N), got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[0] != k.shape[0] or q.shape[0] != v.shape[0] or q.shape[1] != k.shape[1] or k.shape[2] != v.shape[2]:
        raise ValueError("self_attention: need q (B, C, N), k (B, C, M), v (B, Cv, M); got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.dtype not in KERNEL_DTYPES:
        raise TypeError(f"self_attention: Triton path takes {KERNEL_DTYPES}, got {q.dtype}")
    if max(q.shape[1], v.shape[1]) > MAX_CHANNELS:
        raise ValueError(f"self_attention: Triton path supports up to {MAX_CHANNELS} channels, "
                         f"got {q.shape[1]} (q/k) and {v.shape[1]} (v)")
    if not math.isfinite(scale):
        raise ValueError(f"self_attention: scale must be finite, got {scale}")


def compile_specs(channels: int = 128, tokens: int = 14_400, dtype: torch.dtype = torch.float16) -> list[KernelSpec]:
    """Forward and both backward kernels on contiguous (1, C, N) tensors (MSAN's 720p: C=128, N=14,400)."""
    ty = TRITON_TYPE[dtype]
    cn = {"b": channels * tokens, "c": tokens, "n": 1}
    strides = {f"stride_{t}{k}": v for t in "qkvo" for k, v in cn.items()}
    sizes = {"n_queries": tokens, "n_keys": tokens, "qk_channels": channels, "v_channels": channels,
             "qk_scale": LOG2E}
    fwd = _config(channels, channels)
    bwd = _bwd_config(channels, channels)

    def blocks(cfg: dict[str, int]) -> dict[str, Any]:
        return {"BLOCK_M": cfg["BLOCK_M"], "BLOCK_N": cfg["BLOCK_N"], "BLOCK_D": cfg["BLOCK_D"],
                "BLOCK_DV": cfg["BLOCK_DV"], "DOT_PRECISION": dot_precision(dtype), "ACC": accumulator(dtype)}

    fwd_args = {"q_ptr": Pointer(ty), "k_ptr": Pointer(ty), "v_ptr": Pointer(ty), **sizes, **strides,
                "out_ptr": Pointer(ty), "lse_ptr": Pointer("fp32")}
    bwd_args = {"q_ptr": Pointer(ty), "k_ptr": Pointer(ty), "v_ptr": Pointer(ty), "do_ptr": Pointer(ty),
                "lse_ptr": Pointer("fp32"), "delta_ptr": Pointer("fp32"), **sizes, "scale": 1.0, **strides}
    return [
        KernelSpec(f"_attention_fwd_kernel C={channels}", _attention_fwd_kernel, fwd_args,
                   {"WRITE_LSE": True, **blocks(fwd)}, num_warps=fwd["num_warps"], num_stages=fwd["num_stages"]),
        KernelSpec(f"_attention_bwd_dkdv_kernel C={channels}", _attention_bwd_dkdv_kernel,
                   {**bwd_args, "dk_ptr": Pointer(ty), "dv_ptr": Pointer(ty)}, blocks(bwd["dkdv"]),
                   num_warps=bwd["dkdv"]["num_warps"], num_stages=bwd["dkdv"]["num_stages"]),
        KernelSpec(f"_attention_bwd_dq_kernel C={channels}", _attention_bwd_dq_kernel,
                   {**bwd_args, "dq_ptr": Pointer(ty)}, blocks(bwd["dq"]),
                   num_warps=bwd["dq"]["num_warps"], num_stages=bwd["dq"]["num_stages"]),
    ]
