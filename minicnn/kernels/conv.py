"""2-D convolution (cross-correlation, as in every deep-learning library), NHWC / HWIO.

Shapes: ``x (n, h, w, c)``, kernel ``W (kh, kw, c, f)``, bias ``b (f,)``,
output ``y (n, oh, ow, f)``.  With ``x_pad`` the zero-padded input:

Forward::

    y[b, p, q, o] = Σ_{i,j,ch} x_pad[b, p·sh + i, q·sw + j, ch] · W[i, j, ch, o] + b[o]

    im2col:  Y (n·oh·ow, f) = cols (n·oh·ow, kh·kw·c) @ W2 (kh·kw·c, f) + b

Backward, given ``dy = ∂L/∂Y``::

    ∂L/∂b[o]        = Σ_{b,p,q} dy[b, p, q, o]
    ∂L/∂W[i,j,ch,o] = Σ_{b,p,q} x_pad[b, p·sh+i, q·sw+j, ch] · dy[b, p, q, o]   (X ⋆ ∂L/∂Y)
                    ->  dW2 = colsᵀ @ dY
    ∂L/∂X           = col2im(dY @ W2ᵀ)                  (= pad(∂L/∂Y) ⊛ rot180(W) for stride 1,
                                                          per phase of the strides otherwise)

``docs/backprop.md`` derives these step by step.

Which algorithm each pass runs — im2col + BLAS, the *implicit GEMM* that reads every column
entry from the padded input where it lies (``kernels/implicit_gemm.py``), or Winograd's
F(4×4, 3×3) (``kernels/winograd.py``); for ∂L/∂X, col2im, one convolution per phase of the
strides (``kernels/sub_pixel.py``) or, for stride 1, the 'valid'
convolution of ∂L/∂Y padded by (kh − 1 − top, kh − 1 − bottom, kw − 1 − left, kw − 1 − right)
with the kernel rotated by 180° and its channel axes swapped,
``W_rot[i, j, o, ch] = W[kh−1−i, kw−1−j, ch, o]`` — is decided once, by
``kernels/conv_plan.py``: the forward takes a ``ConvPlan`` (or asks ``conv_plan.choose``), and
the cache carries it to the backward.

Memory: ``cols`` is kh·kw times larger than ``x``.  When it would exceed ``budget``
bytes, the batch is processed in chunks and the columns are recomputed in backward
instead of kept (the cache then holds ``x`` only).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import backend
from . import conv_plan, epilogue
from .conv_plan import ConvPlan
from .dispatch import family
from .geometry import window_geometry
from .im2col import col2im, im2col
from .matmul import matmul
from .padding import pad, padded_shape
from .workspace import Workspace


@dataclass(slots=True, eq=False)
class ConvCache:
    x: object            # the input (n, h, w, c)
    cols: object         # its columns (n·oh·ow, kh·kw·c), or None when not built, chunked or spent
                         # (a backward that writes ∂L/∂cols over them sets None: the next recomputes them)
    x_pad: object        # the zero-padded input when the forward ran on the implicit GEMM, else None
    W: object            # the kernel (kh, kw, c, f)
    strides: tuple
    pads: tuple          # (top, bottom, left, right)
    out_hw: tuple        # (oh, ow)
    chunk: int           # images per im2col chunk
    plan: ConvPlan       # the algorithm of each pass (kernels/conv_plan.py)


def _chunk_size(n, row_bytes, budget):
    if budget is None or n * row_bytes <= budget:
        return n
    return max(1, int(budget // row_bytes))


def padded(x, pads, workspace, name):
    """x zero-padded by (top, bottom, left, right) in the workspace's buffer ``name``
    (on the Numba kernels: the implicit GEMM's input).  The buffer is lent, not scratch: a
    cache keeps it, and a layer called twice in one pass must not pad over its first call's."""
    return pad(x, pads, out=workspace.reusable(name, padded_shape(x.shape, pads), x.dtype, like=x)) if any(pads) else x


def conv2d_forward(x, W, b, strides=(1, 1), padding="valid", workspace=None, budget=None, relu=False, plan=None):
    """y = act(conv(x, W) + b), act the ReLU when ``relu``, else the identity; returns
    ``(y, cache)`` (``b`` may be None), on the algorithms of ``plan`` (a ``ConvPlan``; None:
    ``conv_plan.choose``'s).  ``y`` is the workspace's reusable ``'y'`` buffer
    (``kernels/workspace.py``).  The bias and activation are the layer's epilogue
    (``kernels/epilogue.py``): one pass over y after im2col's product, or, on the implicit GEMM
    and the Winograd kernels, applied as y is stored."""
    n, h, w, c = x.shape
    kh, kw, _, f = W.shape
    oh, ow, pads = window_geometry(h, w, (kh, kw), strides, padding, "conv2d")
    workspace = workspace if workspace is not None else Workspace()
    W2 = W.reshape(kh * kw * c, f)                                  # (kh·kw·c, f)
    chunk = _chunk_size(n, oh * ow * kh * kw * c * x.itemsize, budget)
    y = workspace.reusable("y", (n * oh * ow, f), x.dtype, like=x)
    plan = plan if plan is not None else conv_plan.choose(x.shape, W.shape, strides, pads, family(x), dtype=x.dtype)
    cols = x_pad = None
    if plan.forward == "winograd":
        from . import winograd
        winograd.conv2d(x, pads, W, y.reshape(n, oh, ow, f), workspace, b, relu)
    elif plan.forward == "implicit_gemm":
        from . import implicit_gemm
        x_pad = padded(x, pads, workspace, "x_pad")
        implicit_gemm.conv2d(x_pad, W, strides, out=y.reshape(n, oh, ow, f), workspace=workspace, bias=b, relu=relu)
    elif chunk == n:
        buf = workspace.reusable("cols", (n * oh * ow, kh * kw * c), x.dtype, like=x)      # kept by the cache
        cols = im2col(x, (kh, kw), strides, pads, (oh, ow), out=buf)
        matmul(cols, W2, out=y)                                     # (n·oh·ow, kh·kw·c) @ (kh·kw·c, f)
    else:
        for start in range(0, n, chunk):
            xs = x[start:start + chunk]
            matmul(_columns(xs, (kh, kw), strides, pads, (oh, ow), workspace), W2,
                   out=y[start * oh * ow:(start + xs.shape[0]) * oh * ow])
    if plan.forward == "im2col":                                    # (the others apply it as they store)
        epilogue.bias_activation(y, b, relu)                        # one parallel pass on the Numba kernels
    cache = ConvCache(x, cols, x_pad, W, tuple(strides), pads, (oh, ow), chunk, plan)
    return y.reshape(n, oh, ow, f), cache


def _columns(xs, kernel, strides, pads, out_hw, workspace):
    """im2col of the images ``xs`` into the workspace's ``'cols'`` buffer."""
    buf = workspace.get("cols", (xs.shape[0] * out_hw[0] * out_hw[1], kernel[0] * kernel[1] * xs.shape[3]),
                        xs.dtype, like=xs)
    return im2col(xs, kernel, strides, pads, out_hw, out=buf)


def conv2d_backward(dy, cache: ConvCache, workspace=None, input_grad=True, bias_grad=True, overwrite_cols=False):
    """(dx, dW, db) from ``dy (n, oh, ow, f)`` (see the module docstring), on the algorithms
    the forward chose (``cache.plan``); ``dx`` is None
    when ``input_grad`` is False (the first layer of a training step needs no ∂L/∂X),
    ``db`` when ``bias_grad`` is False (the layer's epilogue sums it, ``kernels/epilogue.py``);
    on the implicit GEMM and the Winograd kernels ∂L/∂W's kernel sums ``db`` as it reads dy,
    on im2col a pass of its own.
    ``overwrite_cols``: once dW is computed the columns are spent, so ∂L/∂cols is written
    over them instead of into a second buffer of the same size (and ``cache.cols`` set to
    None: a second backward from the same forward rebuilds them from x)."""
    n, oh, ow, f = dy.shape
    dy2 = dy.reshape(n * oh * ow, f)                                # (n·oh·ow, f)
    workspace = workspace if workspace is not None else Workspace()
    if cache.plan.input_grad == "one_pass" and input_grad:          # (1×1: both products in one pass over dy)
        from . import pointwise
        dx = workspace.reusable("dx", cache.x.shape, dy.dtype, like=dy)
        return pointwise.conv2d_backward(cache.x, dy, cache.W, dx, workspace, bias_grad)
    if cache.plan.kernel_grad == "winograd":
        from . import winograd
        dW, db = winograd.conv2d_kernel_grad(cache.x, cache.pads, dy, workspace)
    elif cache.plan.kernel_grad == "implicit_gemm":
        from . import implicit_gemm
        x_pad = cache.x_pad if cache.x_pad is not None else padded(cache.x, cache.pads, workspace, "x_pad")
        dW2, db = implicit_gemm.conv2d_kernel_grad(x_pad, dy, cache.W.shape[:2], cache.strides, workspace, bias_grad)
        dW = dW2.reshape(cache.W.shape)
    else:
        dW = _kernel_grad(dy2, cache, workspace).reshape(cache.W.shape)
        db = epilogue.bias_grad(dy2) if bias_grad else None
    dx = _input_grad(dy, cache, workspace, overwrite_cols) if input_grad else None
    return dx, dW, db if bias_grad else None


def _kernel_grad(dy2, cache, workspace):
    """dW2 = colsᵀ @ dY: (kh·kw·c, n·oh·ow) @ (n·oh·ow, f), from the cached columns, else
    with the columns rebuilt chunk by chunk."""
    x, (kh, kw, _, f) = cache.x, cache.W.shape
    if cache.cols is not None:
        return cache.cols.T @ dy2
    pixels = cache.out_hw[0] * cache.out_hw[1]
    dW2 = None
    for start in range(0, x.shape[0], cache.chunk):
        xs = x[start:start + cache.chunk]
        part = _columns(xs, (kh, kw), cache.strides, cache.pads, cache.out_hw, workspace).T \
            @ dy2[start * pixels:(start + xs.shape[0]) * pixels]
        dW2 = part if dW2 is None else dW2 + part
    return dW2


def conv2d_input_grad(dy, W, x_shape, strides, pads, workspace=None, plan=None):
    """∂L/∂X of the convolution (kernel W, ``pads``) of an input of shape ``x_shape``, from dy
    alone, on ``plan``'s ∂L/∂X algorithm (None: ``conv_plan.choose``'s): also the forward of
    the transposed convolution (``kernels/conv_variants.py``)."""
    xp = backend.get_array_module(dy)
    stand_in = xp.broadcast_to(xp.zeros((), dy.dtype), x_shape)     # x's shape; its values are never read
    plan = plan if plan is not None else conv_plan.choose(x_shape, W.shape, strides, pads, family(dy), dtype=dy.dtype)
    cache = ConvCache(stand_in, None, None, W, tuple(strides), tuple(pads), tuple(dy.shape[1:3]), x_shape[0], plan)
    return _input_grad(dy, cache, workspace if workspace is not None else Workspace(), False)


def _input_grad(dy, cache, workspace, overwrite_cols):
    """∂L/∂X: the full convolution (see the module docstring) on the Winograd kernels or the
    implicit GEMM, one per phase of the strides (``sub_pixel``), or col2im(dY @ W2ᵀ), chunk by
    chunk when the cache has no columns, as ``cache.plan`` says."""
    x, W = cache.x, cache.W
    kh, kw, c, f = W.shape
    (top, bottom, left, right), (oh, ow) = cache.pads, cache.out_hw
    dx = workspace.reusable("dx", x.shape, dy.dtype, like=dy)
    if cache.plan.input_grad == "sub_pixel":
        from . import sub_pixel
        return sub_pixel.conv2d_input_grad(dy, W, x.shape, cache.strides, cache.pads, dx, workspace)
    if cache.plan.input_grad != "col2im":                           # ('one_pass' alone: the implicit GEMM's)
        full_pads = (kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right)
        W_rot = W[::-1, ::-1].transpose(0, 1, 3, 2)                 # (kh, kw, f, c)
        if cache.plan.input_grad == "winograd":
            from . import winograd
            return winograd.conv2d(dy, full_pads, W_rot, dx, workspace)
        from . import implicit_gemm
        return implicit_gemm.conv2d(padded(dy, full_pads, workspace, "dy_pad"), W_rot, (1, 1), out=dx, workspace=workspace)
    dy2, W2T = dy.reshape(-1, f), W.reshape(kh * kw * c, f).T       # (n·oh·ow, f), (f, kh·kw·c)
    geometry = ((kh, kw), cache.strides, cache.pads, (oh, ow))
    if cache.cols is not None:
        dcols = cache.cols if overwrite_cols else workspace.get("dcols", cache.cols.shape, dy.dtype, like=dy)
        if overwrite_cols:
            cache.cols = None
        return col2im(matmul(dy2, W2T, out=dcols), x.shape, *geometry, out=dx)
    for start in range(0, x.shape[0], cache.chunk):
        images = slice(start, start + cache.chunk)
        rows = dy2[start * oh * ow:(start + cache.chunk) * oh * ow]
        dcols = workspace.get("dcols", (rows.shape[0], kh * kw * c), dy.dtype, like=dy)
        col2im(matmul(rows, W2T, out=dcols), x[images].shape, *geometry, out=dx[images])
    return dx
