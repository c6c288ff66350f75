"""Fused groups: layer calls that run as one step of the plan, each beside its unfused twin.

**EpilogueGroup** — a weighted layer and its ReLU, ``a = max(x·W + b, 0)``, written in one
pass: ``ConvReluGroup`` (a plain Conv2D, ``kernels/conv.py``) and ``DenseReluGroup``
(``kernels/dense.py``), each calling its layer's kernels with the layer's weights:

* forward: the kernels add b and apply the ReLU as they write their output (``relu=True``,
  ``kernels/epilogue.py``); z is never kept, ``a`` stands in for the mask (``a > 0``
  exactly where ``z > 0``);
* backward: one pass computes ``∂L/∂z = ∂L/∂a · [a > 0]`` and ``∂L/∂b = Σ ∂L/∂z``
  (``relu_backward_bias_grad``); the kernels' backward then forms ∂L/∂W and ∂L/∂x from
  ∂L/∂z (``bias_grad=False``: ∂L/∂b is summed already).

Unfused: ``layer.forward`` (z = x·W + b, then the ReLU's own pass and mask) and
``layer.backward`` (the ReLU's backward, then the layer's, which sums ∂L/∂b).  The other
weighted layers (dilated or grouped convolutions, the transposed, depthwise and separable
ones) run their ReLU unfused.

**ReluPoolGroup** — a layer ending in a ReLU, read only by a ``MaxPooling2D``:

* backward: the pool routes each ``∂L/∂y`` to its window's arg-max; the ReLU then
  multiplies by ``[z > 0]``.  Applied to the pooled gradient before routing, the gate
  touches 4× fewer values, and the same pass sums ``∂L/∂b = Σ ∂L/∂z`` (``kernels/pool.py``:
  ``maxpool_relu_backward``); the layer below then runs from its pre-activation gradient;
* forward (Conv2D with a bias, on the Numba kernels): conv, bias, ReLU and the 2×2 pool
  in one kernel; the conv's output is never formed (``kernels/conv_relu_pool.py``);
  otherwise the layer below (as an epilogue group where it is one), then the pool.

Unfused: ``pool.forward(below.forward(x))`` and ``below.backward(pool.backward(dy))``.

**NormReluGroup** — a ``BatchNormalization`` read only by a ReLU (an ``Activation`` layer):

* forward: ``a = max(γ·x̂ + β, 0)`` in BN's own pass (``kernels/normalization.py`` with
  ``relu=True``); the normalized ``y`` and the ReLU's mask are never formed;
* backward: BN's two passes read ``∂L/∂a`` and x, and form ``∂L/∂y = ∂L/∂a · [a > 0]`` as
  they go, ``a > 0`` from x by the forward's arithmetic (``relu=True``): ``∂L/∂y`` is never
  formed either, and ``a`` is not read.

Unfused: ``relu.forward(norm.forward(x))`` and ``norm.backward(relu.backward(dy))``.

**AddReluGroup** — an ``Add`` read only by a ReLU (a residual block's end, ``relu(F(x) + x)``):

* forward: ``a = max(Σ x_i, 0)`` rectified as the sum is written, in one pass (``kernels/epilogue.py``:
  ``sum_activation``): no second array and no mask (``a`` stands in for it);
* backward: ``∂L/∂(Σ x_i) = ∂L/∂a · [a > 0]`` in one pass into a reused buffer
  (``kernels/epilogue.py``: ``relu_backward``), handed to every input.

Unfused: ``relu.forward(add.forward(xs))`` and ``add.backward(relu.backward(dy))``.

Each group's ``run_unfused`` is its twin, and the tests hold the two equal.  The plan
(``plan.py``) forms groups only on the fast kernels (not ``set_kernels("reference")``),
and a ReLU–pool group only where the ReLU's output has this pool as its one consumer and
is not an output the caller asked for (the same for the BN–ReLU and Add–ReLU groups).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from .activations import ReLU
from .layers.core import Activation
from .layers.merging import Add
from .layers.normalization import BatchNormalization
from .kernels import conv_relu_pool
from .kernels.conv import conv2d_backward, conv2d_forward
from .kernels.dense import dense_backward, dense_forward
from .kernels.normalization import batch_norm_backward, batch_norm_forward
from .kernels.epilogue import relu_backward, relu_backward_bias_grad, sum_activation
from .kernels.pool import maxpool_relu_backward
from .layers.base import with_bias_grad
from .layers.conv import Conv2D
from .layers.dense import Dense
from .layers.pooling import MaxPooling2D


def runs_the_ops_of(layer, cls) -> bool:
    """Whether ``layer`` is a ``cls`` whose forward and backward are ``cls``'s own (a subclass
    that overrides them must run them: a group would call ``cls``'s kernels instead)."""
    kind = type(layer)
    return isinstance(layer, cls) and kind.call is cls.call and kind.call_backward is cls.call_backward


