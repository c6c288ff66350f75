"""Conv2DTranspose, DepthwiseConv2D and SeparableConv2D (Keras's arguments and weight layouts).

**Conv2DTranspose** (kernel ``(kh, kw, filters, in_channels)``): its forward *is* Conv2D's
∂L/∂x and its ∂L/∂x *is* Conv2D's forward, for the convolution from ``filters`` to
``in_channels`` channels that it transposes — both reused from ``kernels/conv.py``, not
copied (``kernels/conv_variants.py`` states the correspondence)::

    y = convᵀ(x) + b        ∂L/∂x = conv(∂L/∂z)        ∂L/∂W = (conv's kernel gradient, roles swapped)
    ∂L/∂b = Σ_{b,p,q} ∂L/∂z

(with ``dilation_rate``, on the dilated kernel, as Conv2D's).  The algorithm of each pass is
that convolution's plan (``kernels/conv_plan.py``), decided once per input shape and kernel
family and kept as ``layer.algorithm`` (a ``TransposedPlan``, shown by ``summary(details=True)``
and ``mc.trace``; ``mc.use_conv_algorithm`` forces it), as Conv2D's.

**DepthwiseConv2D** (kernel ``(kh, kw, c, m)``, ``m`` the depth multiplier; output channel
``ch·m + k``, as Keras), see ``kernels/depthwise.py``::

    y[b,p,q,ch·m+k] = Σ_{i,j} x_pad[b, p·sh+i·dh, q·sw+j·dw, ch] · W[i,j,ch,k] + b[ch·m+k]

**SeparableConv2D**: a depthwise convolution (no bias) then a 1×1 convolution (the
*pointwise* kernel ``(1, 1, c·m, filters)``) and the bias — the Xception block's unit::

    d = depthwise(x, W_d)      z = d · W_p + b       (a matrix product on the last axis)
    ∂L/∂W_p = dᵀ ∂L/∂z    ∂L/∂d = ∂L/∂z W_pᵀ    then the depthwise backward from ∂L/∂d

Weights in Keras's order: ``[depthwise_kernel, pointwise_kernel, bias]``.
"""
from __future__ import annotations

from .. import initializers
from ..kernels import conv_plan, epilogue
from ..kernels.conv import conv2d_backward, conv2d_forward
from ..kernels.conv_variants import (checked_dilation, conv2d_transpose_backward, conv2d_transpose_forward,
                                     conv2d_transpose_geometry, dilated_kernel, dilated_size,
                                     transposed_conv_input_shape)
from ..kernels.depthwise import depthwise_backward, depthwise_forward
from ..kernels.dispatch import family, pick
from ..kernels.geometry import check_padding, normalize_tuple, window_geometry
from .base import Layer, with_bias_grad


def positive_int(layer, value, name):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise layer.error(f"{name} must be a positive int, received {name}={value!r}")
    return value


class WindowLayer(Layer):
    """What the three share: NHWC input, the window's arguments, an activation, a bias."""

    input_rank = 4

    def __init__(self, kernel_size, strides, padding, activation, use_bias, bias_initializer, name, **kwargs):
        super().__init__(name=name, activation=activation, **kwargs)
        self.kernel_size = normalize_tuple(kernel_size, "kernel_size", self._who())
        self.strides = normalize_tuple(strides, "strides", self._who())
        self.padding = check_padding(padding, self._who())
        self.use_bias = use_bias
        self.bias_initializer = initializers.get(bias_initializer, self._who())

    def check_built_shape(self, shape):
        if shape[-1] != self.input_shape[-1]:
            raise self.error(f"expected {self.input_shape[-1]} input channels, received "
                             f"{shape[-1]} (input shape {shape})")

    def add_bias(self, size):
        if self.use_bias:
            self.add_param("bias", (size,), self.bias_initializer)

    def plus_bias(self, z):
        """z + b in place (one pass, ``kernels/epilogue.py``)."""
        return epilogue.bias_activation(z, self.params.get("bias"))

    def set_grads(self, grads, dz):
        """``self.grads``: ``grads`` and ∂L/∂b = Σ ∂L/∂z when the layer has a bias."""
        self.grads = with_bias_grad(grads, epilogue.bias_grad(dz) if "bias" in self.params else None)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "activation": self.activation.name, "use_bias": self.use_bias}


