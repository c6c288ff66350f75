"""Dilated, grouped and transposed 2-D convolutions, each built from ``kernels/conv.py``'s
forward and backward rather than from kernels of their own, so every fast path of the
plain convolution (im2col + BLAS, the Numba implicit GEMM, Winograd, CUDA) serves them too,
and none of those paths can be handed a case it does not know.

**Dilation** ``(dh, dw)``: the kernel's taps ``d`` pixels apart,

    y[b,p,q,o] = Σ_{i,j,ch} x_pad[b, p·sh + i·dh, q·sw + j·dw, ch] · W[i,j,ch,o]

is the plain convolution with the *dilated kernel* ``W_d`` of size ``(dh(kh−1)+1, dw(kw−1)+1)``,
``W_d[i·dh, j·dw] = W[i, j]`` and zeros between; 'same' pads for that size (as TF).
Backward: ``∂L/∂x`` is the plain one through ``W_d``; ``∂L/∂W[i,j] = ∂L/∂W_d[i·dh, j·dw]``.
(The zeros cost multiplications; a dilated model trains at the speed of its dilated size.)

**Groups** ``G``: the channels split into ``G`` equal slices; slice ``g`` of the output
(``f/G`` filters) is the convolution of slice ``g`` of the input (``c/G`` channels) with
``W[..., g·f/G:(g+1)·f/G]`` of shape ``(kh, kw, c/G, f/G)`` — Keras's kernel layout.
Backward: each group's own, the gradients put side by side in the same order.

**Transposed** (``Conv2DTranspose``): the adjoint of a convolution.  For a convolution
``conv: ℝ^{n×H×W×F} → ℝ^{n×h×w×C}`` with kernel ``W (kh, kw, F, C)``, the transposed
convolution of ``x (n, h, w, C)`` is ``convᵀ(x)``, a tensor ``(n, H, W, F)`` — exactly the
``∂L/∂(input)`` that ``conv``'s backward computes from an output gradient ``x``:

    forward:   y = convᵀ(x)          = conv2d_input_grad(x, W)         (conv.py's ∂L/∂x)
    backward:  ∂L/∂x = conv(dy)      = conv2d_forward(dy, W)           (conv.py's forward)
               ∂L/∂W[i,j,o,c] = Σ_{b,p,q} dy_pad[b, p·s+i, q·s+j, o] · x[b,p,q,c]
                              = conv2d_backward's ∂L/∂W, with dy as the input and x as the
                                output gradient.
"""
from __future__ import annotations

from .. import backend
from .conv import conv2d_backward, conv2d_forward, conv2d_input_grad
from .geometry import normalize_tuple, window_geometry
from .workspace import Workspace


def dilated_size(kernel, rate):
    """(dh(kh−1)+1, dw(kw−1)+1): the extent of a dilated kernel."""
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, rate))


def checked_dilation(layer, dilation_rate):
    """The rate as a pair; > 1 only with strides 1, as Keras (``layer.strides`` set already)."""
    rate = normalize_tuple(dilation_rate, "dilation_rate", layer._who())
    if max(rate) > 1 and max(layer.strides) > 1:
        raise layer.error(f"dilation_rate={rate} > 1 cannot be combined with strides={layer.strides} > 1 (as in Keras)")
    return rate


def dilated_kernel(W, rate):
    """W_d with W_d[i·dh, j·dw] = W[i, j], zeros elsewhere."""
    if tuple(rate) == (1, 1):
        return W
    xp = backend.get_array_module(W)
    kh, kw, c, f = W.shape
    W_d = xp.zeros((*dilated_size((kh, kw), rate), c, f), dtype=W.dtype)
    W_d[::rate[0], ::rate[1]] = W
    return W_d


def channel_slices(size, groups):
    step = size // groups
    return [slice(g * step, (g + 1) * step) for g in range(groups)]


def conv2d_forward_general(x, W, b, strides, padding, rate, groups, workspaces, budget=None, plan=None):
    """(y, caches): the dilated, grouped convolution, one plain one per group (``workspaces``:
    one per group, each keeps its own buffers), each on ``plan`` (a ``ConvPlan``; None:
    ``conv_plan.choose``'s)."""
    xp = backend.get_array_module(x)
    f = W.shape[-1]
    outputs, caches = [], []
    for inputs, filters, workspace in zip(channel_slices(x.shape[-1], groups), channel_slices(f, groups), workspaces):
        y, cache = conv2d_forward(xp.ascontiguousarray(x[..., inputs]), dilated_kernel(W[..., filters], rate),
                                  None if b is None else b[filters], strides, padding, workspace, budget, plan=plan)
        outputs.append(y)
        caches.append(cache)
    return (outputs[0] if groups == 1 else xp.concatenate(outputs, axis=-1)), caches


