"""Numba kernels of 2-D max pooling (``kernels/pool.py`` holds the equations and the
NumPy twins): the forward parallel over (image, output row), each owning its rows of y
and of the switches; the backward over images (each image's windows only touch that
image's dx).  Offsets are unsigned: Numba checks a signed index for being negative.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import prange

from . import jit


@functools.cache
def _maxpool_forward_kernel(SWITCHES):
    """The forward kernel, writing the switches when SWITCHES (a compile-time constant: a
    forward no backward follows writes none, and the arg-max is then dead code)."""

    @jit.kernel()
    def maxpool_forward(x, y, switches, ph, pw, sh, sw, top, left):
        """Over flat views with unsigned offsets (so no negative-index check)."""
        n, h, w, c = x.shape
        _, oh, ow, _ = y.shape
        xf, yf, sf, channels = x.reshape(-1), y.reshape(-1), switches.reshape(-1), np.uint64(c)
        for task in prange(n * oh):
            b, p = task // oh, task % oh
            for q in range(ow):
                o = np.uint64(((b * oh + p) * ow + q) * c)     # this window's running max and argmax,
                inside = max(0, top - p * sh) * pw + max(0, left - q * sw)   # over all channels at once;
                for ch in range(channels):                      # the argmax starts inside the image
                    yf[o + ch] = -np.inf
                    if SWITCHES:
                        sf[o + ch] = inside
                for i in range(ph):
                    yy = p * sh + i - top
                    if yy < 0 or yy >= h:
                        continue
                    for j in range(pw):
                        xx = q * sw + j - left
                        if xx < 0 or xx >= w:
                            continue
                        k, pixel = np.int32(i * pw + j), np.uint64(((b * h + yy) * w + xx) * c)
                        for ch in range(channels):              # branchless, so the loop vectorizes
                            better = xf[pixel + ch] > yf[o + ch]    # strict '>' keeps the first maximum
                            yf[o + ch] = xf[pixel + ch] if better else yf[o + ch]
                            if SWITCHES:
                                sf[o + ch] = k if better else sf[o + ch]
    return maxpool_forward


@jit.kernel()
def _maxpool_backward(dy, switches, y, relu_gate, dx, routed, ph, pw, sh, sw, top, left):
    """Each window adds its gradient at the pixel its switch names: switch k = i·pw + j
    lies ``offset[k] = (i·w + j)·c`` values after the window's first pixel (a table
    made once, so no division per element).  With ``relu_gate`` the gradient is first
    gated by [y > 0] (the backward of a ReLU below the pool, ``kernels/pool.py``);
    ``routed[b, ch]`` sums what image b routed.  Unsigned offsets, as in the forward (a
    window's first pixel may lie in the padding, before its image: the unsigned sum
    wraps back into it)."""
    n, h, w, c = dx.shape
    _, oh, ow, _ = dy.shape
    offset = np.empty(ph * pw, np.uint64)
    for k in range(ph * pw):
        offset[k] = ((k // pw) * w + k % pw) * c
    gf, sf, yf, df, channels = dy.reshape(-1), switches.reshape(-1), y.reshape(-1), dx.reshape(-1), np.uint64(c)
    for b in prange(n):                             # each image owns its slice of dx
        df[b * h * w * c:(b + 1) * h * w * c] = 0
        routed[b] = 0
        for p in range(oh):
            for q in range(ow):
                o = np.uint64(((b * oh + p) * ow + q) * c)
                first = np.uint64(((b * h + p * sh - top) * w + q * sw - left) * c)   # the window's (0, 0)
                for ch in range(channels):          # += : overlapping windows add up
                    g = gf[o + ch] if not relu_gate or yf[o + ch] > 0 else 0
                    df[first + offset[sf[o + ch]] + ch] += g
                    routed[b, ch] += g


def maxpool_forward(x, pool, strides, pads, out_hw, out=None, switches=True):
    """(y, switches), or (y, None) without ``switches``; ``out``: the buffers (y, switches or None)."""
    n, _, _, c = x.shape
    y, into = out if out is not None else (np.empty((n, *out_hw, c), dtype=x.dtype), None)
    if switches and into is None:
        into = np.empty((n, *out_hw, c), dtype=np.int32)
    _maxpool_forward_kernel(bool(switches))(np.ascontiguousarray(x), y, into if switches else np.empty((0,), np.int32),
                                            pool[0], pool[1], strides[0], strides[1], pads[0], pads[2])
    return y, into if switches else None


def maxpool_backward(dy, switches, x_shape, pool, strides, pads, out=None):
    """dx (x_shape) from dy, routed through the switches."""
    return _route(dy, switches, x_shape, pool, strides, pads, out, None)[0]


def maxpool_relu_backward(dy, switches, x_shape, pool, strides, pads, out, relu_output):
    """``(dz, ∂L/∂b)`` of the ReLU below the pool, whose output (the ReLU's, pooled) is
    ``relu_output`` (see ``kernels/pool.py``)."""
    dz, routed = _route(dy, switches, x_shape, pool, strides, pads, out, relu_output)
    return dz, routed.sum(axis=0).astype(dy.dtype)


def _route(dy, switches, x_shape, pool, strides, pads, out, relu_output):
    """(dx, per-image sums of what was routed, float64) by ``_maxpool_backward``, gated by
    [relu_output > 0] when ``relu_output`` is given."""
    dx = out if out is not None else np.empty(x_shape, dtype=dy.dtype)
    routed = np.empty((x_shape[0], x_shape[3]), np.float64)
    gated = relu_output is not None
    y = relu_output if gated else dy                # (ungated: y is not read)
    _maxpool_backward(np.ascontiguousarray(dy), switches, y, gated, dx, routed,
                      pool[0], pool[1], strides[0], strides[1], pads[0], pads[2])
    return dx, routed
