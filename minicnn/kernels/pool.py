"""2-D max pooling, NHWC.

Forward, for a ``ph × pw`` window with strides ``(sh, sw)`` over the padded input
(``'same'`` pads with −inf, so a padded cell is never the maximum)::

    y[b, p, q, ch] = max_{i,j} x_pad[b, p·sh + i, q·sw + j, ch]
    switch[b, p, q, ch] = argmax_{i·pw + j} (...)          ties: the FIRST maximum in
                                                            row-major window order

(A window whose pixels are all −inf: the Numba kernels name its first pixel inside the
image, since their backward writes at the switch unchecked; the others its first cell.)

Backward: the gradient flows only through the recorded switch::

    ∂L/∂x_pad[b, p·sh + i, q·sw + j, ch] += dy[b, p, q, ch]   where switch = i·pw + j

Overlapping windows (stride < pool size) add their contributions.  A forward no backward
follows (``inference.forward_only``) writes no switches: the window's max only.

A ReLU below the pool (``a = max(z, 0)``, pooled: ``x = a``) gates its gradient with
``[a > 0]``.  Every nonzero ``∂L/∂a`` lies at a switch, where ``a`` is the window's
maximum ``y``, so the gate can be applied before routing, on the pool's output (a
quarter of the values, for 2×2 windows)::

    g = dy · [y > 0]
    ∂L/∂z = route(g)            ∂L/∂b[ch] = Σ_{b,p,q} g[b, p, q, ch]

(``b``: the bias of the layer whose ReLU it is) — ``maxpool_relu_backward``, one pass on
the Numba kernels.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..inference import no_backward_follows
from .dispatch import pick
from .epilogue import bias_grad
from .geometry import window_geometry
from .im2col import padded_windows, written_into
from .padding import pad


class PoolCache(NamedTuple):
    x_shape: tuple
    y: object            # the output (n, oh, ow, c)
    switches: object     # int32 (n, oh, ow, c): flat window index of each maximum (None: not written)
    pool: tuple
    strides: tuple
    pads: tuple


def maxpool_forward_numpy(x, pool, strides, pads, out_hw, out=None, switches=True):
    """(y, switches), or (y, None) without ``switches``; ``out``: the buffers (y, switches or None)."""
    windows = padded_windows(pad(x, pads, -np.inf), pool, strides, out_hw)
    if not switches:
        y = windows.max(axis=(3, 4))
        return (y if out is None else written_into(out[0], y)), None
    n, oh, ow, ph, pw, c = windows.shape
    flat = windows.transpose(0, 1, 2, 5, 3, 4).reshape(n, oh, ow, c, ph * pw)  # copies
    switches = flat.argmax(axis=-1).astype(np.int32)                            # first max
    y = np.take_along_axis(flat, switches[..., None], axis=-1)[..., 0]
    return (y, switches) if out is None else (written_into(out[0], y), written_into(out[1], switches))


def maxpool_backward_numpy(dy, switches, x_shape, pool, strides, pads, out=None):
    n, h, w, c = x_shape
    (ph, pw), (sh, sw) = pool, strides
    top, bottom, left, right = pads
    _, oh, ow, _ = dy.shape
    dx_pad = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dy.dtype)
    for i in range(ph):
        for j in range(pw):
            routed = np.where(switches == i * pw + j, dy, 0)
            dx_pad[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :] += routed
    return written_into(out, dx_pad[:, top:top + h, left:left + w, :])


def maxpool_forward(x, pool=(2, 2), strides=None, padding="valid", workspace=None):
    """``(y, cache)``; ``strides`` defaults to ``pool`` (Keras).  With a ``workspace``, ``y``
    and the switches are its reusable ``'y'`` and ``'switches'`` buffers.  In a forward no
    backward follows (``inference.forward_only``) no switches are written (None)."""
    strides = tuple(strides or pool)
    n, h, w, c = x.shape
    oh, ow, pads = window_geometry(h, w, pool, strides, padding, "max_pooling2d")
    kept = not no_backward_follows()
    out = None if workspace is None else (
        workspace.reusable("y", (n, oh, ow, c), x.dtype, like=x),
        workspace.reusable("switches", (n, oh, ow, c), np.int32, like=x) if kept else None)
    forward = pick(x, maxpool_forward_numpy, numba="numba_pool.maxpool_forward", cuda="cuda_kernels.maxpool_forward")
    y, switches = forward(x, pool, strides, pads, (oh, ow), out, kept)
    return y, PoolCache(x.shape, y, switches, tuple(pool), strides, pads)


def _backward_args(dy, cache, workspace):
    """The kernels' arguments: dy, the forward's geometry, and the output buffer (the
    workspace's reusable ``'dx'`` when one is given)."""
    out = None if workspace is None else workspace.reusable("dx", cache.x_shape, dy.dtype, like=dy)
    return dy, cache.switches, cache.x_shape, cache.pool, cache.strides, cache.pads, out


def maxpool_backward(dy, cache: PoolCache, workspace=None):
    """dx (n, h, w, c) from dy (n, oh, ow, c): routed to the switches, summed on overlap
    (into the workspace's reusable ``'dx'`` buffer when one is given)."""
    backward = pick(dy, maxpool_backward_numpy, numba="numba_pool.maxpool_backward",
                    cuda="cuda_kernels.maxpool_backward")
    return backward(*_backward_args(dy, cache, workspace))


def maxpool_relu_backward(dy, cache: PoolCache, workspace=None):
    """(∂L/∂z, ∂L/∂b) of the ReLU layer below the pool, from the pool's dy (see the module
    docstring): ∂L/∂z into the workspace's reusable ``'dx'`` buffer when one is given."""
    return pick(dy, _maxpool_relu_backward_in_two_passes, numba="numba_pool.maxpool_relu_backward")(
        *_backward_args(dy, cache, workspace), cache.y)


def _maxpool_relu_backward_in_two_passes(dy, switches, x_shape, pool, strides, pads, out, y):
    """The gate, then the pool's own backward (NumPy or CUDA) and ∂L/∂b's sum: three passes."""
    gated = dy * (y > 0)
    backward = pick(dy, maxpool_backward_numpy, cuda="cuda_kernels.maxpool_backward")
    return backward(gated, switches, x_shape, pool, strides, pads, out), bias_grad(gated)
