"""im2col / col2im for NHWC tensors: turn a convolution into one matrix product.

For an input ``x`` of shape ``(n, h, w, c)``, a ``kh × kw`` window, strides
``(sh, sw)`` and padding ``(top, bottom, left, right)``::

    cols[(b, p, q), (i, j, ch)] = x_pad[b, p·sh + i, q·sw + j, ch]

so ``cols`` has shape ``(n·oh·ow, kh·kw·c)``: one row per output pixel, one column per
kernel tap.  In NHWC the window view ``(n, oh, ow, kh, kw, c)`` reshapes to that matrix
with no transpose.  ``col2im`` is the adjoint (transpose) of ``im2col``: every column
entry is *added* back to the input pixel it was copied from, so overlapping windows
sum their gradients::

    dx_pad[b, p·sh + i, q·sw + j, ch] += dcols[(b, p, q), (i, j, ch)]

The NumPy bodies below are the readable path; ``im2col``/``col2im`` run the CUDA or
Numba body instead where ``kernels/dispatch.py`` picks it (``numba_copies``).
"""
from __future__ import annotations

import numpy as np

from .dispatch import pick
from .padding import pad


def padded_windows(x_pad, kernel, strides, out_hw):
    """A read-only strided view (n, oh, ow, kh, kw, c) of the padded input (no copy)."""
    n, _, _, c = x_pad.shape
    sN, sH, sW, sC = x_pad.strides
    shape = (n, out_hw[0], out_hw[1], kernel[0], kernel[1], c)
    strides_ = (sN, strides[0] * sH, strides[1] * sW, sH, sW, sC)
    return np.lib.stride_tricks.as_strided(x_pad, shape, strides_, writeable=False)


def im2col_numpy(x, kernel, strides, pads, out_hw, out=None):
    """x (n, h, w, c) -> cols (n·oh·ow, kh·kw·c), written into ``out`` when given."""
    windows = padded_windows(pad(x, pads), kernel, strides, out_hw)
    if out is None:
        return windows.reshape(-1, kernel[0] * kernel[1] * x.shape[3])  # copies
    np.copyto(out.reshape(windows.shape), windows)
    return out


def written_into(out, values):
    """``values``, or ``out`` with ``values`` copied into it: the ``out=`` of the NumPy
    paths, which compute into a new array first."""
    if out is None:
        return values
    np.copyto(out, values)
    return out


def col2im_numpy(cols, x_shape, kernel, strides, pads, out_hw, out=None):
    """cols (n·oh·ow, kh·kw·c) -> dx (n, h, w, c): the adjoint of im2col (a sum), written
    into ``out`` when given."""
    n, h, w, c = x_shape
    (kh, kw), (sh, sw), (oh, ow) = kernel, strides, out_hw
    top, bottom, left, right = pads
    dx_pad = np.zeros((n, h + top + bottom, w + left + right, c), dtype=cols.dtype)
    cols6 = cols.reshape(n, oh, ow, kh, kw, c)
    for i in range(kh):  # kh·kw strided slice-adds, each vectorized over n, oh, ow, c
        for j in range(kw):
            dx_pad[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :] += cols6[:, :, :, i, j, :]
    return written_into(out, dx_pad[:, top:top + h, left:left + w, :])


def im2col(x, kernel, strides, pads, out_hw, out=None):
    """im2col on the kernels ``kernels/dispatch.py`` picks for x."""
    return pick(x, im2col_numpy, numba="numba_copies.im2col", cuda="cuda_kernels.im2col")(
        x, kernel, strides, pads, out_hw, out)


def col2im(cols, x_shape, kernel, strides, pads, out_hw, out=None):
    """col2im on the kernels ``kernels/dispatch.py`` picks for cols, written into ``out`` when given."""
    return pick(cols, col2im_numpy, numba="numba_copies.col2im", cuda="cuda_kernels.col2im")(
        cols, x_shape, kernel, strides, pads, out_hw, out)
