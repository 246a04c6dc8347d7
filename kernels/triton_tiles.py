"""Tile indexing shared by the Triton kernels: which image, pixels and channels a program owns.

Kernels call these as ``tiles.pixel_tile(...)`` (module attribute, not a bare imported name) so that
:func:`kernels.triton_common.stdlib_flavour` can switch them between interpreted and compiled
flavour in one place, the way it switches triton's own library functions.
"""

import triton
import triton.language as tl


@triton.jit
def pixel_tile(tile, tiles_per_image, n_pixels, BLOCK_P: tl.constexpr):
    """(image as int64, pixel offsets, pixel mask) of flat tile number ``tile``.

    Tiles are numbered image-major. The image index is int64 because image * batch stride passes 2**31
    from the third image of a 128-channel 3840x2160 batch (1.06e9 elements per image).
    """
    image = (tile // tiles_per_image).to(tl.int64)
    offs_p = (tile % tiles_per_image) * BLOCK_P + tl.arange(0, BLOCK_P)
    return image, offs_p, offs_p < n_pixels


@triton.jit
def block_range(index, size, BLOCK: tl.constexpr):
    """(offsets, mask) of block ``index`` of a ``size``-long axis cut into blocks of ``BLOCK``."""
    offs = index * BLOCK + tl.arange(0, BLOCK)
    return offs, offs < size


@triton.jit
def load_2d(base, rows, row_stride, row_mask, cols, col_stride, col_mask):
    """The [rows, cols] tile at ``base``; masked lanes read 0."""
    return tl.load(base + rows[:, None] * row_stride + cols[None, :] * col_stride,
                   mask=row_mask[:, None] & col_mask[None, :], other=0.0)


@triton.jit
def store_2d(base, value, rows, row_stride, row_mask, cols, col_stride, col_mask):
    """Store ``value`` ([rows, cols], cast to the pointer's type) at ``base``; masked lanes untouched."""
    tl.store(base + rows[:, None] * row_stride + cols[None, :] * col_stride,
             value.to(base.dtype.element_ty), mask=row_mask[:, None] & col_mask[None, :])
