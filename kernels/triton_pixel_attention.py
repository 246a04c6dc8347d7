"""Triton pixel attention: ``y = x * sigmoid(W x + b)`` (1x1 conv), optionally also the sigmoid map.

Two kernels, chosen by channel count:

- ``_pixel_attention_kernel`` (C <= 128, the zoo's widths): a program owns BLOCK_P pixels x *all*
  channels. The [BLOCK_P, C] tile of x is loaded once and is both the A operand of the 1x1 GEMM and
  the factor of the gate, so DRAM sees one read of x and one write of y (plus one of the map when
  asked). The grid is persistent: each program loads Wᵀ once and loops over pixel tiles.
- ``_pixel_attention_tiled_kernel`` (C > 128): output channels are split into blocks of 64 and the
  GEMM loops over input-channel blocks, which keeps the accumulator in registers. The gate re-reads
  x's [BLOCK_P, 64] slice, which the same program has just loaded (an L1/L2 hit, not DRAM);
  programs of one pixel tile are adjacent in the grid so their x tile is shared through L2.

Registers per thread and shared memory per program, measured by ``python -m kernels.resource_usage``
(``triton.compile`` for the target + ``cuobjdump``; triton 3.9.0 with its bundled ptxas 12.9; fp16,
NCHW, 1x128x360x640; no spills, which ``tests/kernels/test_targets_compile.py`` enforces):

==========================================  =====  ===================  ===================
kernel (config)                             warps  sm_87 regs / smem    sm_90 regs / smem
==========================================  =====  ===================  ===================
_pixel_attention_kernel C=128, P=32           8    76 / 40,960 B        76 / 40,960 B
_pixel_attention_tiled_kernel C=256, P=64     4    119 / 16,384 B       72 / 32,768 B
==========================================  =====  ===================  ===================

(64-pixel tiles at C=128 needed 255 registers and spilled 56 B at sm_90.)

Backward: the forward also stores the sigmoid map when a gradient is needed; the backward is the
reference's autograd maths written out in PyTorch ops on that map (two GEMMs for dx and dW, the
elementwise sigmoid terms, in fp32), with no recompute of the forward.
"""

from __future__ import annotations

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
    empty_like_view,
    launchable,
    persistent_programs,
    pixel_view,
)

# Widest channel count the single-tile kernel takes (its W tile is BLOCK_C x BLOCK_C).
SINGLE_TILE_MAX_CHANNELS = 128


