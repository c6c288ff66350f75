"""Padding, the one op that frames an NHWC tensor: ``pads = (top, bottom, left, right)``
rows and columns of ``value`` around every image::

    out[b, top + y, left + x, ch] = x[b, y, x, ch],    every other cell = value

Zeros for a convolution's input (and for ∂L/∂x's full convolution, around ∂L/∂y); −∞ for
a max-pool's, so that a padded cell is never a window's maximum.  On the Numba kernels
one parallel pass (``numba_copies.pad_into``), else array expressions (NumPy or CuPy).
"""
from __future__ import annotations

from .. import backend
from .dispatch import pick


def padded_shape(shape, pads):
    """The shape of x (n, h, w, c) padded by ``pads``."""
    n, h, w, c = shape
    return (n, h + pads[0] + pads[1], w + pads[2] + pads[3], c)


def pad(x, pads, value=0.0, out=None):
    """x framed by ``value`` (see the module docstring), written into ``out`` when given;
    x itself when every pad is 0 and no ``out`` is given."""
    if not any(pads) and out is None:
        return x
    if out is None:
        out = backend.get_array_module(x).empty(padded_shape(x.shape, pads), dtype=x.dtype)
    pick(x, _pad_with_array_expressions, numba="numba_copies.pad_into")(x, pads, value, out)
    return out


def _pad_with_array_expressions(x, pads, value, out):
    top, _, left, _ = pads
    out[...] = value
    out[:, top:top + x.shape[1], left:left + x.shape[2], :] = x
