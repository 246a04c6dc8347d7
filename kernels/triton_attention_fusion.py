"""Triton attention fusion: ``features * pw(dw3x3(conv1x1(cat(maps)) + b))``, never building the cat.

conv1x1(cat(m_1..m_k)) = sum_j W_j m_j, so the fuse kernel takes the k maps as separate pointers
(a tuple argument) and loops its GEMM's K dimension over them: the concatenation never exists.

Two kernels, because the depthwise 3x3 needs the fused map at neighbouring pixels, which live in
other programs' registers:

- ``_fuse_maps_kernel``: f = sum_j W_j m_j + b (fp32 accumulation, stored in the input dtype as the
  reference rounds it). Reads the k maps once, writes f once. With ``NEW_MAP`` it also computes the
  newest map itself from ``features``, s = sigmoid(W_m features + b_m), stores it, and feeds it to the
  GEMM from registers (:func:`attention_fusion_with_map_triton`); in an RDAFB this replaces a
  separate pixel-attention kernel whose gated output the block never used.
- ``_refine_gate_kernel``: out = features * pw(dw3x3(f)): nine shifted, masked loads of f (zero
  padding at the image border, neighbouring rows come from L1/L2), an fp32 depthwise accumulate,
  the pointwise GEMM, and the gate. Reads f and features once, writes out once.

DRAM traffic is therefore (k + 4) tensor passes against (k + 2) for a single kernel; a single kernel
would have to recompute f on a halo (1.3-1.5x the fuse GEMM) or stage it through shared memory.

Both kernels split output channels into blocks of at most 128 and loop input channels in blocks of
at most 128, so any channel count runs; at C <= 128 each is a single tile.

Registers per thread and shared memory per program, measured by ``python -m kernels.resource_usage``
(triton 3.9.0, bundled ptxas 12.9; fp16, NCHW, 1x128x360x640; no spills):

==============================================  =====  ===================  ===================
kernel (config)                                 warps  sm_87 regs / smem    sm_90 regs / smem
==============================================  =====  ===================  ===================
_fuse_maps_kernel C=128, 4 maps, P=64, K=32       8    121 / 16,384 B       78 / 12,288 B
_fuse_maps_kernel C=128, 3 maps + new map         8    146 / 49,152 B       168 / 49,152 B
_refine_gate_kernel C=128, P=64, K=32             8    122 / 16,384 B       123 / 12,288 B
==============================================  =====  ===================  ===================

(With 128-channel K chunks and the nine taps unrolled, the refine kernel spilled 7,744 B at sm_87.)

Backward: the fuse kernel's f is saved; the depthwise/pointwise/gate tail is recomputed through the
PyTorch reference (two cheap convs) and the 1x1 over the maps is differentiated per map, still
without a concatenation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from . import triton_tiles as tiles
from .triton_common import (
    KERNEL_DTYPES,
    LAUNCH_OPTIONS,
    TRITON_TYPE,
    KernelSpec,
    PixelView,
    Pointer,
    accumulator,
    block_size,
    compute_dtype,
    dot_precision,
    empty_like_view,
    launchable,
    pixel_view,
)

# Above this the fused map cannot be computed in the fuse kernel (it needs every channel in one tile).
NEW_MAP_MAX_CHANNELS = 128
MAX_BLOCK = 128


@triton.jit
def _fuse_maps_kernel(
    maps, w_ptr, b_ptr, feat_ptr, mw_ptr, mb_ptr,
    n_pixels, map_channels, channels, tiles_per_image,
    stride_mb, stride_mc, stride_mp,
    stride_xb, stride_xc, stride_xp,
    stride_ob, stride_oc, stride_op,
    out_ptr, new_map_ptr,
    NUM_MAPS: tl.constexpr, HAS_BIAS: tl.constexpr, NEW_MAP: tl.constexpr, HAS_MAP_BIAS: tl.constexpr,
    BLOCK_P: tl.constexpr, BLOCK_CO: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_PRECISION: tl.constexpr, ACC: tl.constexpr,
):
    image, offs_p, mask_p = tiles.pixel_tile(tl.program_id(1), tiles_per_image, n_pixels, BLOCK_P)
    offs_co, mask_co = tiles.block_range(tl.program_id(0), channels, BLOCK_CO)
    # Row stride of the (C, C_in_total) fuse weight: every map (and the new one) has map_channels.
    w_row = (NUM_MAPS + NEW_MAP) * map_channels
    acc = tl.zeros([BLOCK_P, BLOCK_CO], dtype=ACC)
    for j in tl.static_range(NUM_MAPS):
        m_image = maps[j] + image * stride_mb
        for kb in range(0, tl.cdiv(map_channels, BLOCK_K)):
            offs_k, mask_k = tiles.block_range(kb, map_channels, BLOCK_K)
            m = tiles.load_2d(m_image, offs_p, stride_mp, mask_p, offs_k, stride_mc, mask_k)
            wt = tiles.load_2d(w_ptr + j * map_channels, offs_k, 1, mask_k, offs_co, w_row, mask_co)
            acc = tl.dot(m, wt, acc, input_precision=DOT_PRECISION, out_dtype=ACC)
    if NEW_MAP:
        # One tile holds every channel here (BLOCK_K == BLOCK_CO >= channels == map_channels).
        feat = tiles.load_2d(feat_ptr + image * stride_xb, offs_p, stride_xp, mask_p, offs_co, stride_xc, mask_co)
        mwt = tiles.load_2d(mw_ptr, offs_co, 1, mask_co, offs_co, channels, mask_co)
        logits = tl.dot(feat, mwt, input_precision=DOT_PRECISION, out_dtype=ACC)
        if HAS_MAP_BIAS:
            logits += tl.load(mb_ptr + offs_co, mask=mask_co, other=0.0).to(ACC)[None, :]
        new_map = tl.sigmoid(logits).to(new_map_ptr.dtype.element_ty)
        tiles.store_2d(new_map_ptr + image * stride_xb, new_map, offs_p, stride_xp, mask_p, offs_co, stride_xc,
                       mask_co)
        # Padded channels of the map are sigmoid(0) = 0.5, so the weight rows must be masked to zero.
        wt = tiles.load_2d(w_ptr + NUM_MAPS * map_channels, offs_co, 1, mask_co, offs_co, w_row, mask_co)
        acc = tl.dot(new_map, wt, acc, input_precision=DOT_PRECISION, out_dtype=ACC)
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_co, mask=mask_co, other=0.0).to(ACC)[None, :]
    tiles.store_2d(out_ptr + image * stride_ob, acc, offs_p, stride_op, mask_p, offs_co, stride_oc, mask_co)


@triton.jit
def _refine_gate_kernel(
    f_ptr, dw_ptr, pw_ptr, feat_ptr,
    height, width, channels, tiles_per_image,
    stride_fb, stride_fc, stride_fp,
    stride_xb, stride_xc, stride_xp,
    stride_ob, stride_oc, stride_op,
    out_ptr,
    BLOCK_P: tl.constexpr, BLOCK_CO: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_PRECISION: tl.constexpr, ACC: tl.constexpr,
):
    image, offs_p, mask_p = tiles.pixel_tile(tl.program_id(1), tiles_per_image, height * width, BLOCK_P)
    row = offs_p // width
    col = offs_p % width
    offs_co, mask_co = tiles.block_range(tl.program_id(0), channels, BLOCK_CO)
    f_base = f_ptr + image * stride_fb
    acc = tl.zeros([BLOCK_P, BLOCK_CO], dtype=ACC)
    for kb in range(0, tl.cdiv(channels, BLOCK_K)):
        offs_k, mask_k = tiles.block_range(kb, channels, BLOCK_K)
        depthwise = tl.zeros([BLOCK_P, BLOCK_K], dtype=ACC)
        # A runtime (not unrolled) tap loop keeps one tap's addresses live at a time: unrolled, the
        # nine [BLOCK_P, BLOCK_K] address tiles spilled thousands of bytes at sm_87.
        for tap in range(9):
            dr = tap // 3 - 1
            dc = tap % 3 - 1
            r = row + dr
            c = col + dc
            # Zero padding: neighbours outside the image contribute nothing.
            inside = mask_p & (r >= 0) & (r < height) & (c >= 0) & (c < width)
            # offs_p + shift (not r * width + c) keeps the addresses visibly contiguous along pixels.
            neighbour = offs_p + (dr * width + dc)
            v = tl.load(f_base + neighbour[:, None] * stride_fp + offs_k[None, :] * stride_fc,
                        mask=inside[:, None] & mask_k[None, :], other=0.0)
            tap_w = tl.load(dw_ptr + offs_k * 9 + tap, mask=mask_k, other=0.0)
            depthwise += v.to(ACC) * tap_w.to(ACC)[None, :]
        pwt = tiles.load_2d(pw_ptr, offs_k, 1, mask_k, offs_co, channels, mask_co)
        # Round the depthwise output to the storage dtype, as the reference's separate conv does.
        acc = tl.dot(depthwise.to(pwt.dtype), pwt, acc, input_precision=DOT_PRECISION, out_dtype=ACC)
    feat = tiles.load_2d(feat_ptr + image * stride_xb, offs_p, stride_xp, mask_p, offs_co, stride_xc, mask_co)
    tiles.store_2d(out_ptr + image * stride_ob, feat.to(ACC) * acc, offs_p, stride_op, mask_p, offs_co, stride_oc,
                   mask_co)


def _config(channels: int, pixels: int) -> dict[str, int]:
    """Fixed block sizes (checked spill-free at sm_87 and sm_90 by the compile test).

    Pixel blocks shrink for tiny maps, where a full block would be mostly masked lanes.
    """
    block = min(block_size(channels), MAX_BLOCK)
    # 32-channel K chunks and 8 warps: ~100-180 registers and no spills at 128 channels (full-width
    # chunks needed 250+ and the unrolled depthwise spilled kilobytes).
    block_p = 128 if block <= 16 else 64
    return {"BLOCK_P": min(block_p, block_size(pixels)), "BLOCK_CO": block, "BLOCK_K": min(block, 32),
            "num_warps": 8 if block >= 64 else 4, "num_stages": 1}


def _same_layout(t: torch.Tensor, like: PixelView, name: str) -> PixelView:
    view = pixel_view(t, name)
    if view.strides == like.strides:
        return view
    fmt = torch.channels_last if like.stride_c == 1 and like.pixels > 1 else torch.contiguous_format
    return pixel_view(t.contiguous(memory_format=fmt), name)


def launch_fuse_maps(maps: Sequence[torch.Tensor], fuse_weight: torch.Tensor, fuse_bias: torch.Tensor | None,
                     features: PixelView, map_weight: torch.Tensor | None = None,
                     map_bias: torch.Tensor | None = None) -> tuple[PixelView, torch.Tensor | None]:
    """f = conv1x1(cat(maps [+ new map]), fuse_weight, fuse_bias) without the cat; returns (f, new map)."""
    dtype = features.tensor.dtype
    c = features.channels
    first = pixel_view(maps[0], "maps[0]") if maps else features
    views = [_same_layout(m, first, f"maps[{j}]") for j, m in enumerate(maps)]
    map_channels = views[0].channels if views else c
    new_map = map_weight is not None
    w2d = fuse_weight.reshape(c, -1).to(dtype).contiguous()
    cfg = _config(c, features.pixels)
    f = empty_like_view(features)
    new_map_view = empty_like_view(features) if new_map else None
    bias_arg = fuse_bias.to(dtype).contiguous() if fuse_bias is not None else w2d
    mw = map_weight.reshape(c, c).to(dtype).contiguous() if map_weight is not None else w2d
    mb = map_bias.to(dtype).contiguous() if map_bias is not None else w2d
    tiles = triton.cdiv(features.pixels, cfg["BLOCK_P"])
    grid = (triton.cdiv(c, cfg["BLOCK_CO"]), features.batch * tiles)
    map_strides = views[0].strides if views else features.strides
    launchable(_fuse_maps_kernel)[grid](
        tuple(v.tensor for v in views), w2d, bias_arg, features.tensor, mw, mb,
        features.pixels, map_channels, c, tiles, *map_strides, *features.strides, *f.strides,
        f.tensor, new_map_view.tensor if new_map_view is not None else f.tensor,
        NUM_MAPS=len(views), HAS_BIAS=fuse_bias is not None, NEW_MAP=new_map, HAS_MAP_BIAS=map_bias is not None,
        BLOCK_P=cfg["BLOCK_P"], BLOCK_CO=cfg["BLOCK_CO"], BLOCK_K=cfg["BLOCK_K"],
        DOT_PRECISION=dot_precision(dtype), ACC=accumulator(dtype),
        num_warps=cfg["num_warps"], num_stages=cfg["num_stages"],
        **LAUNCH_OPTIONS)
    return f, (new_map_view.tensor if new_map_view is not None else None)


def launch_refine_gate(f: PixelView, dw_weight: torch.Tensor, pw_weight: torch.Tensor,
                       features: PixelView, out: torch.Tensor | None = None) -> torch.Tensor:
    """features * pw(dw3x3(f)) with zero padding, into ``out`` or a new tensor in features' layout."""
    dtype = features.tensor.dtype
    c = features.channels
    _, _, h, w = features.tensor.shape
    cfg = _config(c, features.pixels)
    out_v = pixel_view(out, "out") if out is not None else empty_like_view(features)
    tiles = triton.cdiv(features.pixels, cfg["BLOCK_P"])
    grid = (triton.cdiv(c, cfg["BLOCK_CO"]), features.batch * tiles)
    launchable(_refine_gate_kernel)[grid](
        f.tensor, dw_weight.reshape(c, 9).to(dtype).contiguous(), pw_weight.reshape(c, c).to(dtype).contiguous(),
        features.tensor, h, w, c, tiles, *f.strides, *features.strides, *out_v.strides, out_v.tensor,
        BLOCK_P=cfg["BLOCK_P"], BLOCK_CO=cfg["BLOCK_CO"], BLOCK_K=cfg["BLOCK_K"],
        DOT_PRECISION=dot_precision(dtype), ACC=accumulator(dtype),
        num_warps=cfg["num_warps"], num_stages=cfg["num_stages"],
        **LAUNCH_OPTIONS)
    return out_v.tensor


