"""A 1×1 convolution's backward in one pass over ∂L/∂Y (``conv_plan``'s ∂L/∂X algorithm
'one_pass'; Numba).

With a 1×1 kernel and stride 1, output pixel p reads input pixel p alone, so both products of
the backward read ∂L/∂Y (n·h·w, f) row by row, the same rows::

    ∂L/∂W2 = Xᵀ · ∂L/∂Y          (c, f)
    ∂L/∂X  = ∂L/∂Y · W2ᵀ         (n·h·w, c)

Run apart (``implicit_gemm.conv2d_kernel_grad``, then ``implicit_gemm.conv2d``) each streams all
of ∂L/∂Y from memory.  Here a task takes one block of pixels through both: the block's rows
of ∂L/∂X (``implicit_gemm.gemm_tile``), which stream its rows of ∂L/∂Y in order, then its
partial sum of ∂L/∂W2 (``implicit_gemm.kernel_grad_block``, panel by panel), whose reads of
∂L/∂Y, span by span, find them in the L2 cache (∂L/∂W's kernel alone waits on memory at the
start of every span).  Both read ∂L/∂Y as ∂L/∂W's kernel does (padded to one panel when f is
narrower).  ∂L/∂W's blocks, tiles and sums are its kernel's, and each value of ∂L/∂X sums
over f in the implicit GEMM's order (its tiles start at each block's first pixel, which
changes no sum), so the results are the two kernels' to the last bit.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import prange

from . import jit
from .implicit_gemm import (gemm_tile, kernel_grad_block, kernel_grad_operands, kernel_grad_sums, pixel_offsets,
                            window_offsets)
from .register_tiles import pack_panels, scratch_panels, tile_for


@functools.cache
def _one_pass_kernel(KERNEL_GRAD_TILE, INPUT_GRAD_TILE):
    """The one-pass backward compiled for ∂L/∂W's register tile and ∂L/∂X's."""
    @jit.kernel(fastmath={"contract"})
    def pointwise_backward(x_flat, origin, tap, dy, span, partial, bias_sum, dy_flat, dy_origin, dy_taps, panels,
                           zeros, dx_flat, dx_at):
        """``kernel_grad``'s partial sums and bias sums (its first seven arguments), and ∂L/∂X
        = cols @ W2ᵀ with cols[pixel, k] = dy_flat[dy_origin[pixel] + dy_taps[k]], W2ᵀ packed into
        ``panels``, stored at ``dx_at`` (``zeros``: no bias): parallel over blocks of pixels,
        each taking its block through both."""
        m, blocks = dy.shape[0], partial.shape[0]
        n_panels, n_dx_panels = -(-dy.shape[1] // KERNEL_GRAD_TILE[1]), panels.shape[0]
        for blk in prange(blocks):
            start, stop = blk * m // blocks, (blk + 1) * m // blocks
            for r0 in range(start, stop, INPUT_GRAD_TILE[0]):
                for dx_panel in range(n_dx_panels):
                    gemm_tile(INPUT_GRAD_TILE, dy_flat, dy_origin, dy_taps, panels, dx_panel, r0, stop - 1, zeros,
                              False, dx_flat, dx_at)
            for panel in range(n_panels):                           # (the block's rows of dY are in L2 now)
                kernel_grad_block(KERNEL_GRAD_TILE, x_flat, origin, tap, dy, span, partial, bias_sum, blk, panel,
                                  start, stop)
    return pointwise_backward


def conv2d_backward(x, dy, W, dx, workspace=None, bias_grad=True):
    """(∂L/∂X, ∂L/∂W, ∂L/∂b or None) of the convolution of x (n, h, w, c) with the 1×1 kernel
    W (1, 1, c, f), stride 1, from dy (n, h, w, f), in one pass over dy; ∂L/∂X written into dx
    (x's shape, C-contiguous)."""
    n, h, w, c = x.shape
    f = W.shape[-1]
    if W.shape[:2] != (1, 1) or dy.shape[:3] != x.shape[:3] or dx.shape != x.shape or not dx.flags.c_contiguous:
        raise ValueError(f"pointwise.conv2d_backward: expected a (1, 1, c, f) kernel, dy of x's pixels and a "
                         f"C-contiguous dx of x's shape {x.shape}, received kernel {W.shape}, dy {dy.shape}, "
                         f"dx {dx.shape} (C-contiguous: {dx.flags.c_contiguous})")
    kernel_grad_tile, operands = kernel_grad_operands(x, dy, (1, 1), (1, 1), workspace, bias_grad)
    input_grad_tile = tile_for(c)
    panels = pack_panels(W.reshape(c, f).T, input_grad_tile[1], dy.dtype,
                         out=scratch_panels(workspace, (f, c), input_grad_tile[1], dy.dtype))
    dy_rows = operands.dy                           # (n·h·w, f), or padded to a panel: as ∂L/∂W reads it
    dy_origin, dy_taps = window_offsets((n, h, w, dy_rows.shape[1]), (1, 1), (1, 1), (h, w))
    _one_pass_kernel(kernel_grad_tile, input_grad_tile)(*operands, dy_rows.reshape(-1), dy_origin, dy_taps[:f],
                                                        panels, np.zeros(c, dy.dtype), dx.reshape(-1),
                                                        pixel_offsets(n, h, w, c))
    dW2, db = kernel_grad_sums(f, kernel_grad_tile, operands)
    return dx, dW2.reshape(W.shape), db
