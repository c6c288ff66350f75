"""Conv2D with a ReLU, then a 2×2 max-pool: the forward of both in one kernel (Numba),
for passes that do not need the conv's own output (training and prediction,
``Sequential.forward``).

With ``z = conv(x, W)`` (``kernels/conv.py``) and the pool's 2×2 windows, stride 2, 'valid'::

    a = relu(z + b)                                   the conv layer's output
    y[n, P, Q, ch] = max_{r ∈ window (P, Q)} a[r, ch]     switch = the first arg-max r = i·2 + j

computed window by window while the four pixels' sums are still in registers
(``numba_conv_relu_pool.conv2d_relu_maxpool``): ``a``, four times the pool's output, is never
written, nor read back by the bias pass and by the pool.  The numbers are those of the
three passes — the same sums, and relu(z + b) per pixel before the max — switches
included.  A last odd row or column of conv pixels lies in no window and is not computed.

The backward needs nothing more: the pool's gates by [y > 0] and routes through the
switches, which also gives ∂L/∂b (``kernels/pool.py``, ``maxpool_relu_backward``), and the
conv's reads only its input (``conv2d_backward``; the cache is the implicit GEMM's).  A
forward no backward follows (``inference.py``) writes no switches.
"""
from __future__ import annotations

import numpy as np

from ..inference import no_backward_follows
from . import conv_plan
from .conv import ConvCache, padded
from .dispatch import family
from .geometry import window_geometry
from .pool import PoolCache

POOL = (2, 2)


def fusable(x, W, strides, padding, pool, pool_strides, pool_padding, plan=None) -> bool:
    """True when the conv (kernel W) and the pool over its output can run as one kernel
    here: a 2×2 pool of stride 2, 'valid', over at least one window, and a conv whose forward
    runs on the Numba implicit GEMM (``plan``, the conv's ``ConvPlan``; None:
    ``conv_plan.choose``'s) — not one on Winograd, which with the bias + ReLU and the pool
    passes after it is the faster of the two (``docs/performance.md``, "conv thresholds")."""
    if tuple(pool) != POOL or tuple(pool_strides) != POOL or pool_padding != "valid":
        return False
    oh, ow, pads = window_geometry(x.shape[1], x.shape[2], W.shape[:2], strides, padding, "conv2d")
    plan = plan if plan is not None else conv_plan.choose(x.shape, W.shape, strides, pads, family(x), dtype=x.dtype)
    return oh >= 2 and ow >= 2 and plan.forward == "implicit_gemm"


def conv2d_relu_maxpool_forward(x, W, b, strides, padding, conv_workspace, pool_workspace, plan=None):
    """``(y, conv_cache, pool_cache)`` for y = maxpool2×2(relu(conv(x, W) + b)), the caches
    those of the two layers' own forwards (the conv's backward on ``plan``, the conv's
    ``ConvPlan``; None: ``conv_plan.choose``'s); y and the switches are ``pool_workspace``'s
    reusable ``'y'`` and ``'switches'`` buffers (as in ``maxpool_forward``).  In a forward no
    backward follows (``inference.forward_only``) no switches are written (None)."""
    from . import numba_conv_relu_pool
    n, h, w, _ = x.shape
    kh, kw, _, f = W.shape
    oh, ow, pads = window_geometry(h, w, (kh, kw), strides, padding, "conv2d")
    x_pad = padded(x, pads, conv_workspace, "x_pad")
    y = pool_workspace.reusable("y", (n, oh // 2, ow // 2, f), x.dtype, like=x)
    switches = None if no_backward_follows() else pool_workspace.reusable("switches", y.shape, np.int32, like=x)
    numba_conv_relu_pool.conv2d_relu_maxpool(x_pad, W, b, strides, (oh, ow), y, switches, conv_workspace)
    plan = plan if plan is not None else conv_plan.choose(x.shape, W.shape, strides, pads, family(x), dtype=x.dtype)
    conv_cache = ConvCache(x, None, x_pad, W, tuple(strides), pads, (oh, ow), n, plan)
    return y, conv_cache, PoolCache((n, oh, ow, f), y, switches, POOL, POOL, (0, 0, 0, 0))
