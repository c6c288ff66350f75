"""CUDA bodies of the copy-heavy ops, from the ``.cu`` sources in ``kernels/``.

The sources ship inside the wheel as ``minicnn._kernels`` (with the shared header
``nhwc.cuh``, found through ``-I``); each is compiled once per process with
``cupy.RawModule`` (float and double instantiations), with ``#line`` so that compiler
errors name the ``.cu`` file.  Integer arguments are passed as ``np.int32`` /
``np.int64`` explicitly (CuPy would pass Python ints as 64-bit without checking).
Launches are asynchronous: nothing here synchronizes.
"""
from __future__ import annotations

import functools
import pathlib
from importlib import resources

import numpy as np

from .. import backend

THREADS = 256
IM2COL_LANES = 32       # the threads that share one row of cols: a warp
ACTIVATIONS = {"linear": 0, "relu": 1, "sigmoid": 2}


def kernel_dir():
    """The folder of the ``.cu`` sources: the package ``minicnn._kernels`` when minicnn is
    installed, else (a source checkout run in place) ``kernels/`` beside the package."""
    try:
        return resources.files("minicnn._kernels")
    except ModuleNotFoundError:
        return pathlib.Path(__file__).resolve().parents[2] / "kernels"


KERNEL_DIR = kernel_dir()


def source(name: str) -> str:
    path = KERNEL_DIR / f"{name}.cu"
    return f'#line 1 "{path}"\n' + path.read_text()


@functools.lru_cache(maxsize=None)
def module(name: str, kernels: tuple):
    cupy = backend.require_gpu()
    expressions = [f"{k}<{t}>" for k in kernels for t in ("float", "double")]
    return cupy.RawModule(code=source(name), options=("-std=c++17", f"-I{KERNEL_DIR}"),
                          name_expressions=expressions)


def kernel(name, function, dtype, kernels):
    t = "float" if np.dtype(dtype) == np.float32 else "double"
    return module(name, kernels).get_function(f"{function}<{t}>")


def launch(fn, items, args, block=(THREADS,)):
    """fn on enough blocks for ``items`` (at most 65535: the kernels loop over the grid), one item
    per thread along the block's last axis (im2col's blocks are (lanes, rows): an item is a row)."""
    blocks = int(min(max((items + block[-1] - 1) // block[-1], 1), 65535))
    fn((blocks,), block, args)


def _ints(*values):
    return tuple(np.int32(v) for v in values)


def im2col(x, kernel_size, strides, pads, out_hw, out=None):
    cupy = backend.require_gpu()
    n, h, w, c = x.shape
    x = cupy.ascontiguousarray(x)
    rows, k = n * out_hw[0] * out_hw[1], kernel_size[0] * kernel_size[1] * c
    out = out if out is not None else cupy.empty((rows, k), dtype=x.dtype)
    fn = kernel("im2col", "im2col", x.dtype, ("im2col",))
    launch(fn, rows, (x, out, *_ints(n, h, w, c, *kernel_size, *strides, pads[0], pads[2], *out_hw)),
           block=(IM2COL_LANES, THREADS // IM2COL_LANES))           # (im2col.cu's thread mapping)
    return out


def col2im(cols, x_shape, kernel_size, strides, pads, out_hw, out=None):
    cupy = backend.require_gpu()
    n, h, w, c = x_shape
    dx = out if out is not None else cupy.empty(x_shape, dtype=cols.dtype)
    fn = kernel("col2im", "col2im", cols.dtype, ("col2im",))
    launch(fn, n * h * w * c, (cupy.ascontiguousarray(cols), dx,
                               *_ints(n, h, w, c, *kernel_size, *strides, pads[0], pads[2], *out_hw)))
    return dx


POOL = ("maxpool_forward", "maxpool_backward")


def maxpool_forward(x, pool, strides, pads, out_hw, out=None, switches=True):
    """(y, switches), or (y, None) without ``switches`` (the kernel still writes them, into a
    block of CuPy's memory pool that goes back to it at once)."""
    cupy = backend.require_gpu()
    n, h, w, c = x.shape
    y, into = out if out is not None else (cupy.empty((n, *out_hw, c), dtype=x.dtype), None)
    if into is None:
        into = cupy.empty((n, *out_hw, c), dtype=cupy.int32)
    fn = kernel("maxpool", "maxpool_forward", x.dtype, POOL)
    launch(fn, y.size, (cupy.ascontiguousarray(x), y, into,
                        *_ints(n, h, w, c, *pool, *strides, pads[0], pads[2], *out_hw)))
    return y, into if switches else None


def maxpool_backward(dy, switches, x_shape, pool, strides, pads, out=None):
    cupy = backend.require_gpu()
    n, h, w, c = x_shape
    dx = out if out is not None else cupy.empty(x_shape, dtype=dy.dtype)
    fn = kernel("maxpool", "maxpool_backward", dy.dtype, POOL)
    launch(fn, dx.size, (cupy.ascontiguousarray(dy), switches, dx,
                         *_ints(n, h, w, c, *pool, *strides, pads[0], pads[2], dy.shape[1], dy.shape[2])))
    return dx


def activation_forward_inplace(z, name, bias=None):
    """z ← act(z + bias) in place (no bias when ``bias`` is None); z is the layer's own GEMM output."""
    fn = kernel("bias_act", "bias_act_forward", z.dtype, ("bias_act_forward", "act_backward"))
    f = z.shape[-1]
    b = None if bias is None else backend.require_gpu().ascontiguousarray(bias, dtype=z.dtype)
    launch(fn, z.size, (z, b, np.int64(z.size // f), np.int32(f), np.int32(ACTIVATIONS[name])))
    return z


def activation_backward(da, out, name, dz=None):
    cupy = backend.require_gpu()
    dz = cupy.empty_like(da) if dz is None else dz
    fn = kernel("bias_act", "act_backward", da.dtype, ("bias_act_forward", "act_backward"))
    launch(fn, da.size, (cupy.ascontiguousarray(da), out, dz, np.int64(da.size), np.int32(ACTIVATIONS[name])))
    return dz


def softmax_cross_entropy(z, y):
    """(mean loss as a 0-d device array, ∂L/∂z) for logits z (n, k) and targets y (n, k)."""
    cupy = backend.require_gpu()
    n, k = z.shape
    loss, dz = cupy.empty(n, dtype=z.dtype), cupy.empty_like(z)
    fn = kernel("softmax_xent", "softmax_xent", z.dtype, ("softmax_xent",))
    launch(fn, n, (cupy.ascontiguousarray(z), cupy.ascontiguousarray(y.astype(z.dtype)), loss, dz,
                   np.int32(n), np.int32(k)))
    return loss.sum() / n, dz
