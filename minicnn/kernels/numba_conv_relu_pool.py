"""The Numba kernel of a conv + ReLU + 2×2 max-pool forward (``kernels/conv_relu_pool.py``
holds the equations): the implicit GEMM (``kernels/implicit_gemm.py``) with each register
tile's rows the 4 pixels of one pooling window, the bias, ReLU and max applied to the
accumulators instead of storing them.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from . import jit
from .implicit_gemm import window_offsets
from .register_tiles import four_row_tile, pack_panels, register_tile, scratch_panels, table_rows, tile_products


@njit(inline="always")
def _relu_max_of_4(acc, j, b):
    """(max, first arg-max) over the tile's 4 rows of relu(acc[r, j] + b), branch-free."""
    best, arg = max(acc[0, j] + b, 0), np.int32(0)
    for r in range(1, 4):
        v = max(acc[r, j] + b, 0)
        arg = np.int32(r) if v > best else arg      # strict '>' keeps the first maximum
        best = v if v > best else best
    return best, arg


@njit(inline="always")
def _store_window(acc, j, bias, y, switches, w, c0, switches_kept):
    """y[w, c0 + j] = the window's max of relu(acc[:, j] + b), and its arg-max into switches
    when ``switches_kept`` (a compile-time constant)."""
    window, column = np.uint64(w), np.uint64(c0 + j)     # unsigned: vector stores, not scatters
    best, arg = _relu_max_of_4(acc, j, bias[column])
    y[window, column] = best
    if switches_kept:
        switches[window, column] = arg


@functools.cache
def _implicit_gemm_relu_maxpool_kernel(PANEL, SWITCHES):
    """The fused kernel compiled for the register tile 4 × PANEL: one 2×2 pooling window per
    tile, its 4 pixels the tile's rows; with SWITCHES False it writes no switches (a forward
    no backward follows: the arg-max is then dead code, which LLVM drops)."""

    @jit.kernel(fastmath={"contract"})
    def implicit_gemm_relu_maxpool(x_flat, windows, tap, panels, bias, y, switches):
        """y[w] = max over the 4 pixels of 2×2 window w of relu(cols[pixel] @ W2 + b), and
        the window index (0 … 3) of that maximum in ``switches[w]`` (when SWITCHES): the implicit GEMM with
        the window's pixels ``windows[w]`` (their origins) as the tile's rows, and the
        bias, ReLU and max-pool applied to the accumulators instead of storing them.
        Over (window, panel) tiles, each owning its (window, panel) part of y."""
        m, f = y.shape
        n_panels = panels.shape[0]
        for task in prange(m * n_panels):
            w, panel = task // n_panels, task % n_panels
            c0 = panel * PANEL
            acc = register_tile((4, PANEL), y.dtype)
            tile_products(acc, x_flat, table_rows(windows[w], 0, 3), tap, panels, panel)
            if c0 + PANEL <= f:                     # (a fixed trip count: vector code)
                for j in range(PANEL):
                    _store_window(acc, j, bias, y, switches, w, c0, SWITCHES)
            else:
                for j in range(f - c0):
                    _store_window(acc, j, bias, y, switches, w, c0, SWITCHES)
    return implicit_gemm_relu_maxpool


@functools.lru_cache(maxsize=64)
def window_pixels(x_pad_shape, kernel, strides, out_hw):
    """The origins (``window_offsets``) of the 4 conv output pixels of each 2×2 pooling
    window, (n·ph·pw, 4) in the window's row-major order (its switch numbering); a last
    odd row or column of pixels, in no window, is left out.  Read-only."""
    origin, _ = window_offsets(x_pad_shape, kernel, strides, out_hw)
    (oh, ow), n = out_hw, x_pad_shape[0]
    ph, pw = oh // 2, ow // 2
    pixels = origin.reshape(n, oh, ow)[:, :2 * ph, :2 * pw].reshape(n, ph, 2, pw, 2)
    windows = np.ascontiguousarray(pixels.transpose(0, 1, 3, 2, 4)).reshape(n * ph * pw, 4)
    windows.flags.writeable = False
    return windows


def conv2d_relu_maxpool(x_pad, W, b, strides, conv_hw, y, switches=None, workspace=None):
    """y (n, ph, pw, f) = maxpool2×2(relu(conv(x_pad, W) + b)) of the conv's (oh, ow) =
    ``conv_hw`` output pixels, with the pool's switches (None: none written), without forming
    that output (W's panels packed into ``workspace``'s scratch when given)."""
    kh, kw, c, f = W.shape
    x_pad = np.ascontiguousarray(x_pad)
    windows = window_pixels(x_pad.shape, (kh, kw), tuple(strides), tuple(conv_hw))
    _, tap = window_offsets(x_pad.shape, (kh, kw), tuple(strides), tuple(conv_hw))
    panel = four_row_tile(f)[1]
    panels = pack_panels(W.reshape(kh * kw * c, f), panel, x_pad.dtype,
                         out=scratch_panels(workspace, (kh * kw * c, f), panel, x_pad.dtype))
    kept = switches is not None
    _implicit_gemm_relu_maxpool_kernel(panel, kept)(x_pad.reshape(-1), windows, tap, panels, b, y.reshape(-1, f),
                                                    switches.reshape(-1, f) if kept else np.empty((0, 0), np.int32))
    return y, switches
