"""Parameter-free layers: Input, Flatten, Dropout, Activation, ReLU.

* Input: ``mc.Input(shape)`` returns a symbolic tensor (``graph.py``) made by an
  ``InputLayer``; a model's arrays enter there.

* Flatten: ``y = x.reshape(n, -1)``; ``∂L/∂x = dy.reshape(x.shape)``.
* Dropout (inverted): in training ``y = x · m / (1 − rate)`` with ``m ~ Bernoulli(1 − rate)``
  drawn fresh each step; ``∂L/∂x = dy · m / (1 − rate)``.  At inference ``y = x``.
* Activation / ReLU: only the activation's forward and backward (see ``activations``).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..graph import Node
from ..seeding import new_generator
from .base import Layer


class InputLayer(Layer):
    """Where a model's input enters: its one node has no inputs and one output tensor."""

    is_input_layer = True

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None):
        super().__init__(name=name or backend.unique_name("input_layer"), dtype=dtype)
        if batch_shape is None:
            if shape is None:
                raise self.error("needs a shape, e.g. Input(shape=(28, 28, 1))")
            shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
            batch_shape = (batch_size, *shape)
        batch_shape = tuple(batch_shape)
        if len(batch_shape) < 2 or any(d is not None and (not isinstance(d, (int, np.integer)) or d <= 0)
                                       for d in batch_shape[1:]):
            raise self.error(f"shape must be a tuple of positive ints (or None), received shape={batch_shape[1:]!r}")
        self.batch_shape = (None, *(None if d is None else int(d) for d in batch_shape[1:]))
        self.shape = self.batch_shape[1:]
        self.dtype = dtype or backend.floatx()
        self.built = True
        self.input_shape = self._out_shape = self.batch_shape
        Node(self, [], [self.batch_shape], as_list=False)

    def call(self, x, training):
        return x

    def call_backward(self, dz, input_grad=True):
        return dz

    def get_config(self):
        return {**super().get_config(), "batch_shape": self.batch_shape, "dtype": self.dtype}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None):
    """``Input(shape)`` — the shape of one sample, without the batch axis (Keras): a
    symbolic tensor that layers can be called on to build a functional model."""
    return InputLayer(shape, batch_size, dtype, name, batch_shape).output


class Flatten(Layer):
    def output_shape_of(self, input_shape):
        rest = input_shape[1:]
        size = None if None in rest else int(np.prod(rest))
        return (input_shape[0], size)

    def call(self, x, training):
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def call_backward(self, dz, input_grad=True):
        return dz.reshape(self.cache)


class Dropout(Layer):
    def __init__(self, rate, seed=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise self.error(f"rate must be a number in [0, 1), received rate={rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.rng = None          # host generator (drawn from the global one on first use)
        self.device_rng = None   # CuPy generator, seeded from the host one, for GPU inputs

    def call(self, x, training):
        if not training or self.rate == 0:
            return x                                        # cache None: backward passes dy through
        if self.rng is None:
            self.rng = new_generator(self.seed)
        xp = backend.get_array_module(x)
        rng = self.rng
        if xp is not np:                                   # draw on the device: no host copy
            if self.device_rng is None:
                self.device_rng = xp.random.default_rng(int(self.rng.integers(2**63)))
            rng = self.device_rng
        # The draws, the mask and y go to the layer's workspace: a new array of x's size each
        # step would be faulted in afresh where the allocator hands big blocks back to the OS.
        # The size is named beside out: CuPy's Generator draws `size` numbers into a new array and
        # copies them into out, so without it one scalar would fill the whole mask.
        draws = rng.random(x.shape, np.float32, out=self.workspace.get("draws", x.shape, np.float32, like=x))
        mask = self.workspace.reusable("mask", x.shape, x.dtype, like=x)
        xp.greater_equal(draws, self.rate, out=mask)                    # P(keep) = 1 − rate
        mask *= 1.0 / (1.0 - self.rate)                                 # inverted dropout: E[mask] = 1
        self.cache = mask
        return xp.multiply(x, mask, out=self.workspace.reusable("y", x.shape, x.dtype, like=x))

    def call_backward(self, dz, input_grad=True):
        if self.cache is None:
            return dz
        xp = backend.get_array_module(dz)
        return xp.multiply(dz, self.cache, out=self.workspace.reusable("dx", dz.shape, dz.dtype, like=dz))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Activation(Layer):
    def __init__(self, activation, name=None, **kwargs):
        super().__init__(name=name, activation=activation, **kwargs)

    def call(self, x, training):
        return x

    def call_backward(self, dz, input_grad=True):
        return dz

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.name}


class ReLU(Activation):
    def __init__(self, name=None, **kwargs):
        super().__init__("relu", name=name, **kwargs)

    def get_config(self):
        return Layer.get_config(self)
