"""Activation layers with arguments: LeakyReLU, ELU, Softmax(axis) and PReLU (Keras's names
and defaults).  The first three are an ``Activation`` around a parameterized activation
(``activations.py`` has their equations); PReLU learns its negative slope::

    PReLU:  y = max(x, 0) + α ⊙ min(x, 0)
            ∂L/∂x = dy · (1, x > 0; α)       ∂L/∂α = Σ_{batch, shared axes} dy · min(x, 0)

with ``α`` of the input's shape without the batch axis, size 1 along ``shared_axes``
(1-indexed, as Keras: ``shared_axes=[1, 2]`` gives one slope per channel of an image).
Note that the ``LeakyReLU`` layer's default slope is 0.3, the ``'leaky_relu'`` activation's 0.2.
"""
from __future__ import annotations

import warnings

from .. import activations, arguments, backend, initializers
from ..inference import no_backward_follows
from .base import Layer
from .core import Activation


class ActivationWithArgument(Activation):
    """An Activation layer around an activation built from one Keras argument (``argument``)."""

    argument = None

    def __init__(self, value, activation, name=None, **kwargs):
        super().__init__(activation, name=name, **kwargs)
        setattr(self, self.argument, value)

    def get_config(self):
        return {**Layer.get_config(self), self.argument: getattr(self, self.argument)}


class LeakyReLU(ActivationWithArgument):
    """``alpha`` is Keras 2's name of ``negative_slope``, found in old .h5/.keras configs and old
    code: read as ``negative_slope``, with a warning, as Keras 3 does."""
    argument = "negative_slope"

    def __init__(self, negative_slope=0.3, name=None, **kwargs):
        if "alpha" in kwargs:
            warnings.warn("LeakyReLU: `alpha` is Keras 2's name of `negative_slope`; read as negative_slope",
                          stacklevel=2)
            negative_slope = kwargs.pop("alpha")
        negative_slope = arguments.non_negative(negative_slope, "LeakyReLU", "negative_slope")
        super().__init__(negative_slope, activations.LeakyReLU(negative_slope), name=name, **kwargs)


class ELU(ActivationWithArgument):
    argument = "alpha"

    def __init__(self, alpha=1.0, name=None, **kwargs):
        super().__init__(alpha, activations.ELU(alpha), name=name, **kwargs)


class Softmax(ActivationWithArgument):
    argument = "axis"

    def __init__(self, axis=-1, name=None, **kwargs):
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise ValueError(f"Softmax layer: axis must be an int, received axis={axis!r}")
        super().__init__(axis, activations.Softmax(axis), name=name, **kwargs)


class PReLU(Layer):
    def __init__(self, alpha_initializer="zeros", shared_axes=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer, self._who())
        self.shared_axes = None if shared_axes is None else \
            tuple([shared_axes] if isinstance(shared_axes, int) else shared_axes)

    def build_params(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if not 1 <= axis <= len(shape):
                raise self.error(f"shared_axes must lie in 1..{len(shape)}, received {self.shared_axes}")
            shape[axis - 1] = 1
        if None in shape:
            raise self.error(f"every non-shared axis must be known, received input shape {input_shape}")
        self.add_param("alpha", shape, self.alpha_initializer)

    def call(self, x, training):
        xp = backend.get_array_module(x)
        negative = xp.minimum(x, 0)
        self.cache = None if no_backward_follows() else (x > 0, negative)
        return xp.maximum(x, 0) + self.params["alpha"] * negative

    def call_backward(self, dz, input_grad=True):
        positive, negative = self.cache
        alpha = self.params["alpha"]
        summed = tuple(a for a in range(dz.ndim) if a == 0 or alpha.shape[a - 1] == 1)
        self.grads = {"alpha": (dz * negative).sum(axis=summed, keepdims=True)[0]}
        if not input_grad:
            return None
        return backend.get_array_module(dz).where(positive, dz, dz * alpha)

    def get_config(self):
        return {**super().get_config(), "shared_axes": self.shared_axes}
