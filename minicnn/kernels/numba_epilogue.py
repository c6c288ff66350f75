"""Numba kernels of the layer epilogue (``kernels/epilogue.py`` holds the equations): bias +
activation forward, parallel over rows; the sum of two arrays and its activation, over
elements; ReLU backward fused with ∂L/∂b, over a fixed number of row blocks, each summing its
own rows (the sum's order, and its result, do not depend on the thread count); the plain ReLU
backward from the output, over elements.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import jit

BIAS_GRAD_BLOCKS = 64      # row blocks of the fused bias gradient (a fixed summation order)


@njit(inline="always")
def bias_act(v, b, relu):
    """act(v + b) of one value: the ReLU when ``relu``, else the identity (the epilogue,
    ``kernels/epilogue.py``; also applied by the Winograd forward as it stores)."""
    v = v + b
    return max(v, 0) if relu else v


@jit.kernel()
def bias_act_forward(z, b, relu):
    """z ← act(z + b) in place, z (m, f): linear, or ReLU when ``relu``; over rows."""
    m, f = z.shape
    for r in prange(m):
        for k in range(f):
            z[r, k] = bias_act(z[r, k], b[k], relu)


@jit.kernel()
def sum_pair(x1, x2, relu, out):
    """out = act(x1 + x2), flat arrays: linear, or ReLU when ``relu``; over elements (each
    element read, then written, at its own index: ``out`` may be ``x1``, a sum added to)."""
    for i in prange(out.size):
        out[i] = bias_act(x1[i], x2[i], relu)


@jit.kernel()
def bias_grad_blocks(da, a, dz, partial, relu):
    """∂L/∂b as per-block column sums ``partial[blk] = Σ_{rows of blk} dz`` (float64), with
    dz = da · [a > 0] written into ``dz`` in the same pass when ``relu``, else dz = da (``a``
    and ``dz`` then unused); over a fixed number of row blocks, so the order of the sum, and
    its result, do not depend on the thread count."""
    m, f = da.shape
    blocks = partial.shape[0]
    for blk in prange(blocks):
        partial[blk] = 0
        for r in range(blk * m // blocks, (blk + 1) * m // blocks):
            for k in range(f):
                g = da[r, k]
                if relu:
                    g = g if a[r, k] > 0 else 0
                    dz[r, k] = g
                partial[blk, k] += g


@jit.kernel()
def relu_backward(da, a, dz):
    """dz = da · [a > 0] (a = relu output, so a > 0 exactly where z > 0), flat arrays."""
    for i in prange(da.size):
        dz[i] = da[i] if a[i] > 0 else 0


def bias_activation(z, b, relu):
    """z ← act(z + b) in place, z C-contiguous (the kernel writes through a flat view); no
    bias when ``b`` is None (zeros: x + 0 = x)."""
    b = np.zeros(z.shape[-1], z.dtype) if b is None else b
    bias_act_forward(z.reshape(-1, z.shape[-1]), b, relu)
    return z


def sum_activation(xs, out, relu):
    """out = act(x1 + x2) in one pass: two C-contiguous arrays of out's shape and dtype."""
    sum_pair(xs[0].reshape(-1), xs[1].reshape(-1), relu, out.reshape(-1))
    return out


def bias_grad(dz):
    """∂L/∂b = Σ of dz over every axis but the last."""
    rows = np.ascontiguousarray(dz).reshape(-1, dz.shape[-1])
    return _bias_grad_blocks(rows, rows, rows, relu=False)


def relu_backward_bias_grad(da, a, dz):
    """(dz, ∂L/∂b) with dz = da · [a > 0] in one pass; dz written into ``dz`` when given."""
    f = da.shape[-1]
    dz = np.empty(da.shape, da.dtype) if dz is None else dz    # C-contiguous: the kernel writes through a view
    return dz, _bias_grad_blocks(np.ascontiguousarray(da).reshape(-1, f), a.reshape(-1, f), dz.reshape(-1, f),
                                 relu=True)


def relu_backward_from_output(da, a, dz):
    """dz = da · [a > 0] in one pass, written into ``dz`` when given."""
    dz = np.empty(da.shape, da.dtype) if dz is None else dz    # C-contiguous: the kernel writes through a view
    relu_backward(np.ascontiguousarray(da).reshape(-1), a.reshape(-1), dz.reshape(-1))
    return dz


def _bias_grad_blocks(da, a, dz, relu):
    """``bias_grad_blocks`` over BIAS_GRAD_BLOCKS row blocks, their float64 sums added up
    and cast back."""
    partial = np.empty((min(BIAS_GRAD_BLOCKS, da.shape[0]), da.shape[1]), dtype=np.float64)
    bias_grad_blocks(da, a, dz, partial, relu)
    return partial.sum(axis=0).astype(da.dtype)
