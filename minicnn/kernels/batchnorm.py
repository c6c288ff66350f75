"""BatchNormalization over rows, channels last: ``x`` is ``(M, C)`` (every axis but the
channels flattened into the M rows), on NumPy or CuPy arrays alike.  The equations are in
``layers/normalization.py`` and ``docs/backprop.md`` §9; ``numba_batchnorm`` holds the
single-pass Numba twins.

``forward(x, gamma, beta, mean, var, epsilon, use_batch, y, relu=False)`` writes
``y = γ·x̂ + β`` (then ``max(y, 0)`` when ``relu``: ``fusion.NormReluGroup``) into ``y``
and returns ``(y, μ, σ², 1/√(σ² + ε))`` (the batch's statistics when ``use_batch``, else the
given ``mean``/``var``).

``backward(dy, x, mean, inv_std, gamma, use_batch, input_grad, dx, relu_beta=None)`` →
``(Σ dz, Σ dz·x̂, ∂L/∂x)`` written into ``dx`` (None without ``input_grad``), with ``dz = dy``,
or, when the forward ran with ``relu`` and ``relu_beta`` is its β, ``dz = dy·[γ·x̂ + β > 0]``
(ReLU's backward, its gate formed from x as the forward formed the output).  Backward
reads the layer's input ``x`` and forms x̂ from it again, rather than keeping x̂: x stays
alive until the backward anyway (the layer below wrote it), so no array the size of x is
kept for BN.
"""
from __future__ import annotations

from .. import backend
from .epilogue import column_sums


def forward(x, gamma, beta, mean, var, epsilon, use_batch, y, relu=False):
    xp = backend.get_array_module(x)
    if use_batch:                                   # (column sums: a product on CUDA, epilogue.column_sums)
        M = x.shape[0]
        mean = column_sums(x) / M
        centered = x - mean
        var = column_sums(centered * centered) / M
    else:
        centered = x - mean
    inv_std = 1 / xp.sqrt(var + epsilon)
    x_hat = centered * inv_std
    y[...] = x_hat * gamma + beta
    if relu:
        xp.maximum(y, 0, out=y)
    return y, mean, var, inv_std


def backward(dy, x, mean, inv_std, gamma, use_batch, input_grad, dx, relu_beta=None):
    x_hat = (x - mean) * inv_std
    dz = dy if relu_beta is None else dy * (x_hat * gamma + relu_beta > 0)
    sum_dz, sum_dz_xhat = column_sums(dz), column_sums(dz * x_hat)
    if not input_grad:
        return sum_dz, sum_dz_xhat, None
    scale = inv_std * gamma
    if not use_batch:                                       # μ, σ² are constants
        dx[...] = dz * scale
    else:
        M = dz.shape[0]
        dx[...] = scale / M * (M * dz - sum_dz - x_hat * sum_dz_xhat)
    return sum_dz, sum_dz_xhat, dx
