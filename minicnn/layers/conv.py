"""Conv2D: a 2-D convolution layer, NHWC input, HWIO kernel (Keras's layout).

Forward ``a = activation(conv(x, W) + b)`` (``kernels/conv.py``: the convolution, then the
bias in one pass over its output, ``kernels/epilogue.py``, or none on the Winograd kernels,
which add it as they store).
Backward (``kernels/conv.py``), with Y the convolution's output before the activation::

    ∂L/∂W = X ⋆ ∂L/∂Y     (cross-correlation of the input with the output gradient)
    ∂L/∂b = Σ_{n,p,q} ∂L/∂Y
    ∂L/∂X = pad(∂L/∂Y) ⊛ rot180(W)    (full convolution; col2im of ∂L/∂Y · W2ᵀ)

With ``dilation_rate`` or ``groups``, the same functions run on a dilated kernel and once per
group (``kernels/conv_variants.py``).

Which algorithm each pass runs (im2col, the implicit GEMM, Winograd) is decided once per
input shape and kernel family (``kernels/conv_plan.py``) and kept as ``layer.algorithm``, a
``ConvPlan`` that ``summary(details=True)`` and ``mc.trace`` show; ``mc.use_conv_algorithm``
forces one.

Keeps for backward: the im2col matrix of the input (kh·kw times the input's size),
or only the input when that matrix would exceed ``workspace_budget`` bytes; on the
Numba kernels' implicit GEMM (no im2col matrix), the input and its zero-padded copy.
"""
from __future__ import annotations

from .. import initializers
from ..kernels import conv_plan
from ..kernels.conv import conv2d_backward, conv2d_forward
from ..kernels.conv_variants import checked_dilation, conv2d_backward_general, conv2d_forward_general, dilated_size
from ..kernels.dispatch import family
from ..kernels.geometry import check_padding, normalize_tuple, window_geometry
from ..kernels.workspace import Workspace
from .base import Layer, with_bias_grad


class Conv2D(Layer):
    input_rank = 4
    workspace_budget = 512 * 2**20     # bytes of im2col columns before chunking the batch
    algorithm = None                   # the ConvPlan of the last input shape (``plan_for``)
    _plan_key = None                   # what it was decided for

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 dilation_rate=(1, 1), groups=1, name=None, **kwargs):
        super().__init__(name=name, activation=activation, **kwargs)
        if not isinstance(filters, int) or isinstance(filters, bool) or filters <= 0:
            raise self.error(f"filters must be a positive int, received filters={filters!r}")
        self.filters = filters
        self.kernel_size = normalize_tuple(kernel_size, "kernel_size", self._who())
        self.strides = normalize_tuple(strides, "strides", self._who())
        self.padding = check_padding(padding, self._who())
        self.dilation_rate = checked_dilation(self, dilation_rate)
        if not isinstance(groups, int) or isinstance(groups, bool) or groups <= 0 or filters % groups:
            raise self.error(f"groups must be a positive int dividing filters={filters}, received groups={groups!r}")
        self.groups = groups
        self.window = dilated_size(self.kernel_size, self.dilation_rate)     # the extent the taps span
        self.group_workspaces = [Workspace() for _ in range(groups)]
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer, self._who())
        self.bias_initializer = initializers.get(bias_initializer, self._who())

    def output_shape_of(self, input_shape):
        n, h, w, _ = input_shape
        if h is None or w is None:
            return (n, None, None, self.filters)
        oh, ow, _ = window_geometry(h, w, self.window, self.strides, self.padding, self._who())
        return (n, oh, ow, self.filters)

    @property
    def plain(self) -> bool:
        """No dilation and one group: the plain convolution, which the plan may fuse with its
        ReLU and a max-pool after it (``fusion.py``)."""
        return self.dilation_rate == (1, 1) and self.groups == 1

    def workspaces(self):
        return [self.workspace, *self.group_workspaces]

    def build_params(self, input_shape):
        if input_shape[-1] % self.groups:
            raise self.error(f"groups={self.groups} must divide the input channels, received {input_shape[-1]}")
        self.add_kernel_and_bias((*self.kernel_size, input_shape[-1] // self.groups, self.filters))

    def check_built_shape(self, shape):
        if shape[-1] != self.input_shape[-1]:
            raise self.error(f"expected {self.input_shape[-1]} input channels, received "
                             f"{shape[-1]} (input shape {shape})")

    def plan_for(self, x):
        """The algorithm of each pass for input x (``kernels/conv_plan.py``), kept as
        ``self.algorithm``: decided again only when x's shape or dtype, the kernel family or
        the forced algorithm (``mc.use_conv_algorithm``) changes.  A grouped convolution runs
        this plan on each group."""
        key = (tuple(x.shape), x.dtype, family(x), conv_plan.forced())
        if key != self._plan_key:
            n, h, w, c = x.shape
            _, _, pads = window_geometry(h, w, self.window, self.strides, self.padding, self._who())
            group = (n, h, w, c // self.groups)
            self.algorithm = conv_plan.choose(group, (*self.window, c // self.groups, self.filters // self.groups),
                                              self.strides, pads, key[2], self._who(), x.dtype)
            self._plan_key = key
        return self.algorithm

    def call(self, x, training):
        plan = self.plan_for(x)
        if not self.plain:
            y, self.cache = conv2d_forward_general(x, self.params["kernel"], self.params.get("bias"), self.strides,
                                                   self.padding, self.dilation_rate, self.groups,
                                                   self.group_workspaces, self.workspace_budget, plan)
            return y
        y, self.cache = conv2d_forward(x, self.params["kernel"], self.params.get("bias"), self.strides,
                                       self.padding, self.workspace, self.workspace_budget, plan=plan)
        return y

    def call_backward(self, dz, input_grad=True):
        bias_grad = "bias" in self.params
        if not self.plain:
            dx, dW, db = conv2d_backward_general(dz, self.cache, self.dilation_rate, self.group_workspaces,
                                                 input_grad, bias_grad)
        else:
            dx, dW, db = conv2d_backward(dz, self.cache, self.workspace, input_grad, bias_grad, overwrite_cols=True)
        self.grads = with_bias_grad({"kernel": dW}, db)
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "dilation_rate": self.dilation_rate,
                "groups": self.groups, "activation": self.activation.name, "use_bias": self.use_bias}
