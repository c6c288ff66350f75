"""Gradient checking by central differences (float64).

For a scalar ``L(θ)`` and a probe index ``i``::

    ∂L/∂θ_i ≈ (L(θ + ε·e_i) − L(θ − ε·e_i)) / (2ε)       error O(ε²)

A layer is checked through the scalar ``L = Σ y ⊙ G`` with a *random* upstream
gradient ``G`` (``ones`` would hide errors that cancel), so that ``∂L/∂y = G`` and the
layer's own backward gives the analytic gradients.  Relative error per tensor:
``‖a − n‖ / max(‖a‖ + ‖n‖, tiny)`` over the sampled entries.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


def numeric_gradient(f, array, indices, eps=1e-6):
    """Central differences of the scalar ``f()`` w.r.t. ``array`` at flat ``indices``
    (``array`` is perturbed in place and restored)."""
    flat = array.reshape(-1)
    out = np.empty(len(indices))
    for k, i in enumerate(indices):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        out[k] = (plus - minus) / (2 * eps)
    return out


def relative_error(analytic, numeric) -> float:
    analytic, numeric = np.ravel(analytic), np.ravel(numeric)
    return float(np.linalg.norm(analytic - numeric) /
                 max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-30))


class CheckResult(NamedTuple):
    layer: str
    tensor: str
    rel_error: float
    worst_index: tuple
    worst_abs_error: float


def sample_indices(size, max_samples, rng):
    return np.arange(size) if size <= max_samples else rng.choice(size, max_samples, replace=False)


def compare(layer_name, tensor_name, shape, analytic_flat, numeric, indices) -> CheckResult:
    diff = np.abs(analytic_flat[indices] - numeric)
    worst = int(np.argmax(diff)) if len(diff) else 0
    return CheckResult(layer_name, tensor_name, relative_error(analytic_flat[indices], numeric),
                       tuple(int(v) for v in np.unravel_index(indices[worst], shape)) if len(diff) else (),
                       float(diff[worst]) if len(diff) else 0.0)


def check_layer(layer, x, upstream=None, max_samples=64, eps=1e-6, seed=0):
    """Check ∂/∂x and ∂/∂param of ``layer`` at float64 input ``x``; list of CheckResult."""
    rng = np.random.default_rng(seed)
    y = layer.forward(x, training=False)
    G = rng.standard_normal(y.shape) if upstream is None else upstream

    def scalar():
        return float((layer.forward(x, training=False) * G).sum())

    layer.forward(x, training=False)
    dx = layer.backward(G)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    results = []
    idx = sample_indices(x.size, max_samples, rng)
    results.append(compare(layer.name or type(layer).__name__, "input", x.shape, dx.reshape(-1),
                           numeric_gradient(scalar, x, idx, eps), idx))
    for key, param in layer.params.items():
        idx = sample_indices(param.size, max_samples, rng)
        results.append(compare(layer.name or type(layer).__name__, key, param.shape, grads[key].reshape(-1),
                               numeric_gradient(scalar, param, idx, eps), idx))
    return results
