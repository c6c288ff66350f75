"""Numba CPU kernels for the copy-heavy ops; the math is that of the NumPy versions.

Parallelism (``prange``) is only ever over an axis whose iterations write disjoint
outputs, so there are no races and results are deterministic:

* ``im2col``: over (image, output row) — each owns its rows of ``cols``;
* ``col2im``: a *gather* over (image, input row) — each input pixel sums the column
  entries that were copied from it (no scatter, no atomics);
* max-pool forward: over (image, output row); backward: over images (each image's
  windows only touch that image's ``dx``).

Compiled on first use for each dtype and cached on disk (``cache=True``).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _im2col(x, cols, kh, kw, sh, sw, top, left, oh, ow):
    n, h, w, c = x.shape
    for task in prange(n * oh):
        b, p = task // oh, task % oh
        for q in range(ow):
            row = (b * oh + p) * ow + q
            for i in range(kh):
                y = p * sh + i - top
                for j in range(kw):
                    xx = q * sw + j - left
                    col = (i * kw + j) * c
                    if 0 <= y < h and 0 <= xx < w:
                        for ch in range(c):
                            cols[row, col + ch] = x[b, y, xx, ch]
                    else:
                        for ch in range(c):
                            cols[row, col + ch] = 0


@njit(parallel=True, cache=True)
def _col2im(cols, dx, kh, kw, sh, sw, top, left, oh, ow):
    n, h, w, c = dx.shape
    for task in prange(n * h):
        b, y = task // h, task % h
        for xx in range(w):
            for ch in range(c):
                dx[b, y, xx, ch] = 0
            for i in range(kh):
                py = y + top - i                    # output row p with p·sh + i = y + top
                if py < 0 or py % sh != 0 or py // sh >= oh:
                    continue
                p = py // sh
                for j in range(kw):
                    qx = xx + left - j
                    if qx < 0 or qx % sw != 0 or qx // sw >= ow:
                        continue
                    row = (b * oh + p) * ow + qx // sw
                    col = (i * kw + j) * c
                    for ch in range(c):
                        dx[b, y, xx, ch] += cols[row, col + ch]


@njit(parallel=True, cache=True)
def _maxpool_forward(x, y, switches, ph, pw, sh, sw, top, left):
    n, h, w, c = x.shape
    _, oh, ow, _ = y.shape
    for task in prange(n * oh):
        b, p = task // oh, task % oh
        for q in range(ow):
            for ch in range(c):
                best = -np.inf
                arg = 0
                for i in range(ph):
                    yy = p * sh + i - top
                    for j in range(pw):
                        xx = q * sw + j - left
                        if 0 <= yy < h and 0 <= xx < w and x[b, yy, xx, ch] > best:
                            best = x[b, yy, xx, ch]   # strict '>' keeps the first maximum
                            arg = i * pw + j
                y[b, p, q, ch] = best
                switches[b, p, q, ch] = arg


@njit(parallel=True, cache=True)
def _maxpool_backward(dy, switches, dx, pw, sh, sw, top, left):
    n, h, w, c = dx.shape
    _, oh, ow, _ = dy.shape
    for b in prange(n):
        dx[b] = 0
        for p in range(oh):
            for q in range(ow):
                for ch in range(c):
                    k = switches[b, p, q, ch]
                    yy = p * sh + k // pw - top
                    xx = q * sw + k % pw - left
                    dx[b, yy, xx, ch] += dy[b, p, q, ch]


def im2col(x, kernel, strides, pads, out_hw, out=None):
    n, _, _, c = x.shape
    if out is None:
        out = np.empty((n * out_hw[0] * out_hw[1], kernel[0] * kernel[1] * c), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), out, kernel[0], kernel[1], strides[0], strides[1],
            pads[0], pads[2], out_hw[0], out_hw[1])
    return out


def col2im(cols, x_shape, kernel, strides, pads, out_hw):
    dx = np.empty(x_shape, dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), dx, kernel[0], kernel[1], strides[0], strides[1],
            pads[0], pads[2], out_hw[0], out_hw[1])
    return dx


def maxpool_forward(x, pool, strides, pads, out_hw):
    n, _, _, c = x.shape
    y = np.empty((n, out_hw[0], out_hw[1], c), dtype=x.dtype)
    switches = np.empty(y.shape, dtype=np.int32)
    _maxpool_forward(np.ascontiguousarray(x), y, switches, pool[0], pool[1],
                     strides[0], strides[1], pads[0], pads[2])
    return y, switches


def maxpool_backward(dy, switches, x_shape, pool, strides, pads):
    dx = np.empty(x_shape, dtype=dy.dtype)
    _maxpool_backward(np.ascontiguousarray(dy), switches, dx, pool[1],
                      strides[0], strides[1], pads[0], pads[2])
    return dx