def conv2d_backward_general(dy, caches, rate, workspaces, input_grad=True, bias_grad=True):
    """(dx, dW, db) of ``conv2d_forward_general`` (dx None when not ``input_grad``, db when
    not ``bias_grad``)."""
    xp = backend.get_array_module(dy)
    groups = len(caches)
    dxs, dWs, dbs = [], [], []
    for filters, cache, workspace in zip(channel_slices(dy.shape[-1], groups), caches, workspaces):
        dx, dW_d, db = conv2d_backward(xp.ascontiguousarray(dy[..., filters]), cache, workspace,
                                       input_grad, bias_grad)
        dxs.append(dx)
        dWs.append(dW_d[::rate[0], ::rate[1]])
        dbs.append(db)
    join = (lambda parts: parts[0]) if groups == 1 else (lambda parts: xp.concatenate(parts, axis=-1))
    return (join(dxs) if input_grad else None), xp.ascontiguousarray(join(dWs)), (join(dbs) if bias_grad else None)


def transpose_output_length(n, k, s, padding, output_padding):
    """Keras's output size of a transposed convolution along one axis."""
    if output_padding is None:
        return n * s + max(k - s, 0) if padding == "valid" else n * s
    pad = k // 2 if padding == "same" else 0
    return (n - 1) * s + k - 2 * pad + output_padding


def conv2d_transpose_geometry(x_shape, kernel, strides, padding, output_padding, who="conv2d_transpose"):
    """(out_h, out_w, pads): the output size, and the padding of the convolution it transposes
    (TF's rule for an input of the output's size), which must map that size back to x's."""
    out = [transpose_output_length(n, k, s, padding, None if output_padding is None else op)
           for n, k, s, op in zip(x_shape[1:3], kernel, strides, output_padding or (None, None))]
    oh, ow, pads = window_geometry(out[0], out[1], kernel, strides, padding, who)
    if (oh, ow) != tuple(x_shape[1:3]) or min(out) <= 0:
        raise ValueError(f"{who}: output_padding={output_padding} gives an output of {tuple(out)} pixels, which "
                         f"a convolution with kernel {kernel}, strides {strides}, padding={padding!r} maps to "
                         f"{(oh, ow)}, not the input's {tuple(x_shape[1:3])}; output_padding must be < strides")
    return out[0], out[1], pads


def transposed_conv_input_shape(x_shape, kernel, strides, padding, output_padding, filters, who="conv2d_transpose"):
    """(shape, pads): the input shape (n, H, W, f) and padding of the convolution that the
    transposed convolution of an input of ``x_shape`` transposes (its output's shape)."""
    H, W_out, pads = conv2d_transpose_geometry(x_shape, kernel, strides, padding, output_padding, who)
    return (x_shape[0], H, W_out, filters), pads


def conv2d_transpose_forward(x, W, strides, padding, output_padding, workspace, plan=None):
    """y (n, H, W, f) = convᵀ(x) for x (n, h, w, c) and the kernel W (kh, kw, f, c), on the
    ∂L/∂X algorithm of ``plan`` (the ``ConvPlan`` of the convolution it transposes; None:
    ``conv_plan.choose``'s)."""
    shape, pads = transposed_conv_input_shape(x.shape, W.shape[:2], strides, padding, output_padding, W.shape[2])
    return conv2d_input_grad(x, W, shape, strides, pads, workspace, plan)


def conv2d_transpose_backward(dy, x, W, strides, padding, workspace=None, plan=None):
    """(∂L/∂x, ∂L/∂W) of ``conv2d_transpose_forward``: the convolution of dy (its padding is
    the forward's: TF's rule for dy's size), and that convolution's kernel gradient with x as
    its output gradient, on ``plan``'s forward and ∂L/∂W algorithms (as the forward's)."""
    workspace = workspace if workspace is not None else Workspace()
    dx, cache = conv2d_forward(dy, W, None, strides, padding, workspace, plan=plan)
    _, dW, _ = conv2d_backward(x, cache, workspace, input_grad=False, bias_grad=False)
    return dx, dW
