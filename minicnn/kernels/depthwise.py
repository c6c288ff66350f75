"""Depthwise 2-D convolution, NHWC, kernel ``(kh, kw, c, m)`` (``m``: the depth multiplier),
on NumPy or CuPy arrays alike.  Every input channel is convolved with its own ``m`` filters;
output channel ``ch·m + k`` (Keras's order)::

    y[b,p,q,ch,k] = Σ_{i,j} x_pad[b, p·sh + i·dh, q·sw + j·dw, ch] · W[i,j,ch,k]

    ∂L/∂W[i,j,ch,k] = Σ_{b,p,q} x_pad[b, p·sh + i·dh, q·sw + j·dw, ch] · dy[b,p,q,ch,k]
    ∂L/∂x_pad[b, p·sh + i·dh, q·sw + j·dw, ch] += Σ_k W[i,j,ch,k] · dy[b,p,q,ch,k]

Each is ``kh·kw`` strided slices of the padded input, one per tap, vectorized over the batch,
the output pixels and the channels: there is no sum over input channels to hand to a
matrix product (a depthwise convolution does c/m times fewer multiplications than a plain
one, and is memory-bound).
"""
from __future__ import annotations

from .. import backend
from .padding import pad, padded_shape


def tap_slices(i, j, strides, rate, out_hw):
    """x_pad[:, p·sh + i·dh, q·sw + j·dw, :] for every output pixel (p, q), as one slice."""
    (sh, sw), (dh, dw), (oh, ow) = strides, rate, out_hw
    return (slice(None), slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw), slice(None))


def depthwise_forward(x, W, strides, pads, rate, out_hw, out=None):
    """y (n, oh, ow, c·m) from x (n, h, w, c) and W (kh, kw, c, m), written into ``out``
    when given."""
    xp = backend.get_array_module(x)
    x_pad = pad(x, pads)
    kh, kw, c, m = W.shape
    y = out if out is not None else xp.empty((x.shape[0], *out_hw, c * m), dtype=x.dtype)
    y5 = y.reshape(x.shape[0], *out_hw, c, m)
    y5[...] = 0
    for i in range(kh):
        for j in range(kw):
            y5 += x_pad[tap_slices(i, j, strides, rate, out_hw)][..., None] * W[i, j]
    return y


def depthwise_backward(dy, x, W, strides, pads, rate, input_grad=True, out=None, workspace=None):
    """(∂L/∂x, ∂L/∂W) from dy (n, oh, ow, c·m) and the forward's input x (∂L/∂x None when
    not ``input_grad``; written into ``out`` when given; x padded again here, into
    ``workspace``'s buffer when given, so that the forward keeps no padded copy)."""
    xp = backend.get_array_module(dy)
    kh, kw, c, m = W.shape
    n, oh, ow, _ = dy.shape
    x_pad = x if not any(pads) else pad(x, pads, out=None if workspace is None else
                                        workspace.get("depthwise_x_pad", padded_shape(x.shape, pads), x.dtype, like=x))
    dy5 = dy.reshape(n, oh, ow, c, m)
    dW = xp.empty_like(W)
    dx_pad = xp.zeros_like(x_pad) if input_grad else None
    for i in range(kh):
        for j in range(kw):
            taps = tap_slices(i, j, strides, rate, (oh, ow))
            dW[i, j] = xp.einsum("npqc,npqcm->cm", x_pad[taps], dy5)
            if input_grad:
                dx_pad[taps] += (dy5 * W[i, j]).sum(axis=-1)
    if not input_grad:
        return None, dW
    top, bottom, left, right = pads
    dx = out if out is not None else xp.empty(x.shape, dtype=dy.dtype)
    dx[...] = dx_pad[:, top:x_pad.shape[1] - bottom, left:x_pad.shape[2] - right, :]
    return dx, dW
