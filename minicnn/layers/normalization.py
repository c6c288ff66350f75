"""BatchNormalization (Ioffe & Szegedy, 2015), Keras 3's definition.

The statistics are taken over every axis but ``axis`` (the channels): with ``M`` the number
of reduced elements per channel and ``Σ`` a sum over them, in training::

    μ  = (1/M) Σ x                 σ² = (1/M) Σ (x − μ)²        (the *biased* variance)
    x̂  = (x − μ) / √(σ² + ε)        y  = γ·x̂ + β
    moving_mean     ← m·moving_mean     + (1 − m)·μ
    moving_variance ← m·moving_variance + (1 − m)·σ²          (biased here too, unlike PyTorch)

and at inference (or when the layer is not ``trainable``, as in Keras 3) the moving
statistics stand in for μ and σ², which are then constants.  Backward, in the compact form
that ``docs/backprop.md`` derives from the staged graph::

    ∂L/∂β = Σ dy        ∂L/∂γ = Σ dy·x̂
    training:   ∂L/∂x = γ / (M·√(σ² + ε)) · (M·dy − Σ dy − x̂·Σ(dy·x̂))
    inference:  ∂L/∂x = γ / √(moving_variance + ε) · dy

Weights, in Keras's order: ``[gamma, beta, moving_mean, moving_variance]`` (without gamma
when ``scale=False``, without beta when ``center=False``).  The moving statistics are
weights the optimizer never touches (``non_trainable``).
Keeps for backward: x (its input, which stays alive until then anyway), μ, 1/√(σ² + ε) and
whether the batch statistics were used; backward forms x̂ = (x − μ)/√(σ² + ε) again.  The
arithmetic runs on an ``(M, C)`` view (``kernels/normalization.py``, then ``kernels/batchnorm.py``
or its Numba twin).
"""
from __future__ import annotations

from .. import initializers
from ..kernels.normalization import batch_norm_backward, batch_norm_forward
from .base import Layer


class BatchNormalization(Layer):
    non_trainable = frozenset({"moving_mean", "moving_variance"})

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise self.error(f"axis must be an int, received axis={axis!r}")
        if not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise self.error(f"momentum must be a number in [0, 1], received momentum={momentum!r}")
        if not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise self.error(f"epsilon must be a positive number, received epsilon={epsilon!r}")
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.initializers = {"gamma": initializers.get(gamma_initializer, self._who()),
                             "beta": initializers.get(beta_initializer, self._who()),
                             "moving_mean": initializers.get(moving_mean_initializer, self._who()),
                             "moving_variance": initializers.get(moving_variance_initializer, self._who())}

    def channel_axis(self, ndim):
        if not -ndim < self.axis < ndim or self.axis % ndim == 0:
            raise self.error(f"axis={self.axis} is not a feature axis of an input of rank {ndim} "
                             f"(expected 1..{ndim - 1} or -{ndim - 1}..-1)")
        return self.axis % ndim

    def build_params(self, input_shape):
        size = input_shape[self.channel_axis(len(input_shape))]
        if size is None:
            raise self.error(f"the normalized axis {self.axis} must be known, received input shape {input_shape}")
        wanted = [("gamma", self.scale), ("beta", self.center), ("moving_mean", True), ("moving_variance", True)]
        for key, present in wanted:
            if present:
                self.add_param(key, (size,), self.initializers[key])

    def uses_batch_statistics(self, training) -> bool:
        """The batch's μ and σ² in training, the moving ones otherwise and when frozen (Keras 3)."""
        return bool(training) and self.trainable

    def call(self, x, training):
        use_batch = self.uses_batch_statistics(training)
        y, self.cache, mean, var = batch_norm_forward(x, self.channel_axis(x.ndim), self.params, self.epsilon,
                                                      use_batch, self.workspace)
        if use_batch:
            self.update_moving_statistics(mean, var)
        return y

    def update_moving_statistics(self, mean, var):
        """moving ← m·moving + (1 − m)·batch, for μ and the biased σ²."""
        m = self.momentum
        self.params["moving_mean"] = m * self.params["moving_mean"] + (1 - m) * mean
        self.params["moving_variance"] = m * self.params["moving_variance"] + (1 - m) * var

    def call_backward(self, dz, input_grad=True):
        dx, self.grads = batch_norm_backward(dz, self.cache, self.params, self.workspace, input_grad)
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}
