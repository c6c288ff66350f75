"""Dense: a fully connected layer on the LAST axis (so it also works on 4-D input).

``x (..., k)``, ``W (k, u)``, ``b (u,)``; with ``X`` and ``dZ`` the inputs and output
gradients flattened to matrices ``(m, k)`` and ``(m, u)`` (``m`` = all leading axes)::

    z = x W + b                 a = activation(z)
    ∂L/∂W = Xᵀ dZ      ∂L/∂b = Σ_rows dZ      ∂L/∂x = dZ Wᵀ

(``kernels/dense.py``: the product, then ``+ b`` in one pass over z).
Keeps for backward: the input ``x``.
"""
from __future__ import annotations

from .. import initializers
from ..kernels.dense import dense_backward, dense_forward
from .base import Layer, with_bias_grad


class Dense(Layer):

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

    def call(self, x, training):
        self.cache = x
        return dense_forward(x, self.params["kernel"], self.params.get("bias"), self.workspace)

    def call_backward(self, dz, input_grad=True):
        dx, dW, db = dense_backward(dz, self.cache, self.params["kernel"], self.workspace, input_grad,
                                    bias_grad="bias" in self.params)
        self.grads = with_bias_grad({"kernel": dW}, db)
        return dx

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": self.activation.name, "use_bias": self.use_bias}
