"""Parameter-free layers: Input, Flatten, Dropout, Activation, ReLU.

* Flatten: ``y = x.reshape(n, -1)``; ``∂L/∂x = dy.reshape(x.shape)``.
* Dropout (inverted): in training ``y = x · m / (1 − rate)`` with ``m ~ Bernoulli(1 − rate)``
  drawn fresh each step; ``∂L/∂x = dy · m / (1 − rate)``.  At inference ``y = x``.
* Activation / ReLU: only the activation's forward and backward (see ``activations``).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..seeding import new_generator
from .base import Layer


class Input:
    """``Input(shape)`` — the shape of one sample, without the batch axis (Keras)."""

    def __init__(self, shape, name=None):
        shape = tuple(shape) if not isinstance(shape, int) else (shape,)
        if not shape or any(not isinstance(d, int) or d <= 0 for d in shape):
            raise ValueError(f"Input: shape must be a tuple of positive ints, received shape={shape!r}")
        self.shape = shape
        self.name = name


class Flatten(Layer):
    def output_shape_of(self, input_shape):
        rest = input_shape[1:]
        size = None if None in rest else int(np.prod(rest))
        return (input_shape[0], size)

    def call(self, x, training):
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def call_backward(self, dz, input_grad=True):
        return dz.reshape(self.x_shape)


class Dropout(Layer):
    def __init__(self, rate, seed=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise self.error(f"rate must be a number in [0, 1), received rate={rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.rng = None          # host generator (drawn from the global one on first use)
        self.device_rng = None   # CuPy generator, seeded from the host one, for GPU inputs
        self.mask = None

    def call(self, x, training):
        if not training or self.rate == 0:
            self.mask = None
            return x
        if self.rng is None:
            self.rng = new_generator(self.seed)
        xp = backend.get_array_module(x)
        rng = self.rng
        if xp is not np:                                   # draw on the device: no host copy
            if self.device_rng is None:
                self.device_rng = xp.random.default_rng(int(self.rng.integers(2**63)))
            rng = self.device_rng
        keep = rng.random(x.shape, dtype=np.float32) >= self.rate     # P(keep) = 1 − rate
        self.mask = keep.astype(x.dtype)
        self.mask *= 1.0 / (1.0 - self.rate)                            # inverted dropout: E[mask] = 1
        return x * self.mask

    def call_backward(self, dz, input_grad=True):
        return dz if self.mask is None else dz * self.mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Activation(Layer):
    has_activation = True

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
