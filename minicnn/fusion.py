"""Fused groups: layer calls that run as one step of the plan, each beside its unfused twin.

**EpilogueGroup** — a weighted layer (``AffineLayer``: Dense, the convolutions) and its
ReLU, ``a = max(x·W + b, 0)``, written in one pass:

* forward: the layer's kernels add b and apply the ReLU as they write their output
  (``affine(x, relu=True)``, ``kernels/epilogue.py``); z is never kept, ``a`` stands in
  for the mask (``a > 0`` exactly where ``z > 0``);
* backward: one pass computes ``∂L/∂z = ∂L/∂a · [a > 0]`` and ``∂L/∂b = Σ ∂L/∂z``
  (``relu_backward_bias_grad``); the layer then forms ∂L/∂W and ∂L/∂x from ∂L/∂z
  (``affine_backward(..., bias_grad=False)``).

Unfused: ``layer.forward`` (z = x·W + b, then the ReLU's own pass and mask) and
``layer.backward`` (the ReLU's backward, then the layer's, which sums ∂L/∂b).

**ReluPoolGroup** — a layer ending in a ReLU, read only by a ``MaxPooling2D``:

* backward: the pool routes each ``∂L/∂y`` to its window's arg-max; the ReLU then
  multiplies by ``[z > 0]``.  Applied to the pooled gradient before routing, the gate
  touches 4× fewer values, and the same pass sums ``∂L/∂b = Σ ∂L/∂z`` (``kernels/pool.py``:
  ``maxpool_relu_backward``); the layer below then runs from its pre-activation gradient;
* forward (Conv2D with a bias, on the Numba kernels): conv, bias, ReLU and the 2×2 pool
  in one kernel; the conv's output is never formed (``kernels/conv_relu_pool.py``);
  otherwise the layer below (as an epilogue group where it is one), then the pool.

Unfused: ``pool.forward(below.forward(x))`` and ``below.backward(pool.backward(dy))``.

**SumReluGroup** — an ``Add`` read only by a ReLU layer (``Activation('relu')``, ``ReLU()``),
``a = max(Σ_i x_i, 0)``, a residual block's end:

* forward: the sum into the Add's buffer, then the ReLU over it in place, the epilogue's pass
  without a bias (``kernels/epilogue.py``; no second array, no mask: ``a`` stands in for it,
  as in the epilogue group);
* backward: the ReLU layer's (``∂L/∂s = ∂L/∂a · [a > 0]``), then the Add's (each input
  receives ∂L/∂s).

Unfused: ``relu.forward(add.forward(xs))`` and ``add.backward(relu.backward(dy))``.

Each group's ``run_unfused`` is its twin, and the tests hold the two equal.  The plan
(``plan.py``) forms groups only on the fast kernels (not ``set_kernels("reference")``),
and a ReLU–pool or sum–ReLU group only where the first layer's output has the second as its
one consumer and is not an output the caller asked for.
"""
from __future__ import annotations

from .activations import ReLU
from .kernels import conv_relu_pool
from .kernels.epilogue import bias_activation, relu_backward, relu_backward_bias_grad
from .kernels.pool import maxpool_relu_backward
from .layers.base import AffineLayer
from .layers.conv import Conv2D
from .layers.core import Activation
from .layers.merging import Add
from .layers.pooling import MaxPooling2D


def forms_epilogue_group(layer) -> bool:
    """Whether ``layer`` and its activation can run as an ``EpilogueGroup``."""
    return isinstance(layer, AffineLayer) and isinstance(layer.activation, ReLU)


def forms_relu_pool_group(below, pool) -> bool:
    """Whether ``pool`` over ``below`` can be a ``ReluPoolGroup`` (the layer types and activations)."""
    return (isinstance(pool, MaxPooling2D) and pool.activation.name == "linear"
            and isinstance(below.activation, ReLU))


def pair_group(below, after):
    """The group class for layer ``after`` reading ``below``'s output (its one consumer):
    ``ReluPoolGroup``, ``SumReluGroup``, or None."""
    if forms_relu_pool_group(below, after):
        return ReluPoolGroup
    if isinstance(below, Add) and isinstance(after, Activation) and isinstance(after.activation, ReLU):
        return SumReluGroup
    return None


