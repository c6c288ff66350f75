"""Numba CPU kernels for the copy-heavy ops; the math is that of the NumPy versions.

Parallelism (``prange``) is only ever over an axis whose iterations write disjoint
outputs, so there are no races and results are deterministic:

* ``im2col``: over (image, output row) — each owns its rows of ``cols``;
* ``col2im``: a *gather* over (image, input row) — each input pixel sums the column
  entries that were copied from it (no scatter, no atomics);
* max-pool forward: over (image, output row); backward: over images (each image's
  windows only touch that image's ``dx``);
* ReLU backward from the output (``dz = da · [a > 0]`` in one pass): over elements.

Arrays are walked through flat views with explicit offsets and the channel axis
innermost, so the inner loops are contiguous.

Compiled on first use for each dtype and cached on disk (``cache=True``).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _im2col(x, cols, kh, kw, sh, sw, top, left, oh, ow):
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
                if 0 <= y < h and 0 <= x0 and x0 + kw <= w:     # the kernel row lies inside:
                    src = ((b * h + y) * w + x0) * c            # kw·c contiguous values (NHWC)
                    for k in range(kw * c):
                        cf[d + k] = xf[src + k]
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


@njit(parallel=True, cache=True)
def _col2im(cols, dx, kh, kw, sh, sw, top, left, oh, ow):
    n, h, w, c = dx.shape
    cf, df = cols.reshape(-1), dx.reshape(-1)
    k_size = kh * kw * c
    for task in prange(n * h):
        b, y = task // h, task % h
        for xx in range(w):
            d = ((b * h + y) * w + xx) * c
            for ch in range(c):
                df[d + ch] = 0
            for i in range(kh):
                py = y + top - i                    # output row p with p·sh + i = y + top
                if py < 0 or py % sh != 0 or py // sh >= oh:
                    continue
                for j in range(kw):
                    qx = xx + left - j
                    if qx < 0 or qx % sw != 0 or qx // sw >= ow:
                        continue
                    src = ((b * oh + py // sh) * ow + qx // sw) * k_size + (i * kw + j) * c
                    for ch in range(c):
                        df[d + ch] += cf[src + ch]


@njit(parallel=True, cache=True)
def _maxpool_forward(x, y, switches, ph, pw, sh, sw, top, left):
    n, h, w, c = x.shape
    _, oh, ow, _ = y.shape
    xf, yf, sf = x.reshape(-1), y.reshape(-1), switches.reshape(-1)
    for task in prange(n * oh):
        b, p = task // oh, task % oh
        for q in range(ow):
            o = ((b * oh + p) * ow + q) * c
            for ch in range(c):
                yf[o + ch] = -np.inf
                sf[o + ch] = 0
            for i in range(ph):
                yy = p * sh + i - top
                if yy < 0 or yy >= h:
                    continue
                for j in range(pw):
                    xx = q * sw + j - left
                    if xx < 0 or xx >= w:
                        continue
                    src, k = ((b * h + yy) * w + xx) * c, i * pw + j
                    for ch in range(c):              # branchless, so the loop vectorizes
                        v, best = xf[src + ch], yf[o + ch]
                        better = v > best            # strict '>' keeps the first maximum
                        yf[o + ch] = v if better else best
                        sf[o + ch] = k if better else sf[o + ch]


@njit(parallel=True, cache=True)
def _maxpool_backward(dy, switches, dx, pw, sh, sw, top, left):
    n, h, w, c = dx.shape
    _, oh, ow, _ = dy.shape
    gf, sf, df = dy.reshape(-1), switches.reshape(-1), dx.reshape(-1)
    for b in prange(n):                             # each image owns its slice of dx
        df[b * h * w * c:(b + 1) * h * w * c] = 0
        for p in range(oh):
            for q in range(ow):
                o = ((b * oh + p) * ow + q) * c
                for ch in range(c):
                    k = sf[o + ch]
                    yy, xx = p * sh + k // pw - top, q * sw + k % pw - left
                    df[((b * h + yy) * w + xx) * c + ch] += gf[o + ch]


@njit(parallel=True, cache=True)
def relu_backward(da, a, dz):
    """dz = da · [a > 0] (a = relu output, so a > 0 exactly where z > 0), flat arrays."""
    for i in prange(da.size):
        dz[i] = da[i] if a[i] > 0 else 0


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