def _refine_gate_reference(f: torch.Tensor, dw_weight: torch.Tensor, pw_weight: torch.Tensor,
                           features: torch.Tensor) -> torch.Tensor:
    refined = F.conv2d(F.conv2d(f, dw_weight, None, padding=1, groups=dw_weight.shape[0]), pw_weight)
    return features * refined


def _fusion_backward(grad_out: torch.Tensor, f: torch.Tensor, maps: Sequence[torch.Tensor],
                     fuse_weight: torch.Tensor, dw_weight: torch.Tensor, pw_weight: torch.Tensor,
                     features: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor,
                                                       torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of the fusion from the saved f: (d maps, d fuse_weight, d fuse_bias, d dw, d pw, d features, d f)."""
    dtype = features.dtype
    c = features.shape[1]
    with torch.enable_grad():
        f_ = f.detach().requires_grad_(True)
        dw_ = dw_weight.detach().to(dtype).requires_grad_(True)
        pw_ = pw_weight.detach().to(dtype).requires_grad_(True)
        feat_ = features.detach().requires_grad_(True)
        out = _refine_gate_reference(f_, dw_, pw_, feat_)
        d_f, d_dw, d_pw, d_feat = torch.autograd.grad(out, (f_, dw_, pw_, feat_), grad_out)
    compute = compute_dtype(dtype)
    d_f32 = d_f.to(compute).flatten(2)                                     # (B, C, P)
    w2d = fuse_weight.reshape(c, -1).to(compute)
    cm = maps[0].shape[1] if maps else c
    d_maps, d_w_blocks = [], []
    for j, m in enumerate(maps):
        w_j = w2d[:, j * cm:(j + 1) * cm]
        d_maps.append(torch.einsum("oc,bop->bcp", w_j, d_f32).reshape(m.shape).to(m.dtype))
        d_w_blocks.append(torch.einsum("bop,bcp->oc", d_f32, m.to(compute).flatten(2)))
    d_fuse_b = d_f32.sum(dim=(0, 2))
    d_fuse_w = torch.cat(d_w_blocks, dim=1) if d_w_blocks else w2d.new_zeros((c, 0))
    return d_maps, d_fuse_w, d_fuse_b, d_dw, d_pw, d_feat, d_f


class _AttentionFusion(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, fuse_weight: torch.Tensor, fuse_bias: torch.Tensor | None,
                dw_weight: torch.Tensor, pw_weight: torch.Tensor, *maps: torch.Tensor) -> torch.Tensor:
        feat = pixel_view(features, "features")
        f, _ = launch_fuse_maps(maps, fuse_weight, fuse_bias, feat)
        out = launch_refine_gate(f, dw_weight, pw_weight, feat)
        ctx.has_bias = fuse_bias is not None
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(f.tensor, features, fuse_weight, dw_weight, pw_weight, *maps)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
        f, features, fuse_weight, dw_weight, pw_weight, *maps = ctx.saved_tensors
        d_maps, d_fw, d_fb, d_dw, d_pw, d_feat, _ = _fusion_backward(
            grad_out, f, maps, fuse_weight, dw_weight, pw_weight, features)
        return (d_feat, d_fw.reshape(fuse_weight.shape).to(fuse_weight.dtype),
                d_fb.to(fuse_weight.dtype) if ctx.has_bias else None,
                d_dw.to(dw_weight.dtype), d_pw.to(pw_weight.dtype), *d_maps)


class _AttentionFusionWithMap(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, map_weight: torch.Tensor, map_bias: torch.Tensor | None,
                fuse_weight: torch.Tensor, fuse_bias: torch.Tensor | None, dw_weight: torch.Tensor,
                pw_weight: torch.Tensor, *previous_maps: torch.Tensor) -> Any:
        feat = pixel_view(features, "features")
        f, new_map = launch_fuse_maps(previous_maps, fuse_weight, fuse_bias, feat, map_weight, map_bias)
        assert new_map is not None
        out = launch_refine_gate(f, dw_weight, pw_weight, feat)
        ctx.has_bias = fuse_bias is not None
        ctx.has_map_bias = map_bias is not None
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(f.tensor, new_map, features, map_weight, fuse_weight, dw_weight, pw_weight,
                                  *previous_maps)
        return out, new_map

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor | None, grad_map: torch.Tensor | None) -> Any:
        f, new_map, features, map_weight, fuse_weight, dw_weight, pw_weight, *previous = ctx.saved_tensors
        c = features.shape[1]
        compute = compute_dtype(features.dtype)
        if grad_out is None:
            grad_out = torch.zeros_like(features)
        d_maps, d_fw, d_fb, d_dw, d_pw, d_feat, _ = _fusion_backward(
            grad_out, f, [*previous, new_map], fuse_weight, dw_weight, pw_weight, features)
        d_new_map = d_maps.pop().to(compute)
        if grad_map is not None:
            d_new_map = d_new_map + grad_map.to(compute)
        s = new_map.to(compute).flatten(2)
        d_logits = d_new_map.flatten(2) * s * (1.0 - s)
        mw = map_weight.reshape(c, c).to(compute)
        d_feat = d_feat.to(compute) + torch.einsum("oc,bop->bcp", mw, d_logits).reshape(features.shape)
        d_mw = torch.einsum("bop,bcp->oc", d_logits, features.to(compute).flatten(2)).reshape(map_weight.shape)
        d_mb = d_logits.sum(dim=(0, 2))
        return (d_feat.to(features.dtype), d_mw.to(map_weight.dtype),
                d_mb.to(map_weight.dtype) if ctx.has_map_bias else None,
                d_fw.reshape(fuse_weight.shape).to(fuse_weight.dtype),
                d_fb.to(fuse_weight.dtype) if ctx.has_bias else None,
                d_dw.to(dw_weight.dtype), d_pw.to(pw_weight.dtype), *d_maps)


def _check(maps: Sequence[torch.Tensor], fuse_weight: torch.Tensor, fuse_bias: torch.Tensor | None,
           dw_weight: torch.Tensor, pw_weight: torch.Tensor, features: torch.Tensor, new_maps: int = 0) -> None:
    if features.dim() != 4:
        raise ValueError(f"attention_fusion: features must be (B, C, H, W), got {tuple(features.shape)}")
    if features.dtype not in KERNEL_DTYPES:
        raise TypeError(f"attention_fusion: Triton path takes {KERNEL_DTYPES}, got {features.dtype}")
    b, c, h, w = features.shape
    for j, m in enumerate(maps):
        if m.dim() != 4 or m.shape[0] != b or tuple(m.shape[2:]) != (h, w):
            raise ValueError(f"attention_fusion: maps[{j}] must be ({b}, C_map, {h}, {w}) like features, "
                             f"got {tuple(m.shape)}")
        if m.shape[1] != maps[0].shape[1]:
            raise ValueError(f"attention_fusion: every map needs the same channel count, maps[0] has "
                             f"{maps[0].shape[1]} and maps[{j}] has {m.shape[1]}")
    in_channels = sum(m.shape[1] for m in maps) + new_maps * c
    if tuple(fuse_weight.shape) != (c, in_channels, 1, 1):
        raise ValueError(f"attention_fusion: fuse_weight must be ({c}, {in_channels}, 1, 1), "
                         f"got {tuple(fuse_weight.shape)}")
    if fuse_bias is not None and tuple(fuse_bias.shape) != (c,):
        raise ValueError(f"attention_fusion: fuse_bias must be ({c},), got {tuple(fuse_bias.shape)}")
    if tuple(dw_weight.shape) != (c, 1, 3, 3):
        raise ValueError(f"attention_fusion: dw_weight must be ({c}, 1, 3, 3), got {tuple(dw_weight.shape)}")
    if tuple(pw_weight.shape) != (c, c, 1, 1):
        raise ValueError(f"attention_fusion: pw_weight must be ({c}, {c}, 1, 1), got {tuple(pw_weight.shape)}")


def attention_fusion_triton(maps: Sequence[torch.Tensor], fuse_weight: torch.Tensor,
                            fuse_bias: torch.Tensor | None, dw_weight: torch.Tensor, pw_weight: torch.Tensor,
                            features: torch.Tensor) -> torch.Tensor:
    """Triton path of :func:`kernels.attention_fusion` (differentiable)."""
    maps = list(maps)
    if not maps:
        raise ValueError("attention_fusion: needs at least one map")
    _check(maps, fuse_weight, fuse_bias, dw_weight, pw_weight, features)
    maps = [m.to(features.dtype) for m in maps]
    return _AttentionFusion.apply(features, fuse_weight, fuse_bias, dw_weight, pw_weight, *maps)


def attention_fusion_with_map_triton(previous_maps: Sequence[torch.Tensor], map_weight: torch.Tensor,
                                     map_bias: torch.Tensor | None, fuse_weight: torch.Tensor,
                                     fuse_bias: torch.Tensor | None, dw_weight: torch.Tensor,
                                     pw_weight: torch.Tensor, features: torch.Tensor,
                                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton path of :func:`kernels.attention_fusion_with_map` (differentiable)."""
    previous = [m.to(features.dtype) for m in previous_maps]
    _check(previous, fuse_weight, fuse_bias, dw_weight, pw_weight, features, new_maps=1)
    c = features.shape[1]
    if tuple(map_weight.shape) not in ((c, c, 1, 1), (c, c)):
        raise ValueError(f"attention_fusion_with_map: map_weight must be ({c}, {c}, 1, 1), "
                         f"got {tuple(map_weight.shape)}")
    if any(m.shape[1] != c for m in previous):
        raise ValueError(f"attention_fusion_with_map: previous maps must have {c} channels like features")
    if c > NEW_MAP_MAX_CHANNELS:
        # The in-kernel map needs all channels in one tile; wider layers take two kernels.
        from .triton_pixel_attention import pixel_attention_triton

        _, new_map = pixel_attention_triton(features, map_weight, map_bias, return_map=True)
        out = attention_fusion_triton([*previous, new_map], fuse_weight, fuse_bias, dw_weight, pw_weight, features)
        return out, new_map
    out, new_map = _AttentionFusionWithMap.apply(features, map_weight, map_bias, fuse_weight, fuse_bias,
                                                 dw_weight, pw_weight, *previous)
    return out, new_map


def compile_specs(channels: int = 128, height: int = 360, width: int = 640, num_maps: int = 4,
                  dtype: torch.dtype = torch.float16) -> list[KernelSpec]:
    """Both kernels as they launch on NCHW (B=1) maps, including the in-kernel-map variant."""
    pixels = height * width
    cfg = _config(channels, pixels)
    ty = TRITON_TYPE[dtype]
    tiles = triton.cdiv(pixels, cfg["BLOCK_P"])
    nchw = {"b": channels * pixels, "c": pixels, "p": 1}
    blocks = {"BLOCK_P": cfg["BLOCK_P"], "BLOCK_CO": cfg["BLOCK_CO"], "BLOCK_K": cfg["BLOCK_K"],
              "DOT_PRECISION": dot_precision(dtype), "ACC": accumulator(dtype)}

    def fuse_args(maps: int) -> dict[str, Any]:
        return {"maps": tuple(Pointer(ty) for _ in range(maps)), "w_ptr": Pointer(ty), "b_ptr": Pointer(ty),
                "feat_ptr": Pointer(ty), "mw_ptr": Pointer(ty), "mb_ptr": Pointer(ty),
                "n_pixels": pixels, "map_channels": channels, "channels": channels, "tiles_per_image": tiles,
                **{f"stride_{t}{k}": v for t in "mxo" for k, v in nchw.items()},
                "out_ptr": Pointer(ty), "new_map_ptr": Pointer(ty)}

    specs = [KernelSpec(f"_fuse_maps_kernel C={channels} maps={num_maps}", _fuse_maps_kernel, fuse_args(num_maps),
                        {"NUM_MAPS": num_maps, "HAS_BIAS": True, "NEW_MAP": False, "HAS_MAP_BIAS": False, **blocks},
                        num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])]
    if channels <= NEW_MAP_MAX_CHANNELS:
        specs.append(KernelSpec(
            f"_fuse_maps_kernel C={channels} maps={num_maps - 1}+new", _fuse_maps_kernel, fuse_args(num_maps - 1),
            {"NUM_MAPS": num_maps - 1, "HAS_BIAS": True, "NEW_MAP": True, "HAS_MAP_BIAS": True, **blocks},
            num_warps=cfg["num_warps"], num_stages=cfg["num_stages"]))
    refine_args = {"f_ptr": Pointer(ty), "dw_ptr": Pointer(ty), "pw_ptr": Pointer(ty), "feat_ptr": Pointer(ty),
                   "height": height, "width": width, "channels": channels, "tiles_per_image": tiles,
                   **{f"stride_{t}{k}": v for t in "fxo" for k, v in nchw.items()}, "out_ptr": Pointer(ty)}
    specs.append(KernelSpec(f"_refine_gate_kernel C={channels}", _refine_gate_kernel, refine_args, blocks,
                            num_warps=cfg["num_warps"], num_stages=cfg["num_stages"]))
    return specs