@triton.jit
def _pixel_attention_kernel(
    x_ptr, w_ptr, b_ptr,
    n_pixels, channels, tiles_per_image, total_tiles,
    stride_xb, stride_xc, stride_xp,
    stride_yb, stride_yc, stride_yp,
    y_ptr, map_ptr,
    HAS_BIAS: tl.constexpr, WRITE_OUT: tl.constexpr, WRITE_MAP: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, DOT_PRECISION: tl.constexpr, ACC: tl.constexpr,
):
    # Argument order is inputs, scalars, outputs: what TensorRT's AOT plugins require.
    pid = tl.program_id(0)
    programs = tl.num_programs(0)
    offs_c, mask_c = tiles.block_range(0, channels, BLOCK_C)
    # wt[ci, co] = W[co, ci]: the 1x1 conv as x_tile[P, ci] @ wt[ci, co]. Loaded once per program.
    wt = tiles.load_2d(w_ptr, offs_c, 1, mask_c, offs_c, channels, mask_c)
    if HAS_BIAS:
        bias = tl.load(b_ptr + offs_c, mask=mask_c, other=0.0).to(ACC)
    for tile in range(pid, total_tiles, programs):
        image, offs_p, mask_p = tiles.pixel_tile(tile, tiles_per_image, n_pixels, BLOCK_P)
        mask = mask_p[:, None] & mask_c[None, :]
        x = tiles.load_2d(x_ptr + image * stride_xb, offs_p, stride_xp, mask_p, offs_c, stride_xc, mask_c)
        logits = tl.dot(x, wt, input_precision=DOT_PRECISION, out_dtype=ACC)
        if HAS_BIAS:
            logits += bias[None, :]
        gate = tl.sigmoid(logits)
        out_offs = image * stride_yb + offs_p[:, None] * stride_yp + offs_c[None, :] * stride_yc
        if WRITE_OUT:
            tl.store(y_ptr + out_offs, (x.to(ACC) * gate).to(y_ptr.dtype.element_ty), mask=mask)
        if WRITE_MAP:
            tl.store(map_ptr + out_offs, gate.to(map_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _pixel_attention_tiled_kernel(
    x_ptr, w_ptr, b_ptr,
    n_pixels, channels, tiles_per_image,
    stride_xb, stride_xc, stride_xp,
    stride_yb, stride_yc, stride_yp,
    y_ptr, map_ptr,
    HAS_BIAS: tl.constexpr, WRITE_OUT: tl.constexpr, WRITE_MAP: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_CO: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_PRECISION: tl.constexpr, ACC: tl.constexpr,
):
    image, offs_p, mask_p = tiles.pixel_tile(tl.program_id(1), tiles_per_image, n_pixels, BLOCK_P)
    offs_co, mask_co = tiles.block_range(tl.program_id(0), channels, BLOCK_CO)
    x_image = x_ptr + image * stride_xb
    acc = tl.zeros([BLOCK_P, BLOCK_CO], dtype=ACC)
    for kb in range(0, tl.cdiv(channels, BLOCK_K)):
        offs_k, mask_k = tiles.block_range(kb, channels, BLOCK_K)
        x = tiles.load_2d(x_image, offs_p, stride_xp, mask_p, offs_k, stride_xc, mask_k)
        wt = tiles.load_2d(w_ptr, offs_k, 1, mask_k, offs_co, channels, mask_co)
        acc = tl.dot(x, wt, acc, input_precision=DOT_PRECISION, out_dtype=ACC)
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_co, mask=mask_co, other=0.0).to(ACC)[None, :]
    gate = tl.sigmoid(acc)
    mask = mask_p[:, None] & mask_co[None, :]
    out_offs = image * stride_yb + offs_p[:, None] * stride_yp + offs_co[None, :] * stride_yc
    if WRITE_OUT:
        x_gate = tiles.load_2d(x_image, offs_p, stride_xp, mask_p, offs_co, stride_xc, mask_co)
        tl.store(y_ptr + out_offs, (x_gate.to(ACC) * gate).to(y_ptr.dtype.element_ty), mask=mask)
    if WRITE_MAP:
        tl.store(map_ptr + out_offs, gate.to(map_ptr.dtype.element_ty), mask=mask)


def _config(channels: int, pixels: int) -> dict[str, int]:
    """Fixed block sizes per channel count (checked spill-free at sm_87 and sm_90 by the compile test).

    Pixel blocks shrink for tiny maps, where a full block would be mostly masked lanes.
    """
    if channels <= SINGLE_TILE_MAX_CHANNELS:
        block_c = block_size(channels)
        # At 128 channels, 32-pixel tiles and 8 warps keep ~76 registers (3 programs per SM); 64-pixel
        # tiles needed 255 and spilled at sm_90.
        block_p = 32 if block_c >= 128 else (64 if block_c == 64 else 128)
        return {"BLOCK_P": min(block_p, block_size(pixels)), "BLOCK_C": block_c,
                "num_warps": 8 if block_c >= 128 else 4, "num_stages": 1}
    return {"BLOCK_P": min(64, block_size(pixels)), "BLOCK_CO": 64, "BLOCK_K": 64, "num_warps": 4, "num_stages": 2}


def launch_pixel_attention(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                           write_out: bool, write_map: bool, out: torch.Tensor | None = None,
                           attn: torch.Tensor | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Run the forward kernel; returns (y or None, map or None) in x's dtype and layout.

    ``out`` / ``attn``: buffers to write into (e.g. a TensorRT plugin's outputs); both must share
    one layout. Otherwise new tensors in x's layout.
    """
    view = pixel_view(x, "x")
    b, c = view.batch, view.channels
    w2d = weight.reshape(c, c).to(x.dtype).contiguous()
    bias_arg = bias.to(x.dtype).contiguous() if bias is not None else w2d
    out_v = (pixel_view(out, "out") if out is not None else empty_like_view(view)) if write_out else None
    attn_v = (pixel_view(attn, "attn") if attn is not None else empty_like_view(view)) if write_map else None
    first = out_v if out_v is not None else attn_v
    assert first is not None, "nothing to write"
    for v in (out_v, attn_v):
        if v is not None and (v.strides != first.strides or v.tensor.shape != x.shape):
            raise ValueError("pixel_attention: output buffers must have x's shape and one common layout")
    cfg = _config(c, view.pixels)
    common: dict[str, Any] = {
        "HAS_BIAS": bias is not None, "WRITE_OUT": write_out, "WRITE_MAP": write_map,
        "DOT_PRECISION": dot_precision(x.dtype), "ACC": accumulator(x.dtype),
        "num_warps": cfg["num_warps"], "num_stages": cfg["num_stages"], **LAUNCH_OPTIONS}
    # An output that is not written still needs a pointer argument; the kernel never touches it.
    y_arg = (out_v or first).tensor
    map_arg = (attn_v or first).tensor
    tiles_per_image = triton.cdiv(view.pixels, cfg["BLOCK_P"])
    if c <= SINGLE_TILE_MAX_CHANNELS:
        total = b * tiles_per_image
        launchable(_pixel_attention_kernel)[(persistent_programs(x.device, total),)](
            view.tensor, w2d, bias_arg, view.pixels, c, tiles_per_image, total, *view.strides,
            *first.strides, y_arg, map_arg, BLOCK_P=cfg["BLOCK_P"], BLOCK_C=cfg["BLOCK_C"], **common)
    else:
        launchable(_pixel_attention_tiled_kernel)[(triton.cdiv(c, cfg["BLOCK_CO"]), b * tiles_per_image)](
            view.tensor, w2d, bias_arg, view.pixels, c, tiles_per_image, *view.strides,
            *first.strides, y_arg, map_arg, BLOCK_P=cfg["BLOCK_P"], BLOCK_CO=cfg["BLOCK_CO"],
            BLOCK_K=cfg["BLOCK_K"], **common)
    return (out_v.tensor if out_v is not None else None), (attn_v.tensor if attn_v is not None else None)


class _PixelAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                return_map: bool) -> Any:
        needs_grad = any(ctx.needs_input_grad[:3])
        out, attn = launch_pixel_attention(x, weight, bias, write_out=True, write_map=return_map or needs_grad)
        assert out is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None
        ctx.return_map = return_map
        if needs_grad:
            assert attn is not None
            ctx.save_for_backward(x, weight, attn)
        if return_map:
            return out, attn
        return out

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor | None) -> Any:
        x, weight, attn = ctx.saved_tensors
        grad_out = grads[0]
        grad_map = grads[1] if ctx.return_map else None
        dx, dw, db = pixel_attention_backward(x, weight, attn, grad_out, grad_map)
        return dx, dw.to(weight.dtype), (db.to(ctx.bias_dtype) if ctx.bias_dtype is not None else None), None


def pixel_attention_backward(x: torch.Tensor, weight: torch.Tensor, attn: torch.Tensor,
                             grad_out: torch.Tensor | None, grad_map: torch.Tensor | None,
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of ``(x * s, s)``, ``s = sigmoid(W x + b)``, from the saved map ``s``.

    fp32 maths (fp64 for fp64 tensors). Returns (dx in x's dtype, dW shaped like ``weight``, db).
    """
    c = x.shape[1]
    compute = compute_dtype(x.dtype)
    xf, sf = x.to(compute).flatten(2), attn.to(compute).flatten(2)          # (B, C, P)
    w2d = weight.reshape(c, c).to(compute)
    upstream = torch.zeros_like(sf)
    if grad_out is not None:
        upstream = upstream + grad_out.to(compute).flatten(2) * xf
    if grad_map is not None:
        upstream = upstream + grad_map.to(compute).flatten(2)
    dlogits = upstream * sf * (1.0 - sf)
    dx = torch.einsum("oc,bop->bcp", w2d, dlogits)
    if grad_out is not None:
        dx = dx + grad_out.to(compute).flatten(2) * sf
    dw = torch.einsum("bop,bcp->oc", dlogits, xf).reshape(weight.shape)
    db = dlogits.sum(dim=(0, 2))
    return dx.reshape(x.shape).to(x.dtype), dw, db


def pixel_attention_triton(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                           return_map: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Triton path of :func:`kernels.pixel_attention` (differentiable)."""
    _check(x, weight, bias)
    result = _PixelAttention.apply(x, weight, bias, return_map)
    if return_map:
        out, attn = result
        return out, attn
    return result


def _check(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    if x.dim() != 4:
        raise ValueError(f"pixel_attention: x must be (B, C, H, W), got shape {tuple(x.shape)}")
    c = x.shape[1]
    if tuple(weight.shape) not in ((c, c, 1, 1), (c, c)):
        raise ValueError(f"pixel_attention: weight must be ({c}, {c}, 1, 1) for {c} channels, "
                         f"got {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (c,):
        raise ValueError(f"pixel_attention: bias must be ({c},), got {tuple(bias.shape)}")
    if x.dtype not in KERNEL_DTYPES:
        raise TypeError(f"pixel_attention: Triton path takes {KERNEL_DTYPES}, got {x.dtype}")


def compile_specs(channels: int = 128, height: int = 360, width: int = 640,
                  dtype: torch.dtype = torch.float16) -> list[KernelSpec]:
    """The forward kernel as it launches on an NCHW (B=1) map, for compile-only checks."""
    pixels = height * width
    cfg = _config(channels, pixels)
    ty = TRITON_TYPE[dtype]
    tiles = triton.cdiv(pixels, cfg["BLOCK_P"])
    args: dict[str, Any] = {
        "x_ptr": Pointer(ty), "w_ptr": Pointer(ty), "b_ptr": Pointer(ty), "n_pixels": pixels,
        "channels": channels, "tiles_per_image": tiles, "total_tiles": tiles,
        "stride_xb": channels * pixels, "stride_xc": pixels, "stride_xp": 1,
        "stride_yb": channels * pixels, "stride_yc": pixels, "stride_yp": 1,
        "y_ptr": Pointer(ty), "map_ptr": Pointer(ty),
    }
    flags = {"HAS_BIAS": True, "WRITE_OUT": True, "WRITE_MAP": True,
             "DOT_PRECISION": dot_precision(dtype), "ACC": accumulator(dtype)}
    if channels <= SINGLE_TILE_MAX_CHANNELS:
        return [KernelSpec(f"_pixel_attention_kernel C={channels}", _pixel_attention_kernel, args,
                           {**flags, "BLOCK_P": cfg["BLOCK_P"], "BLOCK_C": cfg["BLOCK_C"]},
                           num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])]
    del args["total_tiles"]
    return [KernelSpec(f"_pixel_attention_tiled_kernel C={channels}", _pixel_attention_tiled_kernel, args,
                       {**flags, "BLOCK_P": cfg["BLOCK_P"], "BLOCK_CO": cfg["BLOCK_CO"], "BLOCK_K": cfg["BLOCK_K"]},
                       num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])]