class EpilogueGroup:
    """``layer`` (an ``AffineLayer``) and its ReLU as one step; its forward and backward
    take the layer's arguments.  The output ``a`` is kept in the ReLU's ``out`` slot (so
    that ``release`` and a shared layer's saved call state cover it)."""

    def __init__(self, layer):
        self.layer = layer
        self.name = f"{layer.name} + relu (fused epilogue)"

    def forward(self, x, training=False):
        layer = self.layer
        x = layer.begin_forward(x)
        a = layer.activation.out = layer.affine(x, relu=True)
        layer.output_shape_seen = a.shape
        return a

    def backward(self, dy, input_grad=True):
        layer, relu = self.layer, self.layer.activation
        dy = layer.check_grad(dy)
        dz = layer.workspace.reusable("dz", dy.shape, dy.dtype, like=dy)
        if relu.rule == "gradient" and "bias" in layer.params:
            return self.backward_from_logits(*relu_backward_bias_grad(dy, relu.out, dz), input_grad)
        return layer.call_backward(relu_backward(dy, relu.out, relu.rule, dz), input_grad)

    def backward_logits(self, dz, input_grad=True):
        return self.layer.backward_logits(dz, input_grad)

    def backward_from_logits(self, dz, db, input_grad=True):
        """∂L/∂x from ∂L/∂z and ∂L/∂b, summed already by the caller's pass over ∂L/∂z."""
        layer = self.layer
        dx = layer.affine_backward(layer.check_grad(dz), input_grad, bias_grad=False)
        if "bias" in layer.params:
            layer.grads["bias"] = db
        return dx

    def run_unfused(self, x, dy, training=False, input_grad=True):
        """The twin: (a, ∂L/∂x) by the layer's own forward and backward."""
        return self.layer.forward(x, training=training), self.layer.backward(dy, input_grad)


class ReluPoolGroup:
    """``below`` (ending in a ReLU) then ``pool``, as one step of the plan."""

    def __init__(self, below, pool):
        self.below, self.pool = below, pool
        self.head = EpilogueGroup(below) if forms_epilogue_group(below) else None
        self.name = f"{below.name} + {pool.name} (fused)"
        self.one_kernel = False         # whether the last forward ran as one kernel

    # The visualizations switch the ReLU's backward rule (guided, deconvnet): only the plain
    # gradient rule can be applied on the pooled gradient.
    def gates_on_pooled_gradient(self) -> bool:
        return self.below.activation.rule == "gradient"

    def _one_forward_kernel(self, x) -> bool:
        below, pool = self.below, self.pool
        return (isinstance(below, Conv2D) and below.plain and "bias" in below.params and self.gates_on_pooled_gradient()
                and below.built and x.ndim == 4 and x.shape[-1] == below.input_shape[-1]
                and conv_relu_pool.fusable(x, below.params["kernel"], below.strides, below.padding,
                                           pool.pool_size, pool.strides, pool.padding, below.plan_for(x)))

    def forward(self, x, training=False):
        self.one_kernel = self._one_forward_kernel(x)
        if not self.one_kernel:
            return self.pool.forward((self.head or self.below).forward(x, training=training), training=training)
        below, pool = self.below, self.pool
        x = below.begin_forward(x)
        pool.release()
        y, below.cache, pool.cache = conv_relu_pool.conv2d_relu_maxpool_forward(
            x, below.params["kernel"], below.params["bias"], below.strides, below.padding,
            below.workspace, pool.workspace, below.algorithm)
        below.output_shape_seen = pool.cache.x_shape
        pool.output_shape_seen = y.shape
        return y

    def backward(self, dy, input_grad=True):
        if not self.gates_on_pooled_gradient():
            return (self.head or self.below).backward(self.pool.backward(dy), input_grad)
        dz, db = maxpool_relu_backward(self.pool.check_grad(dy), self.pool.cache, self.pool.workspace)
        if self.head is not None:
            return self.head.backward_from_logits(dz, db, input_grad)
        return self.below.backward_logits(dz, input_grad)

    def run_unfused(self, x, dy, training=False, input_grad=True):
        """The twin: (y, ∂L/∂x) by the two layers' own forward and backward."""
        y = self.pool.forward(self.below.forward(x, training=training), training=training)
        return y, self.below.backward(self.pool.backward(dy), input_grad)


class SumReluGroup:
    """``add`` (an ``Add``) then ``relu`` (a ReLU layer), as one step of the plan; its forward
    takes the Add's list of inputs, its backward returns their gradients."""

    def __init__(self, add, relu):
        self.add, self.relu = add, relu
        self.name = f"{add.name} + {relu.name} (fused)"

    def forward(self, xs, training=False):
        s = self.add.forward(xs, training=training)       # the Add's own buffer: the ReLU is its one reader
        relu = self.relu
        relu.release()
        a = relu.activation.out = bias_activation(s, None, relu=True)
        relu.output_shape_seen = a.shape
        return a

    def backward(self, dy, input_grad=True):
        return self.add.backward(self.relu.backward(dy, input_grad), input_grad)

    def run_unfused(self, xs, dy, training=False, input_grad=True):
        """The twin: (a, the inputs' gradients) by the two layers' own forward and backward."""
        a = self.relu.forward(self.add.forward(xs, training=training), training=training)
        return a, self.add.backward(self.relu.backward(dy, input_grad), input_grad)