class Conv2DTranspose(WindowLayer):
    algorithm = None                   # the TransposedPlan of the last input shape (``plan_for``)
    _plan_key = None                   # what it was decided for

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", name=None, **kwargs):
        super().__init__(kernel_size, strides, padding, activation, use_bias, bias_initializer, name, **kwargs)
        self.filters = positive_int(self, filters, "filters")
        self.dilation_rate = checked_dilation(self, dilation_rate)
        if output_padding is not None:
            pair = (output_padding,) * 2 if isinstance(output_padding, int) else tuple(output_padding)
            if len(pair) != 2 or not all(isinstance(v, int) and 0 <= v < s for v, s in zip(pair, self.strides)):
                raise self.error(f"output_padding must be None or non-negative ints smaller than strides "
                                 f"{self.strides}, received output_padding={output_padding!r}")
            output_padding = pair
        self.output_padding = output_padding
        self.kernel_initializer = initializers.get(kernel_initializer, self._who())

    def output_shape_of(self, input_shape):
        n, h, w, _ = input_shape
        if h is None or w is None:
            return (n, None, None, self.filters)
        out_h, out_w, _ = conv2d_transpose_geometry(input_shape, dilated_size(self.kernel_size, self.dilation_rate),
                                                    self.strides, self.padding, self.output_padding, self._who())
        return (n, out_h, out_w, self.filters)

    def build_params(self, input_shape):
        self.add_param("kernel", (*self.kernel_size, self.filters, input_shape[-1]), self.kernel_initializer)
        self.add_bias(self.filters)

    def plan_for(self, x):
        """The plan of the convolution this layer transposes, for input x, kept as
        ``self.algorithm``: decided again only when x's shape or dtype, the kernel family or the
        forced algorithm changes (as ``Conv2D.plan_for``)."""
        key = (tuple(x.shape), x.dtype, family(x), conv_plan.forced())
        if key != self._plan_key:
            window = dilated_size(self.kernel_size, self.dilation_rate)
            shape, pads = transposed_conv_input_shape(x.shape, window, self.strides, self.padding,
                                                      self.output_padding, self.filters, self._who())
            plan = conv_plan.choose(shape, (*window, self.filters, x.shape[-1]), self.strides, pads, key[2],
                                    self._who(), x.dtype)
            if plan.input_grad == "one_pass":       # (its forward is that ∂L/∂X alone: no ∂L/∂W pass beside it)
                plan = plan._replace(input_grad="implicit_gemm")
            self.algorithm = conv_plan.TransposedPlan(plan)
            self._plan_key = key
        return self.algorithm

    def call(self, x, training):
        plan = self.plan_for(x).conv
        self.cache = (x, plan)
        y = conv2d_transpose_forward(x, dilated_kernel(self.params["kernel"], self.dilation_rate), self.strides,
                                     self.padding, self.output_padding, self.workspace, plan)
        return self.plus_bias(y)

    def call_backward(self, dz, input_grad=True):
        rate = self.dilation_rate
        x, plan = self.cache
        dx, dW_d = conv2d_transpose_backward(dz, x, dilated_kernel(self.params["kernel"], rate),
                                             self.strides, self.padding, self.workspace, plan)
        self.set_grads({"kernel": dW_d[::rate[0], ::rate[1]]}, dz)
        return dx if input_grad else None

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "output_padding": self.output_padding,
                "dilation_rate": self.dilation_rate}


