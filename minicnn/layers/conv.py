"""Conv2D: a 2-D convolution layer, NHWC input, HWIO kernel (Keras's layout).

Forward ``a = activation(conv(x, W) + b)`` (``call`` is the convolution and the bias, and a
linear or ReLU activation: one fused pass after the convolution, ``kernels/epilogue.py``, or
none on the Winograd kernels, which apply them as they store); backward (see ``kernels/conv.py``)::

    ∂L/∂W = X ⋆ ∂L/∂Z     (cross-correlation of the input with the output gradient)
    ∂L/∂b = Σ_{n,p,q} ∂L/∂Z
    ∂L/∂X = pad(∂L/∂Z) ⊛ rot180(W)    (full convolution; col2im of ∂L/∂Z · W2ᵀ)

Keeps for backward: the im2col matrix of the input (kh·kw times the input's size),
or only the input when that matrix would exceed ``workspace_budget`` bytes; on the
Numba kernels' implicit GEMM (no im2col matrix), the input and its zero-padded copy.
"""
from __future__ import annotations

from .. import initializers
from ..kernels.conv import conv2d_backward, conv2d_forward
from ..kernels.geometry import check_padding, normalize_tuple, window_geometry
from .base import Layer


class Conv2D(Layer):
    input_rank = 4
    workspace_budget = 512 * 2**20     # bytes of im2col columns before chunking the batch

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 name=None, **kwargs):
        super().__init__(name=name, activation=activation, **kwargs)
        if not isinstance(filters, int) or isinstance(filters, bool) or filters <= 0:
            raise self.error(f"filters must be a positive int, received filters={filters!r}")
        self.filters = filters
        self.kernel_size = normalize_tuple(kernel_size, "kernel_size", self._who())
        self.strides = normalize_tuple(strides, "strides", self._who())
        self.padding = check_padding(padding, self._who())
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer, self._who())
        self.bias_initializer = initializers.get(bias_initializer, self._who())

    def output_shape_of(self, input_shape):
        n, h, w, _ = input_shape
        if h is None or w is None:
            return (n, None, None, self.filters)
        oh, ow, _ = window_geometry(h, w, self.kernel_size, self.strides, self.padding, self._who())
        return (n, oh, ow, self.filters)

    def build_params(self, input_shape):
        self.add_kernel_and_bias((*self.kernel_size, input_shape[-1], self.filters))

    def check_built_shape(self, shape):
        if shape[-1] != self.input_shape[-1]:
            raise self.error(f"expected {self.input_shape[-1]} input channels, received "
                             f"{shape[-1]} (input shape {shape})")

    def call(self, x, training, relu=False):
        y, self.cache = conv2d_forward(x, self.params["kernel"], self.params.get("bias"), self.strides,
                                       self.padding, self.workspace, self.workspace_budget, relu)
        return y

    def call_backward(self, dz, input_grad=True, bias_grad=False):
        dx, dW, db = conv2d_backward(dz, self.cache, self.workspace, input_grad, bias_grad, overwrite_cols=True)
        if input_grad:       # ∂L/∂cols overwrote the columns: a second backward recomputes them from x
            self.cache = self.cache._replace(cols=None)
        self.grads = {"kernel": dW} if db is None else {"kernel": dW, "bias": db}
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "activation": self.activation.name, "use_bias": self.use_bias}
