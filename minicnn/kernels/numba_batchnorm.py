"""Numba kernels of BatchNormalization (``kernels/batchnorm.py`` holds the NumPy twins and
the calling convention).  Each pass reads the data once, and no array the size of x is
written but the result:

* forward: Σ(x − s) and Σ(x − s)² per channel in one pass, with ``s`` the first row (a
  shift keeps ``Σd²/M − (Σd/M)²`` from cancelling when |μ| ≫ σ), then
  ``y = (x − μ)·(γ/√(σ² + ε)) + β`` (and its ReLU) in one pass;
* backward: Σ dz and Σ dz·(x − μ) in one pass (``Σ dz·x̂`` is the second times 1/√(σ² + ε)),
  then ∂L/∂x in one pass, as ``p·dz + q·(x − μ) + o`` per channel: the compact form with x̂
  written out, ``γ/√(σ² + ε) · (dz − mean(dz) − x̂·mean(dz·x̂))``, or ``p·dz`` when μ and σ²
  are constants.  ``dz = dy``, or ``dy·[a > 0]`` for the plan's BN + ReLU group (``a`` its
  output), the gate formed as dy is read, from x, by the forward's own arithmetic
  (``a > 0`` ⟺ ``(x − μ)·(γ/√(σ² + ε)) + β > 0``): one array fewer to read than ``a``.

The sums run in parallel over a fixed number of blocks of rows, each block into its own row
of partial sums (float64; every CHUNK_ROWS rows are summed in x's own precision first, which
keeps the vector lanes as wide as x's), added at the end: no two threads write the same
cell, and the order of the sums (their result) does not depend on the thread count.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from . import jit


SUM_BLOCKS = 64
CHUNK_ROWS = 32     # rows summed in x's precision before they are added to the float64 sums


def _partial_sums(rows, channels):
    return np.zeros((min(SUM_BLOCKS, rows), 2, channels))


@jit.kernel()
def _shifted_sums(x, shift, partial):
    """partial[k] = (Σ (x − shift), Σ (x − shift)²) over block k's rows, per channel: each
    chunk of CHUNK_ROWS rows summed in x's precision (vector lanes of x's width), each
    chunk's sums then added in float64."""
    rows, channels = x.shape
    blocks = partial.shape[0]
    for k in prange(blocks):
        sums, squares = np.zeros(channels, x.dtype), np.zeros(channels, x.dtype)
        lo, hi = k * rows // blocks, (k + 1) * rows // blocks
        for r in range(lo, hi):
            for c in range(channels):
                d = x[r, c] - shift[c]
                sums[c] += d
                squares[c] += d * d
            if (r - lo) % CHUNK_ROWS == CHUNK_ROWS - 1 or r == hi - 1:
                for c in range(channels):
                    partial[k, 0, c] += sums[c]
                    partial[k, 1, c] += squares[c]
                    sums[c] = squares[c] = 0


@jit.kernel()
def _normalize(x, mean, scale, beta, relu, y):
    """y = (x − mean)·scale + beta, then max(y, 0) when ``relu``."""
    rows, channels = x.shape
    zero = np.zeros(1, y.dtype)[0]          # (a literal 0 would make the select float64)
    for r in prange(rows):
        for c in range(channels):
            v = (x[r, c] - mean[c]) * scale[c] + beta[c]
            y[r, c] = (v if v > zero else zero) if relu else v


@jit.kernel()
def _gradient_sums(dy, x, mean, scale, beta, relu, partial):
    """partial[k] = (Σ dz, Σ dz·(x − mean)) over block k's rows, per channel, with
    dz = dy·[(x − mean)·scale + beta > 0] when ``relu`` (``_normalize``'s output > 0: the same
    operations, in the same order and dtype, so the same signs), else dy; chunks as
    ``_shifted_sums``."""
    rows, channels = dy.shape
    blocks = partial.shape[0]
    zero = np.zeros(1, dy.dtype)[0]
    for k in prange(blocks):
        sums, products = np.zeros(channels, dy.dtype), np.zeros(channels, dy.dtype)
        lo, hi = k * rows // blocks, (k + 1) * rows // blocks
        for r in range(lo, hi):
            for c in range(channels):
                g = dy[r, c]
                if relu:
                    g = g if (x[r, c] - mean[c]) * scale[c] + beta[c] > zero else zero
                sums[c] += g
                products[c] += g * (x[r, c] - mean[c])
            if (r - lo) % CHUNK_ROWS == CHUNK_ROWS - 1 or r == hi - 1:
                for c in range(channels):
                    partial[k, 0, c] += sums[c]
                    partial[k, 1, c] += products[c]
                    sums[c] = products[c] = 0


@jit.kernel()
def _input_grad(dy, x, mean, scale, beta, relu, p, q, o, dx):
    """dx = p·dz + q·(x − mean) + o per channel, dz as in ``_gradient_sums``."""
    rows, channels = dy.shape
    zero = np.zeros(1, dy.dtype)[0]
    for r in prange(rows):
        for c in range(channels):
            g = dy[r, c]
            if relu:
                g = g if (x[r, c] - mean[c]) * scale[c] + beta[c] > zero else zero
            dx[r, c] = p[c] * g + q[c] * (x[r, c] - mean[c]) + o[c]


def forward(x, gamma, beta, mean, var, epsilon, use_batch, y, relu=False):
    rows, channels = x.shape
    if use_batch:
        partial = _partial_sums(rows, channels)
        shift = np.ascontiguousarray(x[0])
        _shifted_sums(x, shift, partial)
        sums = partial.sum(axis=0) / rows
        mean = (shift + sums[0]).astype(x.dtype)
        var = np.maximum(sums[1] - sums[0] ** 2, 0).astype(x.dtype)
    inv_std = (1 / np.sqrt(var + epsilon)).astype(x.dtype)
    mean = mean.astype(x.dtype, copy=False)
    _normalize(x, mean, *_scale_and_shift(inv_std, gamma, beta, x.dtype), relu, y)
    return y, mean, var, inv_std


def _scale_and_shift(inv_std, gamma, beta, dtype):
    """(γ/√(σ² + ε), β) in x's dtype: the forward's, and the backward's for its ReLU gate."""
    return (inv_std * gamma).astype(dtype), beta.astype(dtype, copy=False)


def backward(dy, x, mean, inv_std, gamma, use_batch, input_grad, dx, relu_beta=None):
    rows, channels = dy.shape
    relu = relu_beta is not None
    # the gate in x's dtype, as the forward formed a (dy's may differ: a float64 layer above); unread without relu
    gate = _scale_and_shift(inv_std, gamma, relu_beta if relu else gamma, x.dtype)
    partial = _partial_sums(rows, channels)
    mean = mean.astype(x.dtype, copy=False)
    _gradient_sums(dy, x, mean, *gate, relu, partial)
    sum_dz, sum_dz_centered = partial.sum(axis=0)
    sum_dz_xhat = sum_dz_centered * inv_std
    if not input_grad:
        return sum_dz.astype(dy.dtype), sum_dz_xhat.astype(dy.dtype), None
    scale = inv_std.astype(np.float64) * gamma
    zeros = np.zeros(channels)
    q, o = (-scale * inv_std * sum_dz_xhat / rows, -scale * sum_dz / rows) if use_batch else (zeros, zeros)
    _input_grad(dy, x, mean, *gate, relu, *(a.astype(dy.dtype) for a in (scale, q, o)), dx)
    return sum_dz.astype(dy.dtype), sum_dz_xhat.astype(dy.dtype), dx
