"""Keras's public array API (``keras.ops``), the subset that CNN code and the Keras
guides use, on NumPy (CuPy arrays stay on the GPU: each op uses the module of its input).

Same names, arguments and results as ``keras.ops``: ``ops.mean(x, axis=-1)``,
``ops.convert_to_numpy(t)``, ``ops.one_hot(y, 10)``, ...  New arrays default to
``backend.floatx()``, as in Keras.
"""
from __future__ import annotations

import numpy as np

from . import activations, backend
from .backend import get_array_module


def _float(dtype):
    return dtype or backend.floatx()


def convert_to_tensor(x, dtype=None, sparse=None):
    xp = get_array_module(x)
    return xp.asarray(x, dtype=dtype)


def convert_to_numpy(x):
    return np.array(backend.to_numpy(x))


def ones(shape, dtype=None):
    return np.ones(shape, dtype=_float(dtype))


def zeros(shape, dtype=None):
    return np.zeros(shape, dtype=_float(dtype))


def full(shape, fill_value, dtype=None):
    return np.full(shape, fill_value, dtype=_float(dtype))


def ones_like(x, dtype=None):
    return get_array_module(x).ones_like(x, dtype=dtype)


def zeros_like(x, dtype=None):
    return get_array_module(x).zeros_like(x, dtype=dtype)


def arange(start, stop=None, step=1, dtype=None):
    return np.arange(start, stop, step, dtype=dtype)


def eye(n, m=None, k=0, dtype=None):
    return np.eye(n, m, k, dtype=_float(dtype))


def _reduction(name):
    def reduce(x, axis=None, keepdims=False):
        return getattr(get_array_module(x), name)(x, axis=axis, keepdims=keepdims)
    reduce.__name__ = name
    reduce.__doc__ = f"``{name}`` over ``axis`` (all axes when None)."
    return reduce


mean, sum, max, min, prod, std, var, any, all = (_reduction(n) for n in (  # noqa: A001 (Keras's names)
    "mean", "sum", "max", "min", "prod", "std", "var", "any", "all"))


def argmax(x, axis=None, keepdims=False):
    return get_array_module(x).argmax(x, axis=axis, keepdims=keepdims)


def argmin(x, axis=None, keepdims=False):
    return get_array_module(x).argmin(x, axis=axis, keepdims=keepdims)


def _elementwise(name):
    def apply(x):
        return getattr(get_array_module(x), name)(x)
    apply.__name__ = name
    return apply


abs, exp, log, sqrt, square, sign, tanh, floor, ceil, round = (_elementwise(n) for n in (  # noqa: A001
    "abs", "exp", "log", "sqrt", "square", "sign", "tanh", "floor", "ceil", "round"))


def _binary(name):
    def apply(x1, x2):
        return getattr(get_array_module(x1, x2), name)(x1, x2)
    apply.__name__ = name
    return apply


add, subtract, multiply, divide, maximum, minimum, power, equal, not_equal, greater, less, matmul = (
    _binary(n) for n in ("add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "equal",
                         "not_equal", "greater", "less", "matmul"))


def clip(x, x_min, x_max):
    return get_array_module(x).clip(x, x_min, x_max)


def reshape(x, newshape):
    return get_array_module(x).reshape(x, newshape)


def transpose(x, axes=None):
    return get_array_module(x).transpose(x, axes)


def expand_dims(x, axis):
    return get_array_module(x).expand_dims(x, axis)


def squeeze(x, axis=None):
    return get_array_module(x).squeeze(x, axis)


def concatenate(xs, axis=0):
    return get_array_module(*xs).concatenate(xs, axis=axis)


def stack(x, axis=0):
    return get_array_module(*x).stack(x, axis=axis)


def where(condition, x1=None, x2=None):
    xp = get_array_module(condition)
    return xp.nonzero(condition) if x1 is None and x2 is None else xp.where(condition, x1, x2)


def cast(x, dtype):
    return get_array_module(x).asarray(x).astype(dtype)


def shape(x):
    return tuple(np.shape(x))


def one_hot(x, num_classes, axis=-1, dtype=None):
    xp = get_array_module(x)
    out = (xp.asarray(x)[..., None] == xp.arange(num_classes)).astype(_float(dtype))
    return xp.moveaxis(out, -1, axis)


def relu(x):
    return activations.relu(x)


def sigmoid(x):
    return activations.sigmoid(x)


def softmax(x, axis=-1):
    return activations.softmax(x, axis)


def top_k(x, k, sorted=True):                      # noqa: A002 (Keras's name)
    """(values, indices) of the ``k`` largest entries along the last axis, largest first."""
    xp = get_array_module(x)
    indices = xp.argsort(-x, axis=-1, kind="stable")[..., :k]
    return xp.take_along_axis(x, indices, axis=-1), indices
