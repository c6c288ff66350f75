"""Pooling layers.

MaxPooling2D (see ``kernels/pool.py``)::

    y[b,p,q,c] = max_{i,j} x_pad[b, p·sh+i, q·sw+j, c]     (−inf padding for 'same')
    ∂L/∂x routes each dy[b,p,q,c] to its window's arg-max (the first, on ties);
    overlapping windows add.

Keeps for backward: its output and the int32 arg-max "switches" (n, oh, ow, c), none in a
forward no backward follows (``inference.forward_only``; nor GlobalMaxPooling2D's ties).
Over a layer ending in a ReLU it can run in a fused group with that layer (``fusion.py``).

AveragePooling2D (see ``kernels/avgpool.py``; 'same' averages over the window's cells inside
the image only, as TensorFlow)::

    y[b,p,q,c] = 1/count[p,q] Σ_{i,j} x_pad[b, p·sh+i, q·sw+j, c]
    ∂L/∂x_pad[b, p·sh+i, q·sw+j, c] += dy[b,p,q,c] / count[p,q]

GlobalAveragePooling2D::

    y[b,c] = 1/(h·w) Σ_{i,j} x[b,i,j,c]        ∂L/∂x[b,i,j,c] = dy[b,c] / (h·w)

GlobalMaxPooling2D (tied maxima share the gradient equally, as TensorFlow's reduce_max — unlike
MaxPooling2D, whose first maximum takes it all, as TensorFlow's max-pool)::

    y[b,c] = max_{i,j} x[b,i,j,c]              ∂L/∂x[b,i,j,c] = dy[b,c] · [x[b,i,j,c] = y[b,c]] / #ties[b,c]
"""
from __future__ import annotations

from .. import backend
from ..inference import no_backward_follows
from ..kernels.avgpool import avgpool_backward, avgpool_forward
from ..kernels.geometry import check_padding, normalize_tuple, window_geometry
from ..kernels.pool import maxpool_backward, maxpool_forward
from .base import Layer


class Pooling2D(Layer):
    """What the windowed pools share: the arguments, the output geometry, the checks."""

    input_rank = 4

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.pool_size = normalize_tuple(pool_size, "pool_size", self._who())
        self.strides = normalize_tuple(strides if strides is not None else self.pool_size,
                                       "strides", self._who())
        self.padding = check_padding(padding, self._who())

    def output_shape_of(self, input_shape):
        n, h, w, c = input_shape
        if h is None or w is None:                   # sizes known only when data arrives
            return (n, None, None, c)
        oh, ow, _ = window_geometry(h, w, self.pool_size, self.strides, self.padding, self._who())
        return (n, oh, ow, c)

    def check_built_shape(self, shape):
        if shape[-1] != self.input_shape[-1]:
            raise self.error(f"expected {self.input_shape[-1]} channels, received {shape[-1]}")

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


class MaxPooling2D(Pooling2D):
    def call(self, x, training):
        y, self.cache = maxpool_forward(x, self.pool_size, self.strides, self.padding, self.workspace)
        return y

    def call_backward(self, dz, input_grad=True):
        return maxpool_backward(dz, self.cache, self.workspace)


class GlobalAveragePooling2D(Layer):
    input_rank = 4

    def output_shape_of(self, input_shape):
        return (input_shape[0], input_shape[3])

    def call(self, x, training):
        """y[n, c] = (1 / hw) Σ_{h,w} x[n, h, w, c]  (einsum: NumPy's mean over the two middle
        axes of an NHWC array walks it with a stride, about 4× slower)."""
        self.cache = x.shape[1:3]
        xp = backend.get_array_module(x)
        return xp.einsum("nhwc->nc", x) / (x.shape[1] * x.shape[2])

    def call_backward(self, dz, input_grad=True):
        """∂L/∂x[n, h, w, c] = ∂L/∂y[n, c] / hw at every pixel (into the layer's workspace:
        the array is the input's size)."""
        (h, w), (n, c) = self.cache, dz.shape
        dx = self.workspace.reusable("dx", (n, h, w, c), dz.dtype, like=dz)
        dx[...] = (dz / (h * w))[:, None, None, :]
        return dx


class AveragePooling2D(Pooling2D):
    """The window's mean in place of its max (and so no ReLU backward or forward to fuse
    with the layer below)."""

    def call(self, x, training):
        oh, ow, pads = window_geometry(x.shape[1], x.shape[2], self.pool_size, self.strides, self.padding,
                                       self._who())
        self.cache = (x.shape, pads)
        return avgpool_forward(x, self.pool_size, self.strides, pads, (oh, ow))

    def call_backward(self, dz, input_grad=True):
        x_shape, pads = self.cache
        return avgpool_backward(dz, x_shape, self.pool_size, self.strides, pads)


class GlobalMaxPooling2D(Layer):
    input_rank = 4

    def __init__(self, keepdims=False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.keepdims = bool(keepdims)

    def output_shape_of(self, input_shape):
        return (input_shape[0], 1, 1, input_shape[3]) if self.keepdims else (input_shape[0], input_shape[3])

    def call(self, x, training):
        y = x.max(axis=(1, 2), keepdims=True)
        if not no_backward_follows():               # (the ties are backward's only)
            at_max = x == y
            self.cache = (at_max, at_max.sum(axis=(1, 2), keepdims=True).astype(x.dtype))
        return y if self.keepdims else y[:, 0, 0, :]

    def call_backward(self, dz, input_grad=True):
        at_max, ties = self.cache
        return at_max * (dz.reshape(ties.shape) / ties)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}
