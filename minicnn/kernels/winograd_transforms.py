"""The matrices of Winograd's F(4×4, 3×3) and their applications (``kernels/winograd.py``
holds the algorithm)::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

``kernel_transform`` applies G to the kernel once per step, in NumPy; ``bt``, ``at`` and
``a`` apply Bᵀ, Aᵀ and A to six (or four) values, inlined into the Numba kernels, which call
them on whole rows of channels (SIMD).  Bᵀ and Aᵀ have small integer entries, exact in
floating point.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .register_tiles import pack_panels, scratch_panels

B_T = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
               dtype=np.float64)
TWO, FOUR, FIVE, EIGHT = np.float32([2, 4, 5, 8])   # float32: an int times a float32 would be a float64


def kernel_transform(W, panel, workspace=None):
    """U = G g Gᵀ for every (input, output) channel pair of W (3, 3, c, f), computed in W's
    dtype (float64 temporaries would be 8× the weights' bytes), as the 36 matrices U[ξ] (c, f)
    packed into panels of ``panel`` columns (``register_tiles.pack_panels``, into
    ``workspace``'s scratch when given): (36·n_panels, c, panel)."""
    c, f = W.shape[2:]
    U = sandwich(G.astype(W.dtype), W).reshape(36, c, f)
    return pack_panels(U, panel, W.dtype, out=scratch_panels(workspace, U.shape, panel, W.dtype)).reshape(-1, c, panel)


def sandwich(L, X):
    """L X Lᵀ of each (c, f) slice of X: (L X Lᵀ)[a, b, c, f] = Σ_ij L[a, i] X[i, j, c, f] L[b, j],
    as two matrix products: T[a, j] = Σ_i L[a, i] X[i, j], then Σ_j L[b, j] T[a, j] for each a
    (no transposed copy, unlike two tensordots; docs/performance.md)."""
    k, m = X.shape[0], L.shape[0]
    T = (L @ X.reshape(k, -1)).reshape(m, k, -1)
    return (L @ T).reshape(m, m, *X.shape[2:])


@njit(inline="always")
def bt(d0, d1, d2, d3, d4, d5):
    """Bᵀ (d0, …, d5)."""
    return (FOUR * d0 - FIVE * d2 + d4, (d3 + d4) - FOUR * (d1 + d2), (d4 - d3) + FOUR * (d1 - d2),
            (d4 - d2) + TWO * (d3 - d1), (d4 - d2) - TWO * (d3 - d1), FOUR * d1 - FIVE * d3 + d5)


@njit(inline="always")
def at(m0, m1, m2, m3, m4, m5):
    """Aᵀ (m0, …, m5)."""
    s, d, s2, d2 = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return m0 + s + s2, d + TWO * d2, s + FOUR * s2, d + EIGHT * d2 + m5


@njit(inline="always")
def a(g0, g1, g2, g3):
    """A (g0, …, g3): the adjoint of Aᵀ."""
    e, o, e4, o8 = g0 + g2, g1 + g3, g0 + FOUR * g2, TWO * g1 + EIGHT * g3
    return g0, e + o, e - o, e4 + o8, e4 - o8, g3
