"""The epilogue of a weighted layer (Conv2D, Dense, ...): bias and activation after the
matrix product, fused into one pass each way.

With ``z0 = x·W`` the layer's GEMM output, seen as a matrix ``(m, f)`` (one row per
output pixel or sample, one column per filter or unit)::

    forward    a = act(z0 + b)                      in place on z0 (the layer's own buffer)
    backward   dz = da · act'(a)                    ReLU: act'(a) = [a > 0]; linear: 1
               ∂L/∂b[k] = Σ_rows dz[·, k]           summed in the same pass over da

The forward (ReLU or linear) is one pass on the CUDA kernel (``bias_act.cu``) and on the
Numba kernels (``numba_epilogue.bias_act_forward``), and so, on the Numba kernels, is ReLU's
backward with the bias gradient (``relu_backward_bias_grad``; for linear, dz = da and ∂L/∂b
is a column sum, the same kernel, ``numba_epilogue.bias_grad_blocks``); elsewhere the same
math runs as array expressions.  The implicit GEMM and the Winograd kernels need no forward
pass of their own: they add b and apply the ReLU as they store each output tile
(``implicit_gemm.py``, ``winograd.py``), and Winograd's ∂L/∂W kernel sums ∂L/∂b as it reads dz.  The plan runs a layer and its ReLU this way as one
fused group (``fusion.EpilogueGroup``); unfused, the layer adds b (``relu=False``) and its
activation runs apart.  The same epilogue ends a sum, ``a = act(Σ_i x_i)`` (``sum_activation``):
an Add layer, or an Add and its ReLU in one pass (``fusion.AddReluGroup``).
"""
from __future__ import annotations

from .. import backend
from .dispatch import pick


def bias_activation(z, b, relu=False):
    """z ← act(z + b) in place (act: ReLU when ``relu``, else the identity; no bias when
    ``b`` is None); returns z.  One pass on the CUDA and the Numba kernels."""
    fused = (b is not None or relu) and z.flags.c_contiguous      # (the Numba kernel writes through a flat view of z)
    return pick(z, _bias_activation_expressions, numba="numba_epilogue.bias_activation" if fused else None,
                cuda=_bias_activation_on_cuda)(z, b, relu)


def _bias_activation_expressions(z, b, relu):
    if b is not None:
        z += b
    return backend.get_array_module(z).maximum(z, 0, out=z) if relu else z


def _bias_activation_on_cuda(z, b, relu):
    from . import cuda_kernels
    return cuda_kernels.activation_forward_inplace(z, "relu" if relu else "linear", bias=b)


def sum_activation(xs, out, relu=False):
    """out ← act(Σ_i x_i) (act: ReLU when ``relu``, else the identity): an Add layer, and the
    fused Add + ReLU of a residual block's end (``fusion.AddReluGroup``); also the executor's
    sum of the gradients that reach one tensor.  One parallel pass on the Numba kernels for
    two inputs of out's shape and dtype (C-contiguous: the kernel reads flat views)."""
    fused = len(xs) == 2 and all(x.shape == out.shape and x.dtype == out.dtype and x.flags.c_contiguous
                                 for x in (*xs, out))
    return pick(out, _sum_activation_expressions, numba="numba_epilogue.sum_activation" if fused else None)(
        xs, out, relu)


def _sum_activation_expressions(xs, out, relu):
    xp = backend.get_array_module(out)
    xp.add(xs[0], xs[1], out=out)
    for x in xs[2:]:
        out += x
    return xp.maximum(out, 0, out=out) if relu else out


def bias_grad(dz):
    """∂L/∂b = Σ of dz over every axis but the last (in one parallel pass on the Numba kernels)."""
    return pick(dz, column_sums, numba="numba_epilogue.bias_grad")(dz)


def column_sums(a):
    """Σ of a over every axis but the last (a bias gradient, BatchNormalization's sums)."""
    return pick(a, _column_sums, cuda=_column_sums_on_cuda)(a)


def _column_sums(a):
    return a.reshape(-1, a.shape[-1]).sum(axis=0)


def _column_sums_on_cuda(a):
    """The same sums as a product with a ones vector: CuPy's sum down the rows of a tall,
    narrow array keeps few threads busy, cuBLAS's matrix-vector product streams it."""
    rows = a.reshape(-1, a.shape[-1])
    return backend.get_array_module(a).ones(rows.shape[0], rows.dtype) @ rows


def relu_backward_bias_grad(da, a, dz=None):
    """(dz, ∂L/∂b) with dz = da · [a > 0], in one pass on the Numba kernels; dz is
    written into ``dz`` when given."""
    return pick(da, _relu_backward_then_bias_grad, numba="numba_epilogue.relu_backward_bias_grad")(da, a, dz)


def _relu_backward_then_bias_grad(da, a, dz):
    dz = backend.get_array_module(da).multiply(da, a > 0, out=dz)
    return dz, bias_grad(dz)


def relu_backward(da, a, rule="gradient", dz=None):
    """∂L/∂z of a = max(z, 0) from its output ``a`` (a > 0 exactly where z > 0), by the
    ReLU's backward ``rule`` (``activations.ReLU``): da · [a > 0] ('gradient', one pass on
    the Numba and CUDA kernels), · [da > 0] too ('guided'), max(da, 0) ('deconvnet');
    written into ``dz`` when given."""
    xp = backend.get_array_module(da)
    if rule == "deconvnet":
        return xp.maximum(da, 0, out=dz)
    if rule == "guided":
        return xp.multiply(da, (a > 0) & (da > 0), out=dz)
    return pick(da, _relu_backward_expressions, numba="numba_epilogue.relu_backward_from_output",
                cuda=_relu_backward_on_cuda)(da, a, dz)


def _relu_backward_expressions(da, a, dz):
    return backend.get_array_module(da).multiply(da, a > 0, out=dz)


def _relu_backward_on_cuda(da, a, dz):
    from . import cuda_kernels
    return cuda_kernels.activation_backward(da, a, "relu", dz)
