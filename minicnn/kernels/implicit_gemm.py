"""The implicit GEMM: a convolution's matrix products without the column matrix
(``kernels/conv.py`` holds the equations).  Every entry of ``cols`` is read from the padded
input where it lies, through two offset tables (``window_offsets``)::

    cols[pixel, k] = x_pad.flat[origin[pixel] + tap[k]]

* ``conv2d``: y = act(cols @ W2 + b) (the forward, and ∂L/∂x as a full convolution, with
  no bias and no activation), parallel over (row block, column panel) tiles, each owning its
  tile of y, which it stores through the layer's epilogue (``numba_epilogue.bias_act``): y
  is written once; ``matmul`` is its 1×1 case; ``gemm_into`` the same product stored at any
  pixels of an output (``pixel_offsets``: a phase of a strided ∂L/∂x, ``sub_pixel.py``);
* ``conv2d_kernel_grad``: ∂L/∂W2 = colsᵀ @ dY, parallel over (block of pixels, panel of
  ∂L/∂W2's columns) pairs, each writing its own partial sum (a fixed count: the result does
  not depend on the thread count), a span of the block's pixels at a time through every
  tile of the panel; and ∂L/∂b = Σ dY, summed over each span's rows of dY right after their
  products, while those rows are in cache.

Both run on the register tiles (``kernels/register_tiles.py``); a task of each is an inlined
function of its own (``gemm_tile``, ``kernel_grad_block``), which ``kernels/pointwise.py`` runs
one after the other on a block of pixels.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from . import jit
from .numba_epilogue import bias_act
from .register_tiles import (multiply_add_row, pack_panels, register_tile, row_values, scratch_panels, table_rows,
                             tile_for, tile_products)
from .workspace import scratch


@functools.lru_cache(maxsize=256)
def window_offsets(x_pad_shape, kernel, strides, out_hw, start=(0, 0)):
    """(origin, tap) with ``cols[pixel, k] = x_pad.flat[origin[pixel] + tap[k]]``: where
    each output pixel's window starts in the padded input, and where each tap lies in it::

        origin[(b, p, q)] = ((b·hp + r0 + p·sh)·wp + c0 + q·sw)·c       (r0, c0) = start
        tap[(i, j, ch)]   = (i·wp + j)·c + ch

    Unsigned, so the kernels' indexing needs no negative-index check.  Made once per shape
    (read-only: one type for Numba, so no kernel compiles twice)."""
    n, hp, wp, c = x_pad_shape
    (kh, kw), (sh, sw), (oh, ow), (r0, c0) = kernel, strides, out_hw, start
    origin = ((np.arange(n)[:, None, None] * hp + r0 + np.arange(oh)[:, None] * sh) * wp + c0 + np.arange(ow) * sw) * c
    tap = (np.arange(kh)[:, None, None] * wp + np.arange(kw)[:, None]) * c + np.arange(c)
    origin, tap = origin.ravel().astype(np.uint64), tap.ravel().astype(np.uint64)
    origin.flags.writeable = tap.flags.writeable = False
    return origin, tap


@functools.lru_cache(maxsize=256)
def pixel_offsets(n, oh, ow, channels, first=(0, 0), steps=(1, 1), out_hw=None):
    """Where each of the n·oh·ow output pixels' ``channels`` values start in an NHWC array of
    ``out_hw`` (default (oh, ow)) pixels: pixel (b, p, q) at (first[0] + p·steps[0], first[1] +
    q·steps[1]).  The implicit GEMM stores through it: a whole output (contiguous rows), or
    every ``steps``-th pixel of one (a phase of ∂L/∂X, ``kernels/sub_pixel.py``).  No two
    pixels overlap, so the kernel's tasks own what they store.  Unsigned, read-only."""
    h, w = out_hw or (oh, ow)
    rows = first[0] + np.arange(oh) * steps[0]
    cols = first[1] + np.arange(ow) * steps[1]
    at = ((np.arange(n)[:, None, None] * h + rows[:, None]) * w + cols) * channels
    at = at.ravel().astype(np.uint64)
    at.flags.writeable = False
    return at


