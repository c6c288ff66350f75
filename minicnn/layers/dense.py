"""Dense: a fully connected layer on the LAST axis (so it also works on 4-D input).

``x (..., k)``, ``W (k, u)``, ``b (u,)``; with ``X`` and ``dZ`` the inputs and output
gradients flattened to matrices ``(m, k)`` and ``(m, u)`` (``m`` = all leading axes)::

    z = x W + b                 a = activation(z)
    ∂L/∂W = Xᵀ dZ      ∂L/∂b = Σ_rows dZ      ∂L/∂x = dZ Wᵀ

``affine`` is the product ``x W``, then ``+ b`` (and a ReLU, in the plan's fused
epilogue group) in one pass (``kernels/epilogue.py``).
Keeps for backward: the input ``x``.
"""
from __future__ import annotations

import numpy as np

from .. import backend, initializers
from ..kernels import epilogue
from .base import AffineLayer


class Dense(AffineLayer):

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", name=None, **kwargs):
        super().__init__(name=name, activation=activation, **kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise self.error(f"units must be a positive int, received units={units!r}")
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer, self._who())
        self.bias_initializer = initializers.get(bias_initializer, self._who())

    def output_shape_of(self, input_shape):
        return (*input_shape[:-1], self.units)

    def build_params(self, input_shape):
        if input_shape[-1] is None:
            raise self.error(f"the last axis of the input must be known, received {input_shape}")
        self.add_kernel_and_bias((input_shape[-1], self.units))

    def check_built_shape(self, shape):
        if shape[-1] != self.input_shape[-1]:
            raise self.error(f"expected {self.input_shape[-1]} input features on the last axis, "
                             f"received {shape[-1]} (input shape {shape})")

    def affine(self, x, relu):
        self.cache = x
        kernel = self.params["kernel"]
        z = self.workspace.reusable("z", (*x.shape[:-1], self.units), np.result_type(x, kernel), like=x)
        z = backend.get_array_module(x).matmul(x, kernel, out=z)                 # (..., k) @ (k, u)
        return epilogue.bias_activation(z, self.params.get("bias"), relu)

    def affine_backward(self, dz, input_grad, bias_grad):
        kernel = self.params["kernel"]
        x2, dz2 = self.cache.reshape(-1, kernel.shape[0]), dz.reshape(-1, self.units)
        self.grads = {"kernel": x2.T @ dz2}               # (k, m) @ (m, u)
        if bias_grad:
            self.grads["bias"] = epilogue.bias_grad(dz2)
        if not input_grad:
            return None
        dx = self.workspace.reusable("dx", self.cache.shape, np.result_type(dz, kernel), like=dz)
        return backend.get_array_module(dz).matmul(dz, kernel.T, out=dx)         # (..., u) @ (u, k)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": self.activation.name, "use_bias": self.use_bias}
