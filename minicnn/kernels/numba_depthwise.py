"""Numba kernels of the depthwise convolution (``kernels/depthwise.py`` holds the equations
and the NumPy twins, with the same calling convention).

Output channel ``o = ch·m + k`` reads input channel ``o // m``, so with W as ``(kh, kw, c·m)``
both kernels run their innermost loop along the contiguous output channels.  The forward runs
in parallel over (image, output row): each task owns its row of y.  The backward runs in parallel over images: image b's
windows touch only image b's ∂L/∂x, and each image sums its own ∂L/∂W into its own slice of
a partial array, added over the images at the end, so no two threads write the same cell.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from . import jit


@jit.kernel()
def _forward(x_pad, W, m, sh, sw, dh, dw, y):
    """y (n, oh, ow, c·m) += x_pad[..., o // m] · W[i, j, o] for each tap (i, j), over the
    output channels o (W reshaped to (kh, kw, c·m)): the innermost loop runs along the
    contiguous channels, so it vectorizes."""
    n, oh, ow, channels = y.shape
    kh, kw, _ = W.shape
    for task in prange(n * oh):
        b, p = task // oh, task % oh
        for q in range(ow):
            for i in range(kh):
                for j in range(kw):
                    row, col = p * sh + i * dh, q * sw + j * dw
                    if m == 1:                  # no index division: the loop vectorizes
                        for o in range(channels):
                            y[b, p, q, o] += x_pad[b, row, col, o] * W[i, j, o]
                    else:
                        for o in range(channels):
                            y[b, p, q, o] += x_pad[b, row, col, o // m] * W[i, j, o]


@jit.kernel()
def _backward(dy, x_pad, W, m, sh, sw, dh, dw, input_grad, dx_pad, dW_per_image):
    """Per image b: dW_per_image[b, i, j, o] += x_pad[..., o // m]·dy[..., o] and
    dx_pad[..., o // m] += W[i, j, o]·dy[..., o] (the loop over o is sequential, so the m
    outputs of one input channel add up without a race)."""
    n, oh, ow, channels = dy.shape
    kh, kw, _ = W.shape
    for b in prange(n):
        for p in range(oh):
            for q in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        row, col = p * sh + i * dh, q * sw + j * dw
                        if m == 1:              # no index division: the loops vectorize
                            for o in range(channels):
                                dW_per_image[b, i, j, o] += x_pad[b, row, col, o] * dy[b, p, q, o]
                            if input_grad:
                                for o in range(channels):
                                    dx_pad[b, row, col, o] += W[i, j, o] * dy[b, p, q, o]
                        else:
                            for o in range(channels):
                                dW_per_image[b, i, j, o] += x_pad[b, row, col, o // m] * dy[b, p, q, o]
                            if input_grad:
                                for o in range(channels):
                                    dx_pad[b, row, col, o // m] += W[i, j, o] * dy[b, p, q, o]


def depthwise_forward(x, W, strides, pads, rate, out_hw):
    top, bottom, left, right = pads
    x_pad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw, c, m = W.shape
    y = np.zeros((x.shape[0], *out_hw, c * m), dtype=x.dtype)
    _forward(x_pad, np.ascontiguousarray(W).reshape(kh, kw, c * m), m, *strides, *rate, y)
    return y, x_pad


def depthwise_backward(dy, x_pad, W, strides, pads, rate, input_grad=True):
    kh, kw, c, m = W.shape
    n, oh, ow, _ = dy.shape
    dx_pad = np.zeros_like(x_pad) if input_grad else np.zeros((1, 1, 1, 1), x_pad.dtype)
    dW_per_image = np.zeros((n, kh, kw, c * m), dtype=W.dtype)
    _backward(np.ascontiguousarray(dy), x_pad, np.ascontiguousarray(W).reshape(kh, kw, c * m), m, *strides, *rate,
              input_grad, dx_pad, dW_per_image)
    dW = dW_per_image.sum(axis=0).reshape(W.shape)
    if not input_grad:
        return None, dW
    top, bottom, left, right = pads
    return dx_pad[:, top:x_pad.shape[1] - bottom, left:x_pad.shape[2] - right, :], dW
