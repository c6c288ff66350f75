"""2-D convolution (cross-correlation, as in every deep-learning library), NHWC / HWIO.

Shapes: ``x (n, h, w, c)``, kernel ``W (kh, kw, c, f)``, bias ``b (f,)``,
output ``y (n, oh, ow, f)``.  With ``x_pad`` the zero-padded input:

Forward::

    y[b, p, q, o] = Σ_{i,j,ch} x_pad[b, p·sh + i, q·sw + j, ch] · W[i, j, ch, o] + b[o]

    im2col:  Y (n·oh·ow, f) = cols (n·oh·ow, kh·kw·c) @ W2 (kh·kw·c, f) + b

Backward, given ``dy = ∂L/∂y``::

    ∂L/∂b[o]        = Σ_{b,p,q} dy[b, p, q, o]
    ∂L/∂W[i,j,ch,o] = Σ_{b,p,q} x_pad[b, p·sh+i, q·sw+j, ch] · dy[b, p, q, o]   (X ⋆ ∂L/∂O)
                    ->  dW2 = colsᵀ @ dY
    ∂L/∂x           = col2im(dY @ W2ᵀ)                  (= pad(∂L/∂O) ⊛ rot180(W) for stride 1)

``docs/backprop.md`` derives these step by step.

Memory: ``cols`` is kh·kw times larger than ``x``.  When it would exceed ``budget``
bytes, the batch is processed in chunks and the columns are recomputed in backward
instead of kept (the cache then holds ``x`` only).
"""
from __future__ import annotations

from typing import NamedTuple

from ..backend import get_array_module
from .geometry import window_geometry
from .im2col import col2im, im2col
from .matmul import matmul
from .workspace import Workspace


class ConvCache(NamedTuple):
    x: object            # the input (n, h, w, c)
    cols: object         # its columns (n·oh·ow, kh·kw·c), or None when chunked (or spent)
    W: object            # the kernel (kh, kw, c, f)
    strides: tuple
    pads: tuple          # (top, bottom, left, right)
    out_hw: tuple        # (oh, ow)
    chunk: int           # images per im2col chunk


def _chunk_size(n, row_bytes, budget):
    if budget is None or n * row_bytes <= budget:
        return n
    return max(1, int(budget // row_bytes))


def conv2d_forward(x, W, b, strides=(1, 1), padding="valid", workspace=None, budget=None):
    """y = conv(x, W) + b; returns ``(y, cache)`` (``b`` may be None).  ``y`` is the
    workspace's reusable ``'y'`` buffer (``ops/workspace.py``)."""
    n, h, w, c = x.shape
    kh, kw, _, f = W.shape
    oh, ow, pads = window_geometry(h, w, (kh, kw), strides, padding, "conv2d")
    workspace = workspace if workspace is not None else Workspace()
    W2 = W.reshape(kh * kw * c, f)                                  # (kh·kw·c, f)
    chunk = _chunk_size(n, oh * ow * kh * kw * c * x.itemsize, budget)
    y = workspace.reusable("y", (n * oh * ow, f), x.dtype, like=x)
    cols = None
    if chunk == n:
        buf = workspace.get("cols", (n * oh * ow, kh * kw * c), x.dtype, like=x)
        cols = im2col(x, (kh, kw), strides, pads, (oh, ow), out=buf)
        matmul(cols, W2, out=y)                                     # (n·oh·ow, kh·kw·c) @ (kh·kw·c, f)
    else:
        for start in range(0, n, chunk):
            xs = x[start:start + chunk]
            buf = workspace.get("cols", (xs.shape[0] * oh * ow, kh * kw * c), x.dtype, like=x)
            matmul(im2col(xs, (kh, kw), strides, pads, (oh, ow), out=buf), W2,
                   out=y[start * oh * ow:(start + xs.shape[0]) * oh * ow])
    if b is not None:
        y += b
    cache = ConvCache(x, cols, W, tuple(strides), pads, (oh, ow), chunk)
    return y.reshape(n, oh, ow, f), cache


def conv2d_backward(dy, cache: ConvCache, workspace=None, input_grad=True, bias_grad=True, overwrite_cols=False):
    """(dx, dW, db) from ``dy (n, oh, ow, f)`` (see the module docstring); ``dx`` is None
    when ``input_grad`` is False (the first layer of a training step needs no ∂L/∂x),
    ``db`` when ``bias_grad`` is False (the layer's epilogue sums it, ``ops/epilogue.py``).
    ``overwrite_cols``: once dW is computed the columns are spent, so ∂L/∂cols is written
    over them instead of into a second buffer of the same size (the cache's ``cols`` must
    then not be used again)."""
    x, cols, W = cache.x, cache.cols, cache.W
    n, h, w, c = x.shape
    kh, kw, _, f = W.shape
    oh, ow = cache.out_hw
    W2 = W.reshape(kh * kw * c, f)
    dy2 = dy.reshape(n * oh * ow, f)                                # (n·oh·ow, f)
    db = dy2.sum(axis=0) if bias_grad else None
    workspace = workspace if workspace is not None else Workspace()
    if cols is not None:
        dW = (cols.T @ dy2).reshape(W.shape)                        # (kh·kw·c, n·oh·ow) @ (n·oh·ow, f)
        if not input_grad:
            return None, dW, db
        dcols = cols if overwrite_cols else workspace.get("dcols", (n * oh * ow, kh * kw * c), dy.dtype, like=dy)
        matmul(dy2, W2.T, out=dcols)                                # (n·oh·ow, f) @ (f, kh·kw·c)
        dx = col2im(dcols, x.shape, (kh, kw), cache.strides, cache.pads, (oh, ow),
                    out=workspace.reusable("dx", x.shape, dy.dtype, like=dy))
        return dx, dW, db
    dW2 = None
    dx_parts = []
    for start in range(0, n, cache.chunk):                          # recompute the columns per chunk
        xs = x[start:start + cache.chunk]
        rows = slice(start * oh * ow, (start + xs.shape[0]) * oh * ow)
        buf = workspace.get("cols", (xs.shape[0] * oh * ow, kh * kw * c), x.dtype, like=x)
        cols_s = im2col(xs, (kh, kw), cache.strides, cache.pads, (oh, ow), out=buf)
        part = cols_s.T @ dy2[rows]
        dW2 = part if dW2 is None else dW2 + part
        if input_grad:
            dx_parts.append(col2im(matmul(dy2[rows], W2.T), xs.shape, (kh, kw), cache.strides, cache.pads, (oh, ow)))
    dx = get_array_module(x).concatenate(dx_parts, axis=0) if input_grad else None
    return dx, dW2.reshape(W.shape), db
