"""BatchNormalization over rows, channels last: ``x`` is ``(M, C)`` (every axis but the
channels flattened into the M rows), on NumPy or CuPy arrays alike.  The equations are in
``layers/normalization.py``; ``numba_batchnorm`` holds the single-pass Numba twins.

``forward(x, gamma, beta, mean, var, epsilon, use_batch, y, x_hat)`` → ``(y, x̂, μ, σ², 1/√(σ² + ε))``
(the batch's statistics when ``use_batch``, else the given ``mean``/``var``), y and x̂ written
into the given buffers; with ``x_hat`` None, x̂ is not kept (a forward no backward follows);
``backward(dy, x_hat, inv_std, gamma, use_batch, input_grad)`` → ``(Σ dy, Σ dy·x̂, ∂L/∂x)``.
"""
from __future__ import annotations

from .. import backend


def forward(x, gamma, beta, mean, var, epsilon, use_batch, y, x_hat):
    xp = backend.get_array_module(x)
    if use_batch:
        mean = x.mean(axis=0)
        centered = x - mean
        var = (centered * centered).mean(axis=0)
    else:
        centered = x - mean
    inv_std = 1 / xp.sqrt(var + epsilon)
    normalized = centered * inv_std
    if x_hat is not None:
        x_hat[...] = normalized
    y[...] = normalized * gamma + beta
    return y, x_hat, mean, var, inv_std


def backward(dy, x_hat, inv_std, gamma, use_batch, input_grad):
    sum_dy, sum_dy_xhat = dy.sum(axis=0), (dy * x_hat).sum(axis=0)
    if not input_grad:
        return sum_dy, sum_dy_xhat, None
    scale = inv_std * gamma
    if not use_batch:                                       # μ, σ² are constants
        return sum_dy, sum_dy_xhat, dy * scale
    M = dy.shape[0]
    return sum_dy, sum_dy_xhat, scale / M * (M * dy - sum_dy - x_hat * sum_dy_xhat)