@njit(inline="always", fastmath={"contract"})
def gemm_tile(tile, x_flat, origin, tap, panels, panel, r0, last, bias, relu, out_flat, out_at):
    """One tile of ``implicit_gemm``: rows r0 … r0 + ROWS − 1 of out (``tile`` = (ROWS, PANEL);
    rows past ``last`` repeat it, not stored) in the columns of panel ``panel``, summed in a
    register tile and stored through the epilogue."""
    rows_in_tile, width = tile
    acc = register_tile(tile, out_flat.dtype)
    tile_products(acc, x_flat, table_rows(origin, r0, last), tap, panels, panel)
    c0 = panel * width
    rows, cols = min(rows_in_tile, last + 1 - r0), min(width, bias.size - c0)
    if rows == rows_in_tile and cols == width:  # fixed trip counts, and unsigned indices (a signed one
        for i in range(rows_in_tile):           # is wrapped if negative): vector stores, not scatters
            at = out_at[r0 + i] + np.uint64(c0)
            for j in range(width):
                out_flat[at + np.uint64(j)] = bias_act(acc[i, j], bias[np.uint64(c0 + j)], relu)
    else:
        for i in range(rows):
            at = out_at[r0 + i] + np.uint64(c0)
            for j in range(cols):
                out_flat[at + np.uint64(j)] = bias_act(acc[i, j], bias[np.uint64(c0 + j)], relu)


