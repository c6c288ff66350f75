"""Numba kernels of the RMSprop and Adam updates (``optimizers.py``): each parameter's
update in one pass, parallel over its elements.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from . import jit


@jit.kernel()
def _rmsprop(w, g, v, lr, rho, one_minus_rho, eps):
    for i in prange(w.size):
        v[i] = rho * v[i] + one_minus_rho * g[i] * g[i]
        w[i] -= lr * g[i] / np.sqrt(v[i] + eps)


def rmsprop_update(w, g, v, learning_rate, rho, epsilon):
    """In one pass, in place (flat, C-contiguous w and v): ``v ← ρ·v + (1 − ρ)·g²``,
    ``w ← w − η·g / sqrt(v + ε)`` (RMSprop without momentum).  The scalars are cast to
    w's dtype first, as NumPy does, so the result is the NumPy expressions', bit for bit."""
    t = w.dtype.type
    _rmsprop(w.reshape(-1), np.ascontiguousarray(g, w.dtype).reshape(-1), v.reshape(-1),
             t(learning_rate), t(rho), t(1 - rho), t(epsilon))


@jit.kernel()
def _adam(w, g, m, v, step, one_minus_beta_1, one_minus_beta_2, eps):
    for i in prange(w.size):
        m[i] += one_minus_beta_1 * (g[i] - m[i])
        v[i] += one_minus_beta_2 * (g[i] * g[i] - v[i])
        w[i] -= step * m[i] / (np.sqrt(v[i]) + eps)


def adam_update(w, g, m, v, step_size, beta_1, beta_2, epsilon):
    """In one pass, in place (flat, C-contiguous w, m, v): ``m ← m + (1 − β₁)(g − m)``,
    ``v ← v + (1 − β₂)(g² − v)``, ``w ← w − α·m / (sqrt(v) + ε)``; scalars cast as above."""
    t = w.dtype.type
    _adam(w.reshape(-1), np.ascontiguousarray(g, w.dtype).reshape(-1), m.reshape(-1), v.reshape(-1),
          t(step_size), t(1 - beta_1), t(1 - beta_2), t(epsilon))
