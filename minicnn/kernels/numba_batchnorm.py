"""Numba kernels of BatchNormalization (``kernels/batchnorm.py`` holds the NumPy twins and
the calling convention).  Each reads the data once for the per-channel sums and once for
the elementwise result:

* forward: Σ(x − s) and Σ(x − s)² per channel in one pass, with ``s`` the first row (a
  shift keeps ``Σd²/M − (Σd/M)²`` from cancelling when |μ| ≫ σ), then y and x̂ in one pass;
* backward: Σ dy and Σ dy·x̂ in one pass, then ∂L/∂x in one pass.

The sums run in parallel over blocks of rows, each block into its own row of partial sums
(float64), added at the end: no two threads write the same cell.
"""
from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange

from . import jit


def _blocks(rows):
    return max(1, min(rows, 4 * numba.get_num_threads()))


@jit.kernel()
def _shifted_sums(x, shift, partial):
    """partial[k] = (Σ (x − shift), Σ (x − shift)²) over block k's rows, per channel."""
    rows, channels = x.shape
    blocks = partial.shape[0]
    for k in prange(blocks):
        for r in range(k * rows // blocks, (k + 1) * rows // blocks):
            for c in range(channels):
                d = np.float64(x[r, c] - shift[c])
                partial[k, 0, c] += d
                partial[k, 1, c] += d * d


@jit.kernel()
def _product_sums(a, b, partial):
    """partial[k] = (Σ a, Σ a·b) over block k's rows, per channel."""
    rows, channels = a.shape
    blocks = partial.shape[0]
    for k in prange(blocks):
        for r in range(k * rows // blocks, (k + 1) * rows // blocks):
            for c in range(channels):
                partial[k, 0, c] += a[r, c]
                partial[k, 1, c] += a[r, c] * b[r, c]


@functools.cache
def _normalize_kernel(X_HAT):
    """y = x̂·γ + β, writing x̂ too when X_HAT (a compile-time constant: a forward no
    backward follows keeps none)."""

    @jit.kernel()
    def normalize(x, mean, inv_std, gamma, beta, x_hat, y):
        rows, channels = x.shape
        for r in prange(rows):
            for c in range(channels):
                h = (x[r, c] - mean[c]) * inv_std[c]
                if X_HAT:
                    x_hat[r, c] = h
                y[r, c] = h * gamma[c] + beta[c]
    return normalize


@jit.kernel()
def _input_grad(dy, x_hat, scale, mean_dy, mean_dy_xhat, dx):
    """dx = scale·(dy − mean(dy) − x̂·mean(dy·x̂)): the compact form divided through by M."""
    rows, channels = dy.shape
    for r in prange(rows):
        for c in range(channels):
            dx[r, c] = scale[c] * (dy[r, c] - mean_dy[c] - x_hat[r, c] * mean_dy_xhat[c])


def forward(x, gamma, beta, mean, var, epsilon, use_batch, y, x_hat):
    rows, channels = x.shape
    if use_batch:
        partial = np.zeros((_blocks(rows), 2, channels))
        shift = np.ascontiguousarray(x[0])
        _shifted_sums(x, shift, partial)
        sums = partial.sum(axis=0) / rows
        mean = (shift + sums[0]).astype(x.dtype)
        var = np.maximum(sums[1] - sums[0] ** 2, 0).astype(x.dtype)
    inv_std = (1 / np.sqrt(var + epsilon)).astype(x.dtype)
    kept = x_hat is not None
    _normalize_kernel(kept)(x, mean.astype(x.dtype), inv_std, gamma.astype(x.dtype), beta.astype(x.dtype),
                            x_hat if kept else np.empty((0, 0), x.dtype), y)
    return y, x_hat, mean, var, inv_std


def backward(dy, x_hat, inv_std, gamma, use_batch, input_grad):
    rows, channels = dy.shape
    partial = np.zeros((_blocks(rows), 2, channels))
    _product_sums(dy, x_hat, partial)
    sum_dy, sum_dy_xhat = (s.astype(dy.dtype) for s in partial.sum(axis=0))
    if not input_grad:
        return sum_dy, sum_dy_xhat, None
    scale = (inv_std * gamma).astype(dy.dtype)
    if not use_batch:
        return sum_dy, sum_dy_xhat, dy * scale
    dx = np.empty_like(dy)
    _input_grad(dy, x_hat, scale, sum_dy / rows, sum_dy_xhat / rows, dx)
    return sum_dy, sum_dy_xhat, dx
