"""2-D average pooling, NHWC, on NumPy or CuPy arrays alike (``xp`` is the array's module).

For a ``ph × pw`` window with strides ``(sh, sw)`` over the zero-padded input, ``count[p, q]``
the number of the window's cells that lie inside the image (``ph·pw`` for 'valid'; fewer at
the edges for 'same', which averages over the valid cells only, as TensorFlow does)::

    y[b, p, q, ch] = 1/count[p, q] · Σ_{i,j} x_pad[b, p·sh + i, q·sw + j, ch]
    ∂L/∂x_pad[b, p·sh + i, q·sw + j, ch] += dy[b, p, q, ch] / count[p, q]

Both are ``ph·pw`` strided slice-adds, each vectorized over the batch, the output pixels and
the channels (the window view of ``im2col.padded_windows`` is NumPy only).
"""
from __future__ import annotations

from .. import backend


def valid_cells(n, k, s, pad_before, out):
    """For one axis: how many of each window's k cells fall inside [0, n)."""
    starts = [p * s - pad_before for p in range(out)]
    return [min(start + k, n) - max(start, 0) for start in starts]


def cell_counts(xp, x_shape, pool, strides, pads, out_hw, dtype):
    """count[p, q], shaped (1, oh, ow, 1) to broadcast against the output."""
    rows = valid_cells(x_shape[1], pool[0], strides[0], pads[0], out_hw[0])
    cols = valid_cells(x_shape[2], pool[1], strides[1], pads[2], out_hw[1])
    return xp.asarray(rows, dtype=dtype)[None, :, None, None] * xp.asarray(cols, dtype=dtype)[None, None, :, None]


def window_slices(i, j, strides, out_hw):
    """The cells ``x_pad[:, p·sh + i, q·sw + j, :]`` of every output pixel, as one slice."""
    (sh, sw), (oh, ow) = strides, out_hw
    return (slice(None), slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw), slice(None))


def avgpool_forward(x, pool, strides, pads, out_hw):
    xp = backend.get_array_module(x)
    top, bottom, left, right = pads
    x_pad = xp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    total = xp.zeros((x.shape[0], *out_hw, x.shape[3]), dtype=x.dtype)
    for i in range(pool[0]):
        for j in range(pool[1]):
            total += x_pad[window_slices(i, j, strides, out_hw)]
    return total / cell_counts(xp, x.shape, pool, strides, pads, out_hw, x.dtype)


def avgpool_backward(dy, x_shape, pool, strides, pads):
    xp = backend.get_array_module(dy)
    n, h, w, c = x_shape
    top, bottom, left, right = pads
    out_hw = dy.shape[1:3]
    share = dy / cell_counts(xp, x_shape, pool, strides, pads, out_hw, dy.dtype)
    dx_pad = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=dy.dtype)
    for i in range(pool[0]):
        for j in range(pool[1]):
            dx_pad[window_slices(i, j, strides, out_hw)] += share
    return dx_pad[:, top:top + h, left:left + w, :]
