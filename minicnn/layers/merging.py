"""Merge layers: several inputs of one shape (Concatenate: one axis may differ) -> one output.

=============  ==========================  ==========================================
layer          forward                     backward (∂L/∂x_i from dy = ∂L/∂y)
=============  ==========================  ==========================================
Add            y = Σ_i x_i                 dy                 (each input, unchanged)
Subtract       y = x_1 − x_2               dy, −dy
Multiply       y = Π_i x_i                 dy · Π_{j≠i} x_j
Average        y = (1/n) Σ_i x_i           dy / n
Maximum        y = max_i x_i               dy where x_i won, else 0 (a tie goes to the
Minimum        y = min_i x_i               first input that reaches the extreme: exactly
                                           one input receives each dy element)
Concatenate    y = [x_1, …, x_n] on axis   dy's slice of x_i's extent on that axis
=============  ==========================  ==========================================

Add is why a residual block passes its gradient through unchanged: ``y = x + F(x)`` sends
``dy`` to the skip connection as it is, and the executor adds it to what ``F`` sends back.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..kernels.epilogue import sum_activation
from .base import Layer


class Merge(Layer):
    """Called on a list of tensors; ``call`` merges a list of arrays, ``call_backward``
    returns the list of their gradients."""

    min_inputs, max_inputs = 2, None

    def build(self, input_shapes) -> None:
        shapes = self._check_shapes(input_shapes)
        self.dtype = self.dtype or backend.floatx()
        self._out_shape = self.compute_output_shape(shapes)
        self.input_shape = shapes
        self.built = True

    def _check_shapes(self, shapes):
        if not isinstance(shapes, (list, tuple)) or not shapes or not isinstance(shapes[0], (list, tuple)):
            raise self.error(f"expects a list of inputs, received one input of shape {shapes}")
        shapes = [tuple(s) for s in shapes]
        if len(shapes) < self.min_inputs or (self.max_inputs and len(shapes) > self.max_inputs):
            count = self.min_inputs if self.max_inputs == self.min_inputs else f"at least {self.min_inputs}"
            raise self.error(f"expects {count} inputs, received {len(shapes)}")
        self.check_compatible(shapes)
        return shapes

    def check_compatible(self, shapes):
        """Every input must have the same shape (the batch axis may be None)."""
        first = shapes[0]
        for shape in shapes[1:]:
            if len(shape) != len(first) or any(a is not None and b is not None and a != b
                                               for a, b in zip(first[1:], shape[1:])):
                raise self.error(f"inputs must have the same shape, received {shapes}")

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0])

    def forward(self, xs, training=False):
        self.begin_merge(xs)
        y = self.call(list(xs), training)
        self.output_shape_seen = y.shape
        return y

    def begin_merge(self, xs) -> None:
        """A forward begins: ``xs`` checked, the last forward's cache let go of, the layer built."""
        if not isinstance(xs, (list, tuple)):
            raise self.error(f"expects a list of arrays, received {type(xs).__name__}")
        self.release()
        self._check_shapes([a.shape for a in xs])
        if not self.built:
            self.build([(None, *a.shape[1:]) for a in xs])

    def backward(self, dy, input_grad=True):
        return self.call_backward(self.check_grad(dy), input_grad)


class Add(Merge):
    def call(self, xs, training):
        return sum_activation(xs, self.sum_buffer(xs))

    def sum_buffer(self, xs):
        """The buffer Σ x_i is written into (the layer's reusable ``'y'``; also the Add + ReLU
        group's, ``fusion.AddReluGroup``), the input count kept for backward."""
        self.cache = len(xs)
        return self.workspace.reusable("y", np.broadcast_shapes(*(x.shape for x in xs)),
                                       np.result_type(*(x.dtype for x in xs)), like=xs[0])

    def call_backward(self, dy, input_grad=True):
        return [dy] * self.cache


class Subtract(Merge):
    min_inputs = max_inputs = 2

    def call(self, xs, training):
        return xs[0] - xs[1]

    def call_backward(self, dy, input_grad=True):
        return [dy, -dy]


class Multiply(Merge):
    def call(self, xs, training):
        self.cache = xs
        y = xs[0] * xs[1]
        for x in xs[2:]:
            y = y * x
        return y

    def call_backward(self, dy, input_grad=True):
        grads = []
        for i in range(len(self.cache)):
            g = dy
            for j, x in enumerate(self.cache):
                if j != i:
                    g = g * x
            grads.append(g)
        return grads


class Average(Merge):
    def call(self, xs, training):
        self.cache = len(xs)
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x
        return y / len(xs)

    def call_backward(self, dy, input_grad=True):
        share = dy / self.cache
        return [share] * self.cache


class Maximum(Merge):
    """y = max_i x_i; each dy element goes to the first input holding the maximum."""

    pick = "maximum"

    def call(self, xs, training):
        xp = backend.get_array_module(xs[0])
        stacked = xp.stack(xs)
        winner = stacked.argmax(axis=0) if self.pick == "maximum" else stacked.argmin(axis=0)
        self.cache = (winner, len(xs))
        return xp.take_along_axis(stacked, winner[None], axis=0)[0]

    def call_backward(self, dy, input_grad=True):
        winner, n = self.cache
        return [dy * (winner == i) for i in range(n)]


class Minimum(Maximum):
    """y = min_i x_i; each dy element goes to the first input holding the minimum."""

    pick = "minimum"


class Concatenate(Merge):
    def __init__(self, axis=-1, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not isinstance(axis, int) or axis == 0:
            raise self.error(f"axis must be a non-batch axis (an int other than 0), received axis={axis!r}")
        self.axis = axis

    def _axis(self, rank):
        axis = self.axis % rank
        if axis == 0:
            raise self.error(f"axis={self.axis} is the batch axis for inputs of rank {rank}")
        return axis

    def check_compatible(self, shapes):
        rank = len(shapes[0])
        axis = self._axis(rank)
        for shape in shapes[1:]:
            if len(shape) != rank or any(a is not None and b is not None and a != b
                                         for i, (a, b) in enumerate(zip(shapes[0], shape)) if i not in (0, axis)):
                raise self.error(f"inputs must match on every axis but the concatenation axis {self.axis}, "
                                 f"received {shapes}")

    def compute_output_shape(self, input_shapes):
        axis = self._axis(len(input_shapes[0]))
        sizes = [s[axis] for s in input_shapes]
        out = list(input_shapes[0])
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def call(self, xs, training):
        xp = backend.get_array_module(xs[0])
        axis = self._axis(xs[0].ndim)
        self.cache = (axis, [x.shape[axis] for x in xs])
        return xp.concatenate(xs, axis=axis)

    def call_backward(self, dy, input_grad=True):
        axis, sizes = self.cache
        xp = backend.get_array_module(dy)
        cuts = list(xp.cumsum(xp.asarray(sizes))[:-1].tolist()) if len(sizes) > 1 else []
        return [part.copy() for part in xp.split(dy, cuts, axis=axis)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)
