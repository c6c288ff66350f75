"""Layers that only move values: ZeroPadding2D, Cropping2D, UpSampling2D, Reshape, Permute.

Each backward is the adjoint of its forward — the same values moved back (summed where the
forward copied one value to several places)::

    ZeroPadding2D   y = x with (top, bottom, left, right) zero rows/columns added
                    ∂L/∂x = dy with them cropped off
    Cropping2D      y = x[:, top:h−bottom, left:w−right, :]
                    ∂L/∂x = dy zero-padded back to x's shape
    UpSampling2D    y[b, i, j, c] = x[b, ⌊i/sh⌋, ⌊j/sw⌋, c]          (nearest)
                    ∂L/∂x[b, i, j, c] = Σ_{u<sh, v<sw} dy[b, i·sh+u, j·sw+v, c]
    Reshape         y = x.reshape(n, *target_shape)      ∂L/∂x = dy.reshape(x.shape)
    Permute         y = x.transpose(0, *dims)            ∂L/∂x = dy.transpose(inverse)
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..kernels.geometry import normalize_tuple
from .base import Layer


def edge_amounts(value, name, who):
    """Keras's three spellings -> (top, bottom, left, right): an int (all four), a pair
    (symmetric rows, symmetric columns) or a pair of pairs ((top, bottom), (left, right))."""
    if isinstance(value, int) and not isinstance(value, bool):
        amounts = (value,) * 4
    elif len(value) == 2 and all(isinstance(v, int) for v in value):
        amounts = (value[0], value[0], value[1], value[1])
    elif len(value) == 2 and all(not isinstance(v, int) and len(v) == 2 for v in value):
        amounts = (*value[0], *value[1])
    else:
        raise ValueError(f"{who}: {name} must be an int, a pair of ints or a pair of pairs, received {value!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in amounts):
        raise ValueError(f"{who}: {name} must be non-negative ints, received {name}={value!r}")
    return tuple(amounts)


def pad_spatial(x, amounts):
    """x (n, h, w, c) with (top, bottom, left, right) zero rows and columns added."""
    top, bottom, left, right = amounts
    return backend.get_array_module(x).pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def crop_spatial(x, amounts):
    """x (n, h, w, c) with (top, bottom, left, right) rows and columns removed (a copy)."""
    top, bottom, left, right = amounts
    return x[:, top:x.shape[1] - bottom, left:x.shape[2] - right, :].copy()


class Edges2D(Layer):
    """ZeroPadding2D and Cropping2D: rows and columns added (``sign`` +1) or removed (−1) at
    the four edges, their amounts kept under the Keras argument's name (``argument``)."""

    input_rank = 4
    argument, sign = None, None

    def __init__(self, amounts, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.amounts = edge_amounts(amounts, self.argument, self._who())

    def output_shape_of(self, input_shape):
        n, h, w, c = input_shape
        top, bottom, left, right = self.amounts
        if self.sign < 0 and ((h is not None and top + bottom >= h) or (w is not None and left + right >= w)):
            raise self.error(f"cropping {self.amounts} (top, bottom, left, right) leaves nothing of an "
                             f"input of shape {input_shape}")
        return (n, None if h is None else h + self.sign * (top + bottom),
                None if w is None else w + self.sign * (left + right), c)

    def get_config(self):
        top, bottom, left, right = self.amounts
        return {**super().get_config(), self.argument: ((top, bottom), (left, right))}


class ZeroPadding2D(Edges2D):
    argument, sign = "padding", +1

    def __init__(self, padding=(1, 1), name=None, **kwargs):
        super().__init__(padding, name=name, **kwargs)

    def call(self, x, training):
        return pad_spatial(x, self.amounts)

    def call_backward(self, dz, input_grad=True):
        return crop_spatial(dz, self.amounts)


class Cropping2D(Edges2D):
    argument, sign = "cropping", -1

    def __init__(self, cropping=((0, 0), (0, 0)), name=None, **kwargs):
        super().__init__(cropping, name=name, **kwargs)

    def call(self, x, training):
        self.output_shape_of(x.shape)
        return crop_spatial(x, self.amounts)

    def call_backward(self, dz, input_grad=True):
        return pad_spatial(dz, self.amounts)


class UpSampling2D(Layer):
    input_rank = 4

    def __init__(self, size=(2, 2), interpolation="nearest", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.size = normalize_tuple(size, "size", self._who())
        if interpolation != "nearest":
            raise self.error(f"only interpolation='nearest' is implemented, received {interpolation!r}")
        self.interpolation = interpolation

    def output_shape_of(self, input_shape):
        n, h, w, c = input_shape
        sh, sw = self.size
        return (n, None if h is None else h * sh, None if w is None else w * sw, c)

    def call(self, x, training):
        n, h, w, c = x.shape
        sh, sw = self.size
        xp = backend.get_array_module(x)
        return xp.broadcast_to(x[:, :, None, :, None, :], (n, h, sh, w, sw, c)).reshape(n, h * sh, w * sw, c)

    def call_backward(self, dz, input_grad=True):
        n, H, W, c = dz.shape
        sh, sw = self.size
        return dz.reshape(n, H // sh, sh, W // sw, sw, c).sum(axis=(2, 4))

    def get_config(self):
        return {**super().get_config(), "size": self.size, "interpolation": self.interpolation}


class Reshape(Layer):
    def __init__(self, target_shape, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        target = tuple(target_shape)
        if (not all(isinstance(d, int) and (d > 0 or d == -1) for d in target) or target.count(-1) > 1):
            raise self.error(f"target_shape must be positive ints with at most one -1, received {target_shape!r}")
        self.target_shape = target

    def output_shape_of(self, input_shape):
        if -1 not in self.target_shape or None in input_shape[1:]:
            resolved = self.target_shape
        else:
            size, known = int(np.prod(input_shape[1:])), -int(np.prod(self.target_shape))
            if size % known:
                raise self.error(f"cannot reshape an input of shape {input_shape} into {self.target_shape}")
            resolved = tuple(size // known if d == -1 else d for d in self.target_shape)
        if None not in input_shape[1:] and np.prod(resolved) != np.prod(input_shape[1:]):
            raise self.error(f"cannot reshape an input of shape {input_shape} ({int(np.prod(input_shape[1:]))} "
                             f"values per sample) into target_shape {self.target_shape}")
        return (input_shape[0], *resolved)

    def call(self, x, training):
        self.cache = x.shape
        return x.reshape(self.output_shape_of((x.shape[0], *x.shape[1:])))

    def call_backward(self, dz, input_grad=True):
        return dz.reshape(self.cache)

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


class Permute(Layer):
    def __init__(self, dims, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        dims = tuple(dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise self.error(f"dims must be a permutation of 1..{len(dims)} (the batch axis is 0 and stays), "
                             f"received dims={dims!r}")
        self.dims = dims
        self.input_rank = len(dims) + 1

    def output_shape_of(self, input_shape):
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def call(self, x, training):
        return x.transpose(0, *self.dims)

    def call_backward(self, dz, input_grad=True):
        return dz.transpose(0, *(int(i) + 1 for i in np.argsort(self.dims)))

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}
