"""The fully connected op on the last axis, forward and backward (``layers/dense.py``).

``x (..., k)``, ``W (k, u)``, ``b (u,)``; with ``X`` and ``dZ`` the input and the output
gradient flattened to matrices ``(m, k)`` and ``(m, u)`` (``m`` = all leading axes; the
products run on these matrices, one BLAS call each — ``matmul`` on the 4-D tensor itself
would be a batch of small products, one per image row)::

    z = x W + b
    ∂L/∂W = Xᵀ dZ      ∂L/∂b = Σ_rows dZ      ∂L/∂x = dZ Wᵀ

The product runs on the array module's ``matmul`` (BLAS); ``+ b`` is the epilogue's pass
over z (``kernels/epilogue.py``), which also applies a ReLU when asked (the plan's fused
group, ``fusion.DenseReluGroup``).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from . import epilogue


def dense_forward(x, W, b, workspace, relu=False):
    """z = x W + b (through a ReLU when ``relu``; no bias when ``b`` is None), in the
    workspace's reusable ``'z'`` buffer."""
    z = workspace.reusable("z", (*x.shape[:-1], W.shape[1]), np.result_type(x, W), like=x)
    backend.get_array_module(x).matmul(x.reshape(-1, W.shape[0]), W, out=z.reshape(-1, W.shape[1]))  # (m, k) @ (k, u)
    return epilogue.bias_activation(z, b, relu)


def dense_backward(dz, x, W, workspace, input_grad=True, bias_grad=True):
    """(∂L/∂x, ∂L/∂W, ∂L/∂b) from ``dz`` and the forward's input ``x``; ∂L/∂x (in the
    workspace's ``'dx'`` buffer) is None when not ``input_grad``, ∂L/∂b when not ``bias_grad``."""
    x2, dz2 = x.reshape(-1, W.shape[0]), dz.reshape(-1, W.shape[1])
    dW = x2.T @ dz2                                                     # (k, m) @ (m, u)
    db = epilogue.bias_grad(dz2) if bias_grad else None
    if not input_grad:
        return None, dW, db
    dx = workspace.reusable("dx", x.shape, np.result_type(dz, W), like=dz)
    backend.get_array_module(dz).matmul(dz2, W.T, out=dx.reshape(-1, W.shape[0]))  # (m, u) @ (u, k)
    return dx, dW, db
