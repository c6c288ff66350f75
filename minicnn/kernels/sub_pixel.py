"""∂L/∂X of a strided convolution as s_h·s_w stride-1 convolutions, one per *phase* (the
sub-pixel decomposition), on the Numba implicit GEMM: no column matrix and no col2im.

Along one axis (the other is alike), with ``u = r + top`` the row of x_pad that input row r
is, the forward ``y[p] = Σ_i x_pad[p·s + i] · W[i]`` gives

    ∂L/∂x_pad[u] = Σ_{i : (u − i) / s = p is an output row} dy[p] · W[i]

Only the taps ``i ≡ u (mod s)`` reach row u.  Rows of one phase ``a = u mod s`` share them,
``i = a + s·k`` for k < K_a = ⌈(kh − a) / s⌉, and with u = a + s·U, p = U − k:

    ∂L/∂x_pad[a + s·U] = Σ_k dy[U − k] · W[a + s·k]
                       = Σ_k' dy_pad[U + k'] · W[a + s·(K_a − 1 − k')]

the 'valid' stride-1 convolution of dy padded by K_a − 1 with the phase's taps in reverse
order: the stride-1 rule ∂L/∂X = pad(∂L/∂Y) ⊛ rot180(W) on the phase's sub-kernel.  Each
phase's output is every s-th row and column of ∂L/∂x, which the implicit GEMM stores into
directly.  (A kernel smaller than the strides leaves phases without taps, zeros: col2im's
case, ``kernels/conv_plan.py``.)  Together the phases multiply about as many values as
col2im's product — fewer or more at the borders (``overwork``) — and write ∂L/∂x once, where
col2im writes a column matrix kh·kw/(s_h·s_w) times its size and reads it back.
"""
from __future__ import annotations

import numpy as np

from . import implicit_gemm
from .conv_plan import phases_have_taps
from .implicit_gemm import pixel_offsets, window_offsets
from .padding import pad, padded_shape


def axis_phases(size, kernel, stride, before):
    """(phases, pad_before) of one axis: dy is padded by ``pad_before`` = max K_a − 1, and each
    phase that holds input rows is (first, count, taps, shift): its input rows r = first,
    first + stride, … (``count`` of them), its taps i = a + s·k (k ascending), and where its
    first window starts in the padded dy: shift = pad_before − (K_a − 1) + U₀, U₀ its first U."""
    pad_before = -(-kernel // stride) - 1
    phases = []
    for a in range(stride):
        u0 = a + stride * -(-(before - a) // stride)            # the first row u ≥ before with u ≡ a
        if u0 - before < size:
            taps = list(range(a, kernel, stride))
            phases.append((u0 - before, -(-(size - u0 + before) // stride), taps,
                           pad_before - (len(taps) - 1) + (u0 - a) // stride))
    return phases, pad_before


def pad_after(phases, pad_before, out_size):
    """The padding after dy's end (in rows) that the phases' windows reach."""
    reach = max(shift + count + len(taps) - 1 for _, count, taps, shift in phases)
    return max(0, reach - pad_before - out_size)


def overwork(x_shape, kernel, strides, pads, out_hw):
    """The phases' multiply-adds over col2im's product's: Σ_phases count·K along each axis
    against out_size·kernel (a 'valid' border adds windows that read only padding)."""
    ratio = 1.0
    for size, k, s, before, out in zip(x_shape[1:3], kernel, strides, pads[::2], out_hw):
        ratio *= sum(count * len(taps) for _, count, taps, _ in axis_phases(size, k, s, before)[0]) / (out * k)
    return ratio


def conv2d_input_grad(dy, W, x_shape, strides, pads, dx, workspace):
    """dx (x_shape, C-contiguous, written) = ∂L/∂X of the convolution of x (``x_shape``) with W
    (kh, kw, c, f), ``strides``, ``pads`` (top, bottom, left, right), from dy (n, oh, ow, f):
    dy padded once into ``workspace``, then each phase's convolution stored straight into
    its pixels of dx (the implicit GEMM through ``pixel_offsets``)."""
    n, h, w, c = x_shape
    kh, kw = W.shape[:2]
    (sh, sw), (top, _, left, _), (_, oh, ow, _) = strides, pads, dy.shape
    if not phases_have_taps((kh, kw), (sh, sw)):
        raise ValueError(f"sub_pixel.conv2d_input_grad: expected a kernel at least as large as the strides (every "
                         f"phase with taps), received kernel {(kh, kw)}, strides {(sh, sw)}")
    row_phases, pad_top = axis_phases(h, kh, sh, top)
    col_phases, pad_left = axis_phases(w, kw, sw, left)
    dy_pads = (pad_top, pad_after(row_phases, pad_top, oh), pad_left, pad_after(col_phases, pad_left, ow))
    dy_pad = (pad(dy, dy_pads, out=workspace.get("sub_pixel_dy", padded_shape(dy.shape, dy_pads), dy.dtype))
              if any(dy_pads) else np.ascontiguousarray(dy))
    for first_r, count_r, taps_r, shift_r in row_phases:
        for first_c, count_c, taps_c, shift_c in col_phases:
            sub = W[taps_r[::-1]][:, taps_c[::-1]].transpose(0, 1, 3, 2)     # (K_a, K_b, f, c), reversed
            origin, tap = window_offsets(dy_pad.shape, sub.shape[:2], (1, 1), (count_r, count_c), (shift_r, shift_c))
            out_at = pixel_offsets(n, count_r, count_c, c, (first_r, first_c), (sh, sw), (h, w))
            implicit_gemm.gemm_into(dy_pad, origin, tap, np.ascontiguousarray(sub), dx.reshape(-1), out_at, workspace)
    return dx