@functools.cache
def _implicit_gemm_kernel(ROWS, PANEL):
    """The implicit GEMM compiled for one register tile, ROWS (3, 4 or 8) × PANEL."""
    @jit.kernel(fastmath={"contract"})
    def implicit_gemm(x_flat, origin, tap, panels, bias, relu, out_flat, out_at):
        """out = act(cols @ W2 + bias) without writing cols: ``cols[pixel, k] = x_flat[origin[pixel]
        + tap[k]]`` (``window_offsets``), W2 packed into panels (n_panels, depth, PANEL) of its
        columns (``pack_panels``), act the ReLU when ``relu``; row ``pixel`` of out is
        out_flat[out_at[pixel]:][:f] (``pixel_offsets``: rows that do not overlap).  Over (row
        block, panel) tiles, each owning its tile of out."""
        m, n_panels = out_at.size, panels.shape[0]
        for task in prange(-(-m // ROWS) * n_panels):
            gemm_tile((ROWS, PANEL), x_flat, origin, tap, panels, task % n_panels, task // n_panels * ROWS, m - 1,
                      bias, relu, out_flat, out_at)
    return implicit_gemm


def conv2d(x_pad, W, strides, out, workspace=None, bias=None, relu=False):
    """out (n, oh, ow, f), C-contiguous, = act(the 'valid' convolution of the (already padded)
    x_pad with W (kh, kw, c, f) + bias), act the ReLU when ``relu``, else the identity (no
    bias when None: zeros, x + 0 = x), by the implicit GEMM above on the tile for f (W's
    panels packed into ``workspace``'s scratch when given)."""
    if not out.flags.c_contiguous:
        raise ValueError("conv2d: expected a C-contiguous out (the kernel writes through a flat view)")
    x_pad = np.ascontiguousarray(x_pad)
    origin, tap = window_offsets(x_pad.shape, W.shape[:2], tuple(strides), out.shape[1:3])
    gemm_into(x_pad, origin, tap, W, out.reshape(-1), pixel_offsets(*out.shape), workspace, bias, relu)
    return out


def gemm_into(x_pad, origin, tap, W, out_flat, out_at, workspace=None, bias=None, relu=False):
    """out_flat's rows at ``out_at`` (``pixel_offsets``) = act(cols @ W2 + bias), cols read from
    x_pad through ``origin`` and ``tap`` (``window_offsets``), W2 = W (kh, kw, c, f) as (kh·kw·c,
    f): the implicit GEMM above on the tile for f, W's panels packed into ``workspace``'s
    scratch when given."""
    kh, kw, c, f = W.shape
    tile = tile_for(f)
    panels = pack_panels(W.reshape(kh * kw * c, f), tile[1], x_pad.dtype,
                         out=scratch_panels(workspace, (kh * kw * c, f), tile[1], x_pad.dtype))
    bias = np.zeros(f, x_pad.dtype) if bias is None else bias.astype(x_pad.dtype, copy=False)
    _implicit_gemm_kernel(*tile)(x_pad.reshape(-1), origin, tap, panels, bias, bool(relu), out_flat, out_at)


def matmul(a, b, out=None):
    """out = a @ b for 2-D a (m, depth) and b (depth, n): the 1×1 convolution of m one-pixel
    images of ``depth`` channels with b as its kernel (then cols is ``a`` itself)."""
    (m, depth), n = a.shape, b.shape[1]
    out = out if out is not None else np.empty((m, n), dtype=a.dtype)
    if not out.flags.c_contiguous:
        raise ValueError("matmul: expected a C-contiguous out (the kernel writes through a flat view)")
    conv2d(a.reshape(m, 1, 1, depth), b.reshape(1, 1, depth, n), (1, 1), out.reshape(m, 1, 1, n))
    return out


KERNEL_GRAD_PIXELS = 512     # output pixels per partial sum of ∂L/∂W, at most: so that their
                             # ∂L/∂O and input rows stay in the L2 cache (docs/performance.md)
KERNEL_GRAD_SPAN = 64        # pixels a block's tiles of ∂L/∂W take in turn, so that the span's
                             # ∂L/∂O and input rows stay in the L1 cache across the tiles


@njit(inline="always", fastmath={"contract"})
def kernel_grad_block(tile, x_flat, origin, tap, dy, span, partial, bias_sum, blk, panel, start, stop):
    """One task of ``kernel_grad``: partial[blk] = colsᵀ @ dY over the pixels start … stop − 1,
    in the PANEL columns of panel ``panel`` (``tile`` = (ROWS, PANEL)), and bias_sum[blk] = Σ dY
    over them in the same columns (``bias_sum`` empty: none).

    The block is taken ``span`` pixels at a time: every ROWS-row tile of the panel runs over
    the span's pixels, its accumulators starting from the tile's sum so far, while the span's
    input rows and ∂L/∂O stay in the L1 cache (a tile alone would stream them from L2 for
    ROWS multiply-adds per value).  When f is not a multiple of PANEL the last panel reads
    ∂L/∂O's last PANEL columns, overlapping the panel before (``kernel_grad_columns`` says
    which columns of ``partial`` hold ∂L/∂W2)."""
    rows_in_tile, width = tile
    f, depth = dy.shape[1], partial.shape[1]
    c0, p0 = np.uint64(min(panel * width, f - width)), np.uint64(panel * width)
    last = depth - 1                                # rows past the end repeat the last (not stored)
    for s0 in range(start, stop, span):
        s1 = min(s0 + span, stop)
        for k0 in range(0, depth, rows_in_tile):
            taps = table_rows(tap, k0, last)
            acc = register_tile(tile, partial.dtype)
            if s0 > start:
                for i in range(rows_in_tile):
                    for j in range(width):
                        acc[i, j] = partial[np.uint64(blk), np.uint64(min(k0 + i, last)), p0 + np.uint64(j)]
            for pixel in range(np.uint64(s0), np.uint64(s1)):      # (unsigned: no wrap of a negative index)
                values = row_values(x_flat, taps, origin[pixel], rows_in_tile)
                for j in range(width):
                    multiply_add_row(acc, j, values, dy[pixel, c0 + np.uint64(j)])
            for i in range(min(rows_in_tile, depth - k0)):  # (unsigned indices: vector loads and stores)
                for j in range(width):
                    partial[np.uint64(blk), np.uint64(k0 + i), p0 + np.uint64(j)] = acc[i, j]
        if bias_sum.shape[0] > 0:                   # (the span's rows of dY are still in cache)
            if s0 == start:
                for j in range(width):
                    bias_sum[blk, p0 + np.uint64(j)] = 0
            for pixel in range(np.uint64(s0), np.uint64(s1)):
                for j in range(width):
                    bias_sum[blk, p0 + np.uint64(j)] += dy[pixel, c0 + np.uint64(j)]


@functools.cache
def _kernel_grad_kernel(ROWS, PANEL):
    """∂L/∂W's blocked implicit GEMM compiled for one register tile, ROWS (3, 4 or 8) × PANEL."""
    @jit.kernel(fastmath={"contract"})
    def kernel_grad(x_flat, origin, tap, dy, span, partial, bias_sum):
        """partial[blk] = colsᵀ @ dY over the pixels of block ``blk`` (one of ``len(partial)``
        equal runs of consecutive output pixels), cols read through the offsets as in the
        implicit GEMM; ∂L/∂W2 = Σ_blk partial[blk]; ``bias_sum`` (float64, shaped as
        ``partial[:, 0]``, or empty for none) the blocks' sums of dY (``kernel_grad_block``).
        Parallel over (block, panel of PANEL columns) pairs, each owning its PANEL columns of
        ``partial[blk]``; the block count depends on the shape only, so the sum's order, and
        its result, do not depend on the thread count."""
        m, blocks, n_panels = dy.shape[0], partial.shape[0], -(-dy.shape[1] // PANEL)
        for task in prange(blocks * n_panels):
            blk = task // n_panels
            kernel_grad_block((ROWS, PANEL), x_flat, origin, tap, dy, span, partial, bias_sum, blk, task % n_panels,
                              blk * m // blocks, (blk + 1) * m // blocks)
    return kernel_grad


def kernel_grad_columns(f, panel):
    """The columns of ``kernel_grad``'s partial sums (n_panels·panel of them) that hold ∂L/∂W2's
    f columns: all of the full panels', then the last panel's columns past its overlap with the
    panel before (it read ∂L/∂O's last ``panel`` columns)."""
    n_panels = -(-f // panel)
    first = (n_panels - 1) * panel
    return np.r_[0:first, first + n_panels * panel - f:n_panels * panel]


class KernelGradOperands(NamedTuple):
    """``kernel_grad``'s arguments, in its order."""
    x_flat: np.ndarray
    origin: np.ndarray
    tap: np.ndarray
    dy: np.ndarray              # (n·oh·ow, f), or padded to one panel
    span: int
    partial: np.ndarray
    bias_sum: np.ndarray


def kernel_grad_operands(x_pad, dy, kernel, strides, workspace=None, bias_grad=False):
    """(tile, ``KernelGradOperands``) of ``kernel_grad`` for ∂L/∂W2 (kh·kw·c, f) = colsᵀ @ dY of
    the 'valid' convolution of x_pad: the tile for f (f narrower than its panel: ∂L/∂O zero-padded
    to one panel first); the partial sums in ``workspace``'s buffers ``'dW_blocks'`` and
    ``'db_blocks'`` when given, ∂L/∂b's (when ``bias_grad``) in float64.  ``kernel_grad_sums``
    adds them up."""
    n, oh, ow, f = dy.shape
    tile = tile_for(f, narrow=True)
    if f < tile[1]:                                 # one panel, its extra columns dropped from the result
        padded = scratch(workspace, "dy_panel", (n, oh, ow, tile[1]), dy.dtype)
        padded[..., :f] = dy
        padded[..., f:] = 0                         # (not garbage: denormals would slow the products)
        dy = padded
    x_pad = np.ascontiguousarray(x_pad)
    origin, tap = window_offsets(x_pad.shape, tuple(kernel), tuple(strides), (oh, ow))
    blocks, columns = -(-n * oh * ow // KERNEL_GRAD_PIXELS), -(-dy.shape[-1] // tile[1]) * tile[1]
    partial = scratch(workspace, "dW_blocks", (blocks, tap.size, columns), dy.dtype)
    bias_sum = scratch(workspace, "db_blocks", (blocks, columns), np.float64) if bias_grad else np.empty((0, 0))
    dy_rows = np.ascontiguousarray(dy).reshape(-1, dy.shape[-1])
    return tile, KernelGradOperands(x_pad.reshape(-1), origin, tap, dy_rows, KERNEL_GRAD_SPAN, partial, bias_sum)


def kernel_grad_sums(f, tile, operands):
    """(∂L/∂W2 (kh·kw·c, f), ∂L/∂b (f,) or None) from ``kernel_grad``'s partial sums in
    ``operands`` (``kernel_grad_operands``): the blocks' sums added up, the columns of ∂L/∂W2 kept;
    ∂L/∂b's added up in float64 and cast back."""
    dy, partial, bias_sum = operands.dy, operands.partial, operands.bias_sum
    kept = kernel_grad_columns(dy.shape[-1], tile[1])[:f]
    bias_grad = bias_sum.shape[1] > 0              # (its columns, not its size: an empty batch has no blocks)
    return partial.sum(axis=0)[:, kept], (bias_sum.sum(axis=0)[kept].astype(dy.dtype) if bias_grad else None)


def conv2d_kernel_grad(x_pad, dy, kernel, strides, workspace=None, bias_grad=False):
    """(∂L/∂W2 (kh·kw·c, f) = colsᵀ @ dY of the 'valid' convolution of x_pad, ∂L/∂b = Σ dY
    (f,) when ``bias_grad``, else None), by the blocked implicit GEMM above
    (``kernel_grad_operands``: the tile, the padding of a narrow ∂L/∂O, the buffers)."""
    tile, operands = kernel_grad_operands(x_pad, dy, kernel, strides, workspace, bias_grad)
    _kernel_grad_kernel(*tile)(*operands)
    return kernel_grad_sums(dy.shape[-1], tile, operands)