class DepthwiseWindow(WindowLayer):
    """The depthwise step DepthwiseConv2D and SeparableConv2D share (its weight: ``kernel_key``)."""

    kernel_key = "kernel"

    def __init__(self, kernel_size, strides, padding, depth_multiplier, dilation_rate, activation, use_bias,
                 depthwise_initializer, bias_initializer, name, **kwargs):
        super().__init__(kernel_size, strides, padding, activation, use_bias, bias_initializer, name, **kwargs)
        self.depth_multiplier = positive_int(self, depth_multiplier, "depth_multiplier")
        self.dilation_rate = checked_dilation(self, dilation_rate)
        self.depthwise_initializer = initializers.get(depthwise_initializer, self._who())

    def output_channels(self, in_channels):
        return in_channels * self.depth_multiplier

    def output_shape_of(self, input_shape):
        n, h, w, c = input_shape
        if h is None or w is None:
            return (n, None, None, self.output_channels(c))
        oh, ow, _ = window_geometry(h, w, dilated_size(self.kernel_size, self.dilation_rate), self.strides,
                                    self.padding, self._who())
        return (n, oh, ow, self.output_channels(c))

    def add_depthwise_kernel(self, in_channels):
        self.add_param(self.kernel_key, (*self.kernel_size, in_channels, self.depth_multiplier),
                       self.depthwise_initializer)

    def depthwise(self, x):
        """(d, saved): the depthwise convolution of x, in the workspace's buffer ``'depthwise'``,
        and what its backward reads (x and the pads), for the caller's cache (a layer called
        at several nodes has its cache saved per node: ``Layer.call_state``)."""
        oh, ow, pads = window_geometry(x.shape[1], x.shape[2], dilated_size(self.kernel_size, self.dilation_rate),
                                       self.strides, self.padding, self._who())
        W = self.params[self.kernel_key]
        d = self.workspace.reusable("depthwise", (x.shape[0], oh, ow, x.shape[3] * W.shape[3]), x.dtype, like=x)
        forward = pick(x, depthwise_forward, numba="numba_depthwise.depthwise_forward")
        return forward(x, W, self.strides, pads, self.dilation_rate, (oh, ow), out=d), (x, pads)

    def depthwise_backward(self, dd, saved, input_grad):
        """(∂L/∂x, ∂L/∂W) from ∂L/∂d and ``depthwise``'s ``saved``."""
        x, pads = saved
        dx = self.workspace.reusable("depthwise_dx", x.shape, dd.dtype, like=dd) if input_grad else None
        backward = pick(dd, depthwise_backward, numba="numba_depthwise.depthwise_backward")
        return backward(dd, x, self.params[self.kernel_key], self.strides, pads, self.dilation_rate, input_grad,
                        out=dx, workspace=self.workspace)

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier,
                "dilation_rate": self.dilation_rate}


class DepthwiseConv2D(DepthwiseWindow):
    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, dilation_rate=(1, 1),
                 activation=None, use_bias=True, depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 name=None, **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, dilation_rate, activation, use_bias,
                         depthwise_initializer, bias_initializer, name, **kwargs)

    def build_params(self, input_shape):
        self.add_depthwise_kernel(input_shape[-1])
        self.add_bias(self.output_channels(input_shape[-1]))

    def call(self, x, training):
        d, self.cache = self.depthwise(x)
        return self.plus_bias(d)

    def call_backward(self, dz, input_grad=True):
        dx, dW = self.depthwise_backward(dz, self.cache, input_grad)
        self.set_grads({"kernel": dW}, dz)
        return dx


class SeparableConv2D(DepthwiseWindow):
    kernel_key = "depthwise_kernel"

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", dilation_rate=(1, 1),
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", name=None, **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, dilation_rate, activation, use_bias,
                         depthwise_initializer, bias_initializer, name, **kwargs)
        self.filters = positive_int(self, filters, "filters")
        self.pointwise_initializer = initializers.get(pointwise_initializer, self._who())

    def output_channels(self, in_channels):
        return self.filters

    def build_params(self, input_shape):
        self.add_depthwise_kernel(input_shape[-1])
        self.add_param("pointwise_kernel", (1, 1, input_shape[-1] * self.depth_multiplier, self.filters),
                       self.pointwise_initializer)
        self.add_bias(self.filters)

    def call(self, x, training):
        d, saved = self.depthwise(x)
        # budget 0: im2col's columns of a 1×1 convolution are d itself, so none are kept (the
        # backward reads d, which stays this call's while the next call writes elsewhere)
        z, pointwise = conv2d_forward(d, self.params["pointwise_kernel"], self.params.get("bias"),
                                      workspace=self.workspace, budget=0)
        self.cache = (saved, pointwise)
        return z

    def call_backward(self, dz, input_grad=True):
        saved, pointwise = self.cache
        dd, dW_p, db = conv2d_backward(dz, pointwise, self.workspace, bias_grad="bias" in self.params)
        dx, dW_d = self.depthwise_backward(dd, saved, input_grad)
        self.grads = with_bias_grad({"depthwise_kernel": dW_d, "pointwise_kernel": dW_p}, db)
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}