def epilogue_group(layer):
    """The ``EpilogueGroup`` that runs ``layer`` and its ReLU in one pass, or None."""
    if not isinstance(layer.activation, ReLU):
        return None
    if runs_the_ops_of(layer, Conv2D) and layer.plain:
        return ConvReluGroup(layer)
    return DenseReluGroup(layer) if runs_the_ops_of(layer, Dense) else None


def forms_relu_pool_group(below, pool) -> bool:
    """Whether ``pool`` over ``below`` can be a ``ReluPoolGroup`` (the layer types and activations)."""
    return (isinstance(pool, MaxPooling2D) and pool.activation.name == "linear"
            and isinstance(below.activation, ReLU))


def forms_norm_relu_group(norm, act) -> bool:
    """Whether ``act`` over ``norm`` can be a ``NormReluGroup`` (the layer types and activations)."""
    return (isinstance(norm, BatchNormalization) and norm.activation.name == "linear"
            and isinstance(act, Activation) and isinstance(act.activation, ReLU))


def forms_add_relu_group(add, act) -> bool:
    """Whether ``act`` over ``add`` can be an ``AddReluGroup``."""
    return runs_the_ops_of(add, Add) and isinstance(act, Activation) and isinstance(act.activation, ReLU)


def pair_group(below, after):
    """The fused group that runs layer ``below`` and the layer ``after`` it as one step, or None."""
    for forms, group in ((forms_relu_pool_group, ReluPoolGroup), (forms_norm_relu_group, NormReluGroup),
                         (forms_add_relu_group, AddReluGroup)):
        if forms(below, after):
            return group(below, after)
    return None


class EpilogueGroup(ABC):
    """``layer`` and its ReLU as one step; its forward and backward take the layer's
    arguments.  The output ``a`` is kept in the ReLU's ``out`` slot (so that ``release`` and
    a shared layer's saved call state cover it).  Subclasses call the layer's kernels.

    Invariant: ``forward_through_relu`` leaves in ``layer.cache`` exactly what the layer's own
    ``call`` would, so the layer's ``call_backward`` can run from it (the other ReLU rules, a
    bias-less layer, a ReLU–pool group's fallback)."""

    def __init__(self, layer):
        self.layer = layer
        self.name = f"{layer.name} + relu (fused epilogue)"

    def forward(self, x, training=False):
        layer = self.layer
        x = layer.begin_forward(x)
        a = layer.activation.out = self.forward_through_relu(x)
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
        dx, dW = self.input_and_weight_grads(layer.check_grad(dz), input_grad)
        layer.grads = with_bias_grad({"kernel": dW}, db if "bias" in layer.params else None)
        return dx

    def run_unfused(self, x, dy, training=False, input_grad=True):
        """The twin: (a, ∂L/∂x) by the layer's own forward and backward."""
        return self.layer.forward(x, training=training), self.layer.backward(dy, input_grad)

    @abstractmethod
    def forward_through_relu(self, x):
        """a = max(x·W + b, 0) by the layer's kernels, its cache kept as the layer's ``call`` keeps it."""

    @abstractmethod
    def input_and_weight_grads(self, dz, input_grad):
        """(∂L/∂x or None, ∂L/∂W) from ∂L/∂z and the layer's cache, ∂L/∂b not summed."""


