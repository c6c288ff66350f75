"""Fused groups: two layer calls that run as one step, beside their unfused twin.

One group exists today: a layer ending in a ReLU, read only by a ``MaxPooling2D``.

* **Backward.**  The pool routes each ``∂L/∂y`` to its window's arg-max; the ReLU then
  multiplies by ``[z > 0]``.  Applied to the pooled gradient before routing, the gate
  touches 4× fewer values, and the same pass sums ``∂L/∂b = Σ ∂L/∂z`` (``kernels/pool.py``:
  ``maxpool_relu_backward``).  The layer below then runs from its pre-activation
  gradient (``backward_logits``).
* **Forward** (Conv2D with a bias, on the Numba kernels): conv, bias, ReLU and the 2×2 pool
  in one kernel; the conv's output is never formed (``kernels/conv_relu_pool.py``).

Unfused, the same group is ``pool.forward(below.forward(x))`` and
``below.backward(pool.backward(dy))``: ``run_unfused`` is that twin, and the tests hold
the two equal.  The plan (``plan.py``) forms a group only where the ReLU's output has this
pool as its one consumer and is not an output the caller asked for.
"""
from __future__ import annotations

from . import backend
from .activations import ReLU
from .kernels import conv_relu_pool
from .kernels.pool import maxpool_relu_backward
from .layers.conv import Conv2D
from .layers.pooling import MaxPooling2D


def forms_group(below, pool) -> bool:
    """Whether ``pool`` over ``below`` can be a group (the layer types and activations)."""
    return (isinstance(pool, MaxPooling2D) and pool.activation.name == "linear"
            and isinstance(below.activation, ReLU))


class ReluPoolGroup:
    """``below`` (ending in a ReLU) then ``pool``, as one step of the plan."""

    def __init__(self, below, pool):
        self.below, self.pool = below, pool
        self.one_kernel = False         # whether the last forward ran as one kernel

    # The visualizations switch the ReLU's backward rule (guided, deconvnet): only the plain
    # gradient rule can be applied on the pooled gradient.
    def gates_on_pooled_gradient(self) -> bool:
        return self.below.activation.rule == "gradient" and backend.get_kernels() != "reference"

    def _one_forward_kernel(self, x) -> bool:
        below, pool = self.below, self.pool
        return (isinstance(below, Conv2D) and below.plain and "bias" in below.params and self.gates_on_pooled_gradient()
                and below.built and x.ndim == 4 and x.shape[-1] == below.input_shape[-1]
                and conv_relu_pool.fusable(x, below.params["kernel"], below.strides, below.padding,
                                           pool.pool_size, pool.strides, pool.padding, below.plan_for(x)))

    def forward(self, x, training):
        self.one_kernel = self._one_forward_kernel(x)
        if not self.one_kernel:
            return self.pool.forward(self.below.forward(x, training=training), training=training)
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
            return self.below.backward(self.pool.backward(dy), input_grad)
        dz, db = maxpool_relu_backward(self.pool.check_grad(dy), self.pool.cache, self.pool.workspace)
        return self.below.backward_logits(dz, input_grad, db)

    def run_unfused(self, x, dy, training=False, input_grad=True):
        """The twin: (y, ∂L/∂x) by the two layers' own forward and backward."""
        y = self.pool.forward(self.below.forward(x, training=training), training=training)
        return y, self.below.backward(self.pool.backward(dy), input_grad)
