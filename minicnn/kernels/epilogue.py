"""The epilogue of Conv2D and Dense: bias and activation after the matrix product,
fused into one pass each way.

With ``z0 = x·W`` the layer's GEMM output, seen as a matrix ``(m, f)`` (one row per
output pixel or sample, one column per filter or unit)::

    forward    a = act(z0 + b)                      in place on z0 (the layer's own buffer)
    backward   dz = da · act'(a)                    ReLU: act'(a) = [a > 0]; linear: 1
               ∂L/∂b[k] = Σ_rows dz[·, k]           summed in the same pass over da

The forward (ReLU or linear) is one pass on the CUDA kernel (``bias_act.cu``) and on the
Numba kernels (``numba_kernels.bias_act_forward``), and so, on the Numba kernels, is ReLU's
backward with the bias gradient (``relu_backward_bias_grad``; for linear, dz = da and ∂L/∂b
is a column sum, the same kernel, ``numba_kernels.bias_grad_blocks``); elsewhere the same
math runs as array expressions.  The Winograd kernels need no pass of their own: the
forward adds b and applies the ReLU as it stores each output tile, and ∂L/∂W's kernel sums
∂L/∂b as it reads dz (``winograd.py``; measured on the conv layer case, 33.9 → 32.3 ms).
Sigmoid and softmax run their own forward on z0 + b (see ``activations.py``).
"""
from __future__ import annotations

import numpy as np

from .. import backend

BIAS_GRAD_BLOCKS = 64      # row blocks of the fused bias gradient (a fixed summation order)


def bias_activation(z, b, relu=False):
    """z ← act(z + b) in place (act: ReLU when ``relu``, else the identity; no bias when
    ``b`` is None); returns z.  One pass on the CUDA and the Numba kernels."""
    if backend.is_gpu_array(z):
        from . import cuda_kernels
        return cuda_kernels.activation_forward_inplace(z, "relu" if relu else "linear", bias=b)
    if b is not None and backend.on_numba_kernels(z) and z.flags.c_contiguous:    # (the flat view must be z itself)
        from .numba_kernels import bias_act_forward
        bias_act_forward(z.reshape(-1, z.shape[-1]), b, relu)
        return z
    if b is not None:
        z += b
    return np.maximum(z, 0, out=z) if relu else z


def bias_grad(dz):
    """∂L/∂b = Σ of dz over every axis but the last (in one parallel pass on the Numba kernels)."""
    if not backend.on_numba_kernels(dz):
        return dz.reshape(-1, dz.shape[-1]).sum(axis=0)
    rows = np.ascontiguousarray(dz).reshape(-1, dz.shape[-1])
    return _bias_grad_blocks(rows, rows, rows, relu=False)


def relu_backward_bias_grad(da, a, dz=None):
    """(dz, ∂L/∂b) with dz = da · [a > 0], in one pass on the Numba kernels; dz is
    written into ``dz`` when given."""
    if not backend.on_numba_kernels(da):
        dz = backend.get_array_module(da).multiply(da, a > 0, out=dz)
        return dz, bias_grad(dz)
    f = da.shape[-1]
    dz = np.empty(da.shape, da.dtype) if dz is None else dz    # C-contiguous: the kernel writes through a view
    return dz, _bias_grad_blocks(np.ascontiguousarray(da).reshape(-1, f), a.reshape(-1, f), dz.reshape(-1, f),
                                 relu=True)


def _bias_grad_blocks(da, a, dz, relu):
    """``numba_kernels.bias_grad_blocks`` over BIAS_GRAD_BLOCKS row blocks, their float64
    sums added up and cast back."""
    from .numba_kernels import bias_grad_blocks
    partial = np.empty((min(BIAS_GRAD_BLOCKS, da.shape[0]), da.shape[1]), dtype=np.float64)
    bias_grad_blocks(da, a, dz, partial, relu)
    return partial.sum(axis=0).astype(da.dtype)
