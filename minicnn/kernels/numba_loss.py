"""The Numba kernel of softmax + cross-entropy from the logits (``losses.py``), parallel
over samples: each owns its row of ∂L/∂z.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from . import jit


@jit.kernel()
def _softmax_cross_entropy(z, y, loss, dz):
    """Per row b (stable, through e^{z − max z}), in one pass over the row::

        loss[b] = logsumexp(z_b) · Σ_k y_bk − Σ_k y_bk z_bk
        dz[b]   = (softmax(z_b) · Σ_k y_bk − y_b) / n
    """
    n, k = z.shape
    for b in prange(n):
        m = z[b, 0]
        for j in range(1, k):
            m = max(m, z[b, j])
        total, y_sum, yz = 0.0, 0.0, 0.0
        for j in range(k):
            e = np.exp(z[b, j] - m)
            dz[b, j] = e
            total += e
            y_sum += y[b, j]
            yz += y[b, j] * z[b, j]
        loss[b] = (m + np.log(total)) * y_sum - yz
        for j in range(k):
            dz[b, j] = (dz[b, j] / total * y_sum - y[b, j]) / n


def softmax_cross_entropy(z, y):
    """(mean loss, ∂L/∂z) for logits z (n, k) and targets y (n, k), fused (see above)."""
    z = np.ascontiguousarray(z)
    loss, dz = np.empty(z.shape[0], dtype=z.dtype), np.empty_like(z)
    _softmax_cross_entropy(z, np.ascontiguousarray(y, dtype=z.dtype), loss, dz)
    return loss.sum() / z.shape[0], dz
