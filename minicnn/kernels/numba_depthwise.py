"""Numba kernels of the depthwise convolution (``kernels/depthwise.py`` holds the equations
and the NumPy twins, with the same calling convention).

The forward runs in parallel over (image, output row): each task owns its row of y and, per
output pixel, accumulates the ``kh·kw`` taps channel by channel (the innermost loop over the
contiguous channels vectorizes).  The backward runs in parallel over images: image b's
windows touch only image b's ∂L/∂x, and each image sums its own ∂L/∂W into its own slice of
a partial array, added over the images at the end, so no two threads write the same cell.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from . import jit


@jit.kernel()
def _forward(x_pad, W, sh, sw, dh, dw, y):
    n, oh, ow, _, _ = y.shape
    kh, kw, c, m = W.shape
    for task in prange(n * oh):
        b, p = task // oh, task % oh
        for q in range(ow):
            for i in range(kh):
                for j in range(kw):
                    row, col = p * sh + i * dh, q * sw + j * dw
                    for ch in range(c):
                        v = x_pad[b, row, col, ch]
                        for k in range(m):
                            y[b, p, q, ch, k] += v * W[i, j, ch, k]


@jit.kernel()
def _backward(dy, x_pad, W, sh, sw, dh, dw, input_grad, dx_pad, dW_per_image):
    n, oh, ow, _, _ = dy.shape
    kh, kw, c, m = W.shape
    for b in prange(n):
        for p in range(oh):
            for q in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        row, col = p * sh + i * dh, q * sw + j * dw
                        for ch in range(c):
                            g = 0.0
                            for k in range(m):
                                d = dy[b, p, q, ch, k]
                                dW_per_image[b, i, j, ch, k] += x_pad[b, row, col, ch] * d
                                g += W[i, j, ch, k] * d
                            if input_grad:
                                dx_pad[b, row, col, ch] += g


def depthwise_forward(x, W, strides, pads, rate, out_hw):
    top, bottom, left, right = pads
    x_pad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw, c, m = W.shape
    y = np.zeros((x.shape[0], *out_hw, c, m), dtype=x.dtype)
    _forward(x_pad, np.ascontiguousarray(W), *strides, *rate, y)
    return y.reshape(x.shape[0], *out_hw, c * m), x_pad


def depthwise_backward(dy, x_pad, W, strides, pads, rate, input_grad=True):
    kh, kw, c, m = W.shape
    n, oh, ow, _ = dy.shape
    dx_pad = np.zeros_like(x_pad) if input_grad else np.zeros((1, 1, 1, 1), x_pad.dtype)
    dW_per_image = np.zeros((n, *W.shape), dtype=W.dtype)
    _backward(np.ascontiguousarray(dy).reshape(n, oh, ow, c, m), x_pad, np.ascontiguousarray(W), *strides, *rate,
              input_grad, dx_pad, dW_per_image)
    dW = dW_per_image.sum(axis=0)
    if not input_grad:
        return None, dW
    top, bottom, left, right = pads
    return dx_pad[:, top:x_pad.shape[1] - bottom, left:x_pad.shape[2] - right, :], dW