class ConvReluGroup(EpilogueGroup):
    """A plain ``Conv2D`` and its ReLU: ``kernels/conv.py`` with ``relu=True``."""

    def forward_through_relu(self, x):
        conv = self.layer
        a, conv.cache = conv2d_forward(x, conv.params["kernel"], conv.params.get("bias"), conv.strides, conv.padding,
                                       conv.workspace, conv.workspace_budget, relu=True, plan=conv.plan_for(x))
        return a

    def input_and_weight_grads(self, dz, input_grad):
        dx, dW, _ = conv2d_backward(dz, self.layer.cache, self.layer.workspace, input_grad, bias_grad=False,
                                    overwrite_cols=True)
        return dx, dW


class DenseReluGroup(EpilogueGroup):
    """A ``Dense`` layer and its ReLU: ``kernels/dense.py`` with ``relu=True``."""

    def forward_through_relu(self, x):
        dense = self.layer
        dense.cache = x
        return dense_forward(x, dense.params["kernel"], dense.params.get("bias"), dense.workspace, relu=True)

    def input_and_weight_grads(self, dz, input_grad):
        dense = self.layer
        dx, dW, _ = dense_backward(dz, dense.cache, dense.params["kernel"], dense.workspace, input_grad,
                                   bias_grad=False)
        return dx, dW


class ReluPoolGroup:
    """``below`` (ending in a ReLU) then ``pool``, as one step of the plan."""

    def __init__(self, below, pool):
        self.below, self.pool = below, pool
        self.head = epilogue_group(below)
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


class NormReluGroup:
    """``norm`` (a BatchNormalization) then ``act`` (its ReLU, an Activation layer), as one
    step of the plan.  The output ``a`` is kept in the ReLU's ``out`` slot, where the ReLU's
    own backward reads it (for the visualizations' rules)."""

    def __init__(self, norm, act):
        self.norm, self.act = norm, act
        self.name = f"{norm.name} + {act.name} (fused)"

    def forward(self, x, training=False):
        norm, act = self.norm, self.act
        x = norm.begin_forward(x)
        act.release()
        use_batch = norm.uses_batch_statistics(training)
        a, norm.cache, mean, var = batch_norm_forward(x, norm.channel_axis(x.ndim), norm.params, norm.epsilon,
                                                      use_batch, norm.workspace, relu=True)
        if use_batch:
            norm.update_moving_statistics(mean, var)
        act.activation.out = a
        norm.output_shape_seen = act.output_shape_seen = a.shape
        return a

    def backward(self, dy, input_grad=True):
        norm, relu = self.norm, self.act.activation
        if relu.rule != "gradient":
            return norm.backward(self.act.backward(dy), input_grad)
        dx, norm.grads = batch_norm_backward(self.act.check_grad(dy), norm.cache, norm.params, norm.workspace,
                                             input_grad, relu=True)
        return dx

    def run_unfused(self, x, dy, training=False, input_grad=True):
        """The twin: (a, ∂L/∂x) by the two layers' own forward and backward."""
        a = self.act.forward(self.norm.forward(x, training=training), training=training)
        return a, self.norm.backward(self.act.backward(dy), input_grad)


class AddReluGroup:
    """``add`` (an Add layer) then ``act`` (its ReLU, an Activation layer), as one step of
    the plan; takes and returns lists as ``add`` does.  The output ``a`` is kept in the ReLU's
    ``out`` slot."""

    def __init__(self, add, act):
        self.add, self.act = add, act
        self.name = f"{add.name} + {act.name} (fused)"

    def forward(self, xs, training=False):
        add, act = self.add, self.act
        act.release()
        add.begin_merge(xs)
        a = act.activation.out = sum_activation(xs, add.sum_buffer(xs), relu=True)
        add.output_shape_seen = act.output_shape_seen = a.shape
        return a

    def backward(self, dy, input_grad=True):
        relu = self.act.activation
        dy = self.act.check_grad(dy)
        dz = relu_backward(dy, relu.out, relu.rule, self.add.workspace.reusable("dz", dy.shape, dy.dtype, like=dy))
        return self.add.backward(dz, input_grad)

    def run_unfused(self, xs, dy, training=False, input_grad=True):
        """The twin: (a, [∂L/∂x_i]) by the two layers' own forward and backward."""
        a = self.act.forward(self.add.forward(xs, training=training), training=training)
        return a, self.add.backward(self.act.backward(dy), input_grad)
