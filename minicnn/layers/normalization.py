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
Keeps for backward: x̂, 1/√(σ² + ε) and whether the batch statistics were used.
"""
from __future__ import annotations

from .. import backend, initializers
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

    def _broadcast(self, v, ndim):
        """A per-channel vector shaped to broadcast against the input."""
        shape = [1] * ndim
        shape[self.channel_axis(ndim)] = -1
        return v.reshape(shape)

    def call(self, x, training):
        xp = backend.get_array_module(x)
        axis = self.channel_axis(x.ndim)
        reduced = tuple(a for a in range(x.ndim) if a != axis)
        use_batch = bool(training) and self.trainable
        if use_batch:
            mean = x.mean(axis=reduced)
            centered = x - self._broadcast(mean, x.ndim)
            var = (centered * centered).mean(axis=reduced)
            m = self.momentum
            self.params["moving_mean"] = m * self.params["moving_mean"] + (1 - m) * mean
            self.params["moving_variance"] = m * self.params["moving_variance"] + (1 - m) * var
        else:
            mean, var = self.params["moving_mean"], self.params["moving_variance"]
            centered = x - self._broadcast(mean, x.ndim)
        inv_std = 1 / xp.sqrt(var + self.epsilon)
        x_hat = centered * self._broadcast(inv_std, x.ndim)
        self.cache = (x_hat, inv_std, use_batch, reduced)
        y = x_hat * self._broadcast(self.params["gamma"], x.ndim) if self.scale else x_hat
        return y + self._broadcast(self.params["beta"], x.ndim) if self.center else y

    def call_backward(self, dz, input_grad=True):
        x_hat, inv_std, use_batch, reduced = self.cache
        sum_dy = dz.sum(axis=reduced)
        sum_dy_xhat = (dz * x_hat).sum(axis=reduced)
        self.grads = {}
        if self.scale:
            self.grads["gamma"] = sum_dy_xhat
        if self.center:
            self.grads["beta"] = sum_dy
        if not input_grad:
            return None
        ndim = dz.ndim
        scale = inv_std * self.params["gamma"] if self.scale else inv_std
        if not use_batch:                                       # μ, σ² are constants
            return dz * self._broadcast(scale, ndim)
        M = dz.size // sum_dy.size
        return self._broadcast(scale / M, ndim) * (
            M * dz - self._broadcast(sum_dy, ndim) - x_hat * self._broadcast(sum_dy_xhat, ndim))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}
