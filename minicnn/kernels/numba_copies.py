"""Numba kernels that copy: im2col, col2im and padding (``kernels/im2col.py``,
``kernels/padding.py`` hold their equations and their NumPy twins).

Parallel (``prange``) only over an axis whose iterations write disjoint outputs, so there
are no races and the results are deterministic:

* ``im2col``: over (image, output row), each owning its rows of ``cols``;
* ``col2im``: a *gather* over (image, input row): each input pixel sums the column
  entries that were copied from it (no scatter, no atomics);
* padding: over (image, padded row).

The channel axis is innermost (NHWC), so every inner loop is a contiguous run of values.
Compiled on first use for each dtype and cached on disk (``kernels/jit.py``).
"""
from __future__ import annotations

import numpy as np
from numba import prange

from . import jit

IM2COL_PIXELS_FROM_CHANNELS = 8    # below this, copying whole window rows is faster (docs/performance.md)


@jit.kernel()
def _im2col_pixels(x, cols, kh, kw, sh, sw, top, left, oh, ow):
    """For many channels: one pixel (c contiguous values) at a time, through row views."""
    n, h, w, c = x.shape
    for task in prange(n * oh):
        b, p = task // oh, task % oh
        for q in range(ow):
            row = cols[(b * oh + p) * ow + q]           # this output pixel's row of cols
            x0 = q * sw - left
            for i in range(kh):
                y = p * sh + i - top
                for j in range(kw):
                    xx, d = x0 + j, (i * kw + j) * c
                    if 0 <= y < h and 0 <= xx < w:
                        pixel = x[b, y, xx]             # c contiguous values (NHWC)
                        for ch in range(c):
                            row[d + ch] = pixel[ch]
                    else:                               # zero padding
                        for ch in range(c):
                            row[d + ch] = 0


@jit.kernel()
def _im2col_window_rows(x, cols, kh, kw, sh, sw, top, left, oh, ow):
    """For few channels: a window row inside the image is kw·c contiguous values of x."""
    n, h, w, c = x.shape
    xf, cf = x.reshape(-1), cols.reshape(-1)            # flat views: plain offset arithmetic
    k_size = kh * kw * c
    for task in prange(n * oh):
        b, p = task // oh, task % oh
        for q in range(ow):
            dst = ((b * oh + p) * ow + q) * k_size
            x0 = q * sw - left
            for i in range(kh):
                y = p * sh + i - top
                d = dst + i * kw * c
                if 0 <= y < h and 0 <= x0 and x0 + kw <= w:     # the kernel row lies inside: kw·c
                    src, dst_row = np.uint64(((b * h + y) * w + x0) * c), np.uint64(d)   # contiguous values
                    for k in range(np.uint64(kw * c)):          # (unsigned: no negative-index check)
                        cf[dst_row + k] = xf[src + k]
                    continue
                for j in range(kw):
                    xx = x0 + j
                    if 0 <= y < h and 0 <= xx < w:
                        src = ((b * h + y) * w + xx) * c
                        for ch in range(c):
                            cf[d + j * c + ch] = xf[src + ch]
                    else:
                        for ch in range(c):
                            cf[d + j * c + ch] = 0


@jit.kernel()
def _col2im(cols, dx, kh, kw, sh, sw, top, left, oh, ow):
    n, h, w, c = dx.shape
    for task in prange(n * h):
        b, y = task // h, task % h
        row = dx[b, y]                                  # (w, c): this task's input row
        row[:] = 0
        for i in range(kh):
            t = y + top - i                             # the output row p that read input row y
            if t < 0 or t % sh != 0 or t // sh >= oh:   # through kernel row i has p·sh = t
                continue
            first = (b * oh + t // sh) * ow             # its first row of cols
            for q in range(ow):
                src = cols[first + q]
                for j in range(kw):
                    xx = q * sw + j - left
                    if 0 <= xx < w:
                        base = (i * kw + j) * c
                        for ch in range(c):
                            row[xx, ch] += src[base + ch]


@jit.kernel()
def _pad(x, out, top, left, value):
    """out = x framed by ``value`` (top rows, left columns, and the rest after); over
    (image, row of out)."""
    n, h, w, _ = x.shape
    hp = out.shape[1]
    for task in prange(n * hp):
        b, y = task // hp, task % hp
        row = out[b, y]
        if y < top or y >= top + h:
            row[:] = value
        else:
            row[:left] = value
            row[left:left + w] = x[b, y - top]
            row[left + w:] = value


def pad_into(x, pads, value, out):
    """out = x (n, h, w, c) framed by ``value``: pads = (top, bottom, left, right)."""
    _pad(np.ascontiguousarray(x), out, pads[0], pads[2], out.dtype.type(value))
    return out


def im2col(x, kernel, strides, pads, out_hw, out=None):
    n, _, _, c = x.shape
    if out is None:
        out = np.empty((n * out_hw[0] * out_hw[1], kernel[0] * kernel[1] * c), dtype=x.dtype)
    kernel_fn = _im2col_pixels if c >= IM2COL_PIXELS_FROM_CHANNELS else _im2col_window_rows
    kernel_fn(np.ascontiguousarray(x), out, kernel[0], kernel[1], strides[0], strides[1],
              pads[0], pads[2], out_hw[0], out_hw[1])
    return out


def col2im(cols, x_shape, kernel, strides, pads, out_hw, out=None):
    dx = out if out is not None else np.empty(x_shape, dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), dx, kernel[0], kernel[1], strides[0], strides[1],
            pads[0], pads[2], out_hw[0], out_hw[1])
    return dx
