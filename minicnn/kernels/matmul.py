"""The matrix products of an im2col convolution (``kernels/conv.py``): ``cols @ W2`` and
``dY @ W2ᵀ``, where the convolution does not run as an implicit GEMM (layers under its
threshold, strided layers' ∂L/∂x and ∂L/∂x into few channels, the NumPy and CUDA paths).

Both have a tall left operand (one row per output pixel) and a small right one (a
layer's kernel, tens to hundreds of columns).  OpenBLAS runs these skinny shapes well
below its square-matrix speed, so on the Numba kernels a large enough product goes to a
register-blocked kernel that packs only the small operand (``implicit_gemm.matmul``; the
figures are in docs/performance.md); elsewhere to the array module's ``matmul`` (BLAS,
cuBLAS).
"""
from __future__ import annotations

from .. import backend
from .dispatch import pick

# multiply-adds from which the Numba kernel is faster than BLAS (docs/performance.md): from
# fewer for a product into at most NARROW_COLUMNS columns (a strided 1×1 convolution's ∂L/∂x
# into few channels), BLAS's skinniest shape, as for a convolution (conv_plan.IMPLICIT_GEMM_FROM)
NUMBA_MATMUL_FROM = 10**7
NARROW_NUMBA_MATMUL_FROM, NARROW_COLUMNS = 10**6, 64


def matmul(a, b, out=None):
    """out = a @ b for 2-D ``a`` and ``b``; written into ``out`` when given."""
    narrow = b.shape[1] <= NARROW_COLUMNS
    large = a.shape[0] * a.shape[1] * b.shape[1] >= (NARROW_NUMBA_MATMUL_FROM if narrow else NUMBA_MATMUL_FROM)
    return pick(a, backend.get_array_module(a).matmul, numba="implicit_gemm.matmul" if large else None)(a, b, out=out)
