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
Keeps for backward: x̂, 1/√(σ² + ε) and whether the batch statistics were used (no x̂ in a
forward no backward follows, ``inference.forward_only``).  The arithmetic runs on an
``(M, C)`` view (``kernels/batchnorm.py``, or its Numba twin); y and x̂ are the workspace's
reusable ``'y'`` and ``'x_hat'`` buffers.
"""
from __future__ import annotations

from .. import backend, initializers
from ..inference import no_backward_follows
from ..kernels import batchnorm
from ..kernels.dispatch import pick
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

    def _rows(self, a):
        """``a`` as ``(M, C)``: the channel axis last, every other axis flattened into rows."""
        xp = backend.get_array_module(a)
        return xp.ascontiguousarray(xp.moveaxis(a, self.channel_axis(a.ndim), -1)).reshape(-1, a.shape[self.axis])

    def _unrows(self, rows, shape):
        xp = backend.get_array_module(rows)
        moved = [*shape[:self.channel_axis(len(shape))], *shape[self.channel_axis(len(shape)) + 1:], shape[self.axis]]
        return xp.moveaxis(rows.reshape(moved), -1, self.channel_axis(len(shape)))

    def _gamma_beta(self, like):
        xp = backend.get_array_module(like)
        size = like.shape[-1]
        return (self.params["gamma"] if self.scale else xp.ones(size, like.dtype),
                self.params["beta"] if self.center else xp.zeros(size, like.dtype))

    def call(self, x, training):
        rows = self._rows(x)
        use_batch = bool(training) and self.trainable
        gamma, beta = self._gamma_beta(rows)
        forward = pick(rows, batchnorm.forward, numba="numba_batchnorm.forward")
        y = self.workspace.reusable("y", rows.shape, rows.dtype, like=rows)
        x_hat = None if no_backward_follows() else self.workspace.reusable("x_hat", rows.shape, rows.dtype, like=rows)
        y, x_hat, mean, var, inv_std = forward(rows, gamma, beta, self.params["moving_mean"],
                                               self.params["moving_variance"], self.epsilon, use_batch, y, x_hat)
        if use_batch:
            m = self.momentum
            self.params["moving_mean"] = m * self.params["moving_mean"] + (1 - m) * mean
            self.params["moving_variance"] = m * self.params["moving_variance"] + (1 - m) * var
        self.cache = (x_hat, inv_std, use_batch, x.shape)
        return self._unrows(y, x.shape)

    def call_backward(self, dz, input_grad=True):
        x_hat, inv_std, use_batch, shape = self.cache
        backward = pick(x_hat, batchnorm.backward, numba="numba_batchnorm.backward")
        sum_dy, sum_dy_xhat, dx = backward(self._rows(dz), x_hat, inv_std, self._gamma_beta(x_hat)[0], use_batch,
                                           input_grad)
        self.grads = {}
        if self.scale:
            self.grads["gamma"] = sum_dy_xhat
        if self.center:
            self.grads["beta"] = sum_dy
        return None if dx is None else self._unrows(dx, shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}
