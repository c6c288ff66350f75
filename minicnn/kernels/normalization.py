"""BatchNormalization's op on an array of any rank (``layers/normalization.py`` has the
equations): the channel axis moved last and every other axis flattened into the ``M`` rows
of an ``(M, C)`` view, then the row kernels (``kernels/batchnorm.py``, or its single-pass
Numba twin, ``numba_batchnorm``), then the result put back in the input's layout.

``relu=True`` (forward and backward) is the plan's BN + ReLU group's
(``fusion.NormReluGroup``): ``a = max(γ·x̂ + β, 0)`` in the forward's pass, and the ReLU's
backward, ``∂L/∂y = ∂L/∂a · [a > 0]``, in the backward's, its gate formed from x again.
"""
from __future__ import annotations

from typing import NamedTuple

from .. import backend
from . import batchnorm
from .dispatch import pick


class NormCache(NamedTuple):
    rows: object         # the input as (M, C) rows (backward forms x̂ from it again)
    mean: object         # μ (the batch's, or the moving mean)
    inv_std: object      # 1/√(σ² + ε)
    use_batch: bool      # whether μ and σ² were the batch's (then they depend on x)
    shape: tuple         # the input's shape
    axis: int            # its channel axis (non-negative)


def as_rows(a, axis):
    """``a`` as ``(M, C)``: the channel ``axis`` last, every other axis flattened into rows
    (a view of a C-contiguous ``a`` whose channels are already last, as in NHWC)."""
    xp = backend.get_array_module(a)
    if axis != a.ndim - 1:
        a = xp.moveaxis(a, axis, -1)
    return xp.ascontiguousarray(a).reshape(-1, a.shape[-1])


def from_rows(rows, shape, axis):
    """The inverse of ``as_rows``: ``(M, C)`` rows back to ``shape``."""
    if axis == len(shape) - 1:
        return rows.reshape(shape)
    moved = [*shape[:axis], *shape[axis + 1:], shape[axis]]
    return backend.get_array_module(rows).moveaxis(rows.reshape(moved), -1, axis)


def gamma_and_beta(params, like):
    """γ and β, ones and zeros where the layer has none (``scale=False``, ``center=False``)."""
    xp = backend.get_array_module(like)
    size = like.shape[-1]
    return (params["gamma"] if "gamma" in params else xp.ones(size, like.dtype),
            params["beta"] if "beta" in params else xp.zeros(size, like.dtype))


def batch_norm_forward(x, axis, params, epsilon, use_batch, workspace, relu=False):
    """(y, cache, μ, σ²): y = γ·x̂ + β over every axis of x but ``axis``, with the batch's
    statistics when ``use_batch``, else the moving ones in ``params``; y is the workspace's
    reusable ``'y'`` buffer, in x's layout."""
    rows = as_rows(x, axis)
    gamma, beta = gamma_and_beta(params, rows)
    forward = pick(rows, batchnorm.forward, numba="numba_batchnorm.forward")
    y, mean, var, inv_std = forward(rows, gamma, beta, params["moving_mean"], params["moving_variance"], epsilon,
                                    use_batch, workspace.reusable("y", rows.shape, rows.dtype, like=rows), relu)
    return from_rows(y, x.shape, axis), NormCache(rows, mean, inv_std, use_batch, x.shape, axis), mean, var


def batch_norm_backward(dy, cache: NormCache, params, workspace, input_grad=True, relu=False):
    """(∂L/∂x, grads): ∂L/∂x in the workspace's ``'dx'`` buffer (None when not
    ``input_grad``) and ∂L/∂γ = Σ dz·x̂, ∂L/∂β = Σ dz for the weights the layer has, with
    dz = dy, or dy·[γ·x̂ + β > 0] after a forward with ``relu``."""
    rows, axis = cache.rows, cache.axis
    backward = pick(rows, batchnorm.backward, numba="numba_batchnorm.backward")
    dx = workspace.reusable("dx", rows.shape, rows.dtype, like=rows) if input_grad else None
    gamma, beta = gamma_and_beta(params, rows)
    sum_dz, sum_dz_xhat, dx = backward(as_rows(dy, axis), rows, cache.mean, cache.inv_std, gamma,
                                       cache.use_batch, input_grad, dx, beta if relu else None)
    grads = {key: g for key, g in (("gamma", sum_dz_xhat), ("beta", sum_dz)) if key in params}
    return (None if dx is None else from_rows(dx, cache.shape, axis)), grads
