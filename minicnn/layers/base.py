"""The protocol every layer keeps, and the input checks they share.

::

    layer.build(input_shape)            # (None, h, w, c): creates params lazily
    y  = layer.forward(x, training=False)
    dx = layer.backward(dy)             # returns ∂L/∂x, never mutates dy; sets layer.grads
    layer.params, layer.grads           # dicts keyed 'kernel', 'bias'
    layer.get_weights(), layer.set_weights([...])   # Keras order and shapes

A layer with an ``activation`` computes ``y = activation(z)``, ``z = call(x)``, and
backward runs the chain rule the other way: ``∂L/∂z = activation.backward(∂L/∂y)``, then
``∂L/∂x = call_backward(∂L/∂z)``, which also sets every weight gradient (a weighted
layer's ∂L/∂b = Σ ∂L/∂z included).  ``backward_logits`` starts from ``∂L/∂z`` (the model
uses it where the loss is fused with a final softmax / sigmoid).  Each forward overwrites
the one cache slot that backward reads; each backward *overwrites* ``grads`` (never
accumulates).  A layer knows nothing about fusions: the plan (``plan.py``, ``fusion.py``)
may run a layer together with its activation or with the layer after it.

Called on a symbolic tensor (``mc.Input``), a layer builds itself and records a node
(``graph.py``) instead of computing: that is how functional models are made.

Buffers: a layer's large outputs and input gradients live in its ``workspace``, lent out
until the executor (``Model.run_forward``) gives them back, so a result is never overwritten
while someone may read it (``kernels/workspace.py``).  A forward starts with ``release()``,
dropping the last forward's cache and activation arrays.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod

import numpy as np

from .. import activations, backend
from ..graph import Node, flatten, is_symbolic
from ..kernels.workspace import Workspace


def with_bias_grad(grads: dict, db) -> dict:
    """A weighted layer's gradients, with ``'bias'`` when it has one (``db`` not None)."""
    return grads if db is None else {**grads, "bias": db}


def snake_case(name: str) -> str:
    """Keras's rule: 'Conv2D' -> 'conv2d', 'MaxPooling2D' -> 'max_pooling2d', 'ReLU' -> 're_lu'."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class Weight:
    """A view of one of a layer's weights, as Keras's ``layer.weights`` gives them
    (``.name``, ``.shape``, ``.numpy()``, ``.assign``); the array lives in ``layer.params``."""

    def __init__(self, layer, key):
        self.layer, self.key = layer, key

    @property
    def value(self):
        return self.layer.params[self.key]

    name = property(lambda self: self.key)
    path = property(lambda self: f"{self.layer.name}/{self.key}")
    shape = property(lambda self: tuple(self.value.shape))
    dtype = property(lambda self: self.value.dtype)
    trainable = property(lambda self: self.layer.trainable and self.key not in self.layer.non_trainable)

    def numpy(self):
        return backend.to_numpy(self.value).copy()

    def assign(self, new):
        self.layer.set_weight(self.key, new)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.numpy(), dtype=dtype)

    def __repr__(self):
        return f"<Weight path={self.path}, shape={self.shape}, dtype={self.dtype}>"


class Layer(ABC):
    """Base class: subclasses implement ``call``, ``call_backward`` and, if they have
    weights, ``build_params``; and ``output_shape_of`` for shapes."""

    input_rank: int | None = None     # expected ndim of the input, None for any >= 2
    cache = None                      # what call keeps for call_backward
    output_shape_seen = None          # the shape of the last forward's output (checks dy)
    non_trainable = frozenset()       # params the optimizer never updates (e.g. BN's moving statistics)
    is_input_layer = False

    def __init__(self, name=None, activation=None, input_shape=None, dtype=None, trainable=True):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string, received {name!r}")
        self.name = name or backend.unique_name(self.default_name())
        self.inbound_nodes = []           # one Node per call on symbolic tensors (graph.py)
        self.activation = activations.get(activation, self._who())
        self.params: dict = {}
        self.grads: dict = {}
        self.built = False
        self.input_shape = None
        self.batch_input_shape = None if input_shape is None else (None, *tuple(input_shape))
        self.dtype = dtype
        self._trainable = bool(trainable)
        self._out_shape = None
        self.workspace = Workspace()

    # -- naming and errors ---------------------------------------------------
    @classmethod
    def default_name(cls) -> str:
        return snake_case(cls.__name__)

    def _who(self) -> str:
        return f"{type(self).__name__} layer {self.name!r}" if getattr(self, "name", None) \
            else f"{type(self).__name__} layer"

    def error(self, message: str) -> ValueError:
        return ValueError(f"{self._who()}: {message}")

    # -- building -------------------------------------------------------------
    def build(self, input_shape) -> None:
        """Validate ``input_shape`` (batch axis first, may be None) and create params."""
        input_shape = tuple(input_shape)
        self._check_rank(len(input_shape), input_shape)
        if any(d is not None and (not isinstance(d, (int, np.integer)) or d <= 0) for d in input_shape[1:]):
            raise self.error(f"every dimension must be a positive int, received input shape {input_shape}")
        self.dtype = self.dtype or backend.floatx()
        self._out_shape = self.compute_output_shape(input_shape)
        self.build_params(input_shape)
        self.input_shape = input_shape
        self.built = True

    def build_params(self, input_shape) -> None:
        """Create ``self.params`` (layers with weights override this)."""

    def add_param(self, key, shape, initializer):
        from ..seeding import global_generator
        value = initializer(tuple(shape), global_generator())
        self.params[key] = np.asarray(value, dtype=self.dtype)     # created on the host; model.to moves

    def add_kernel_and_bias(self, kernel_shape):
        """The ``kernel`` (and, with ``use_bias``, the ``bias`` of its last axis's size)."""
        self.add_param("kernel", kernel_shape, self.kernel_initializer)
        if self.use_bias:
            self.add_param("bias", (kernel_shape[-1],), self.bias_initializer)

    def compute_output_shape(self, input_shape):
        return self.output_shape_of(tuple(input_shape))

    def output_shape_of(self, input_shape):
        return input_shape

    @property
    def output_shape(self):
        return self._out_shape

    # -- checks -------------------------------------------------------------
    def _check_rank(self, ndim, shape):
        if self.input_rank is not None and ndim != self.input_rank:
            raise self.error(f"expected input of rank {self.input_rank} "
                             f"(batch, ...), received shape {shape} of rank {ndim}")
        if ndim < 2:
            raise self.error(f"expected input of rank >= 2 (batch, ...), received shape {shape}")

    def check_input(self, x):
        """Reject non-float or wrongly shaped input with a message naming the layer."""
        xp = backend.get_array_module(x)
        if not isinstance(x, (np.ndarray,)) and xp is np:
            raise self.error(f"expected a NumPy (or CuPy) array, received {type(x).__name__}")
        if x.dtype.kind != "f":
            raise self.error(f"expected a float32 or float64 array, received dtype {x.dtype}; "
                             f"convert first, e.g. x.astype('float32') / 255")
        if self.params:
            weights_on_gpu = backend.is_gpu_array(next(iter(self.params.values())))
            if weights_on_gpu != (xp is not np):
                raise self.error(f"its weights are on the {'GPU' if weights_on_gpu else 'CPU'} but the input is a "
                                 f"{'NumPy (host)' if xp is np else 'CuPy (GPU)'} array; move the input, or the "
                                 f"model with model.to('{'gpu' if xp is not np else 'cpu'}')")
        self._check_rank(x.ndim, x.shape)
        if 0 in x.shape:
            raise self.error(f"received an empty array of shape {x.shape}")
        if self.built:
            self.check_built_shape(x.shape)
        return x

    def check_built_shape(self, shape):
        """After build, the non-batch dimensions must match (the default: all of them)."""
        expected = self.input_shape[1:]
        if any(e is not None and e != s for e, s in zip(expected, shape[1:])):
            raise self.error(f"expected input shape {(None, *expected)}, received {shape}")

    # -- calls: on symbolic tensors (a graph is recorded) or on arrays (computed) --------
    def __call__(self, inputs, training=None):
        """On symbolic tensors: build from their shapes and record a node (returns the
        output tensor); on arrays: run ``forward`` and return the output array."""
        items = flatten(inputs)
        symbolic = [is_symbolic(t) for t in items]
        if not any(symbolic):
            return self.forward(inputs, training=bool(training))
        if not all(symbolic):
            raise self.error("was called on a mix of symbolic tensors and arrays: call it on the "
                             "tensors of a model being built (mc.Input(...)), or on arrays only")
        return self.record_call(inputs)

    def record_call(self, inputs):
        """Build from the inputs' shapes (or check them, if built) and add a node."""
        shapes = [t.shape for t in flatten(inputs)]
        as_list = isinstance(inputs, (list, tuple))
        shape = shapes if as_list else shapes[0]
        if not self.built:
            self.build(shape)
        elif not as_list:
            self._check_rank(len(shape), shape)
            self.check_built_shape(shape)
        node = Node(self, flatten(inputs), [self.compute_output_shape(shape)], as_list)
        return node.outputs[0]

    @property
    def input(self):
        """The input tensor of the layer's first call (Keras's ``layer.input``)."""
        node = self._first_node("input")
        return node.inputs if node.as_list else node.inputs[0]

    @property
    def output(self):
        """The output tensor of the layer's first call (Keras's ``layer.output``)."""
        outputs = self._first_node("output").outputs
        return outputs[0] if len(outputs) == 1 else outputs

    def _first_node(self, what):
        if not self.inbound_nodes:
            raise self.error(f"has no {what} yet: it has never been called on a symbolic tensor "
                             f"(build a model with mc.Input(...) first)")
        return self.inbound_nodes[0]

    # -- forward / backward ---------------------------------------------------
    def release(self) -> None:
        """Let go of the arrays the last forward kept for backward (its cache and its
        activation's), so that their buffers may be reused by the next forward."""
        self.cache = None
        self.activation.release()

    def workspaces(self) -> list:
        """The workspaces this layer's ops take their buffers from (``kernels/workspace.py``)."""
        return [self.workspace]

    def call_state(self):
        """What backward reads from the last forward; a layer called at several nodes of a
        model has it saved per node and put back before that node's backward."""
        act = self.activation
        return self.cache, self.output_shape_seen, act.out, act.logits, act.mask

    def restore_call_state(self, state):
        act = self.activation
        self.cache, self.output_shape_seen, act.out, act.logits, act.mask = state

    def forward(self, x, training=False):
        """y = activation(call(x))."""
        x = self.begin_forward(x)
        y = self.activation.forward(self.call(x, training))
        self.output_shape_seen = y.shape
        return y

    def begin_forward(self, x):
        """x checked (and cast to the layer's dtype when it has weights), the last forward's
        arrays released, the layer built: what every forward starts with."""
        x = self.check_input(x)
        self.release()
        if not self.built:
            self.build((None, *x.shape[1:]))
            if backend.is_gpu_array(x):         # built by a GPU input: its weights start there too
                self.params = {k: backend.get_array_module(x).asarray(v) for k, v in self.params.items()}
        return x.astype(self.dtype, copy=False) if self.params else x

    def backward(self, dy, input_grad=True):
        """∂L/∂x from ∂L/∂y (the layer's output, after its activation): the activation's
        backward, then the call's.  With ``input_grad=False`` only the weight gradients
        are computed (returns None)."""
        return self.call_backward(self.activation.backward(self.check_grad(dy)), input_grad)

    def backward_logits(self, dz, input_grad=True):
        """∂L/∂x from ∂L/∂z, the gradient w.r.t. the pre-activation output."""
        return self.call_backward(self.check_grad(dz), input_grad)

    def check_grad(self, dy):
        """``dy`` must have the shape of the last forward's output."""
        expected = self.output_shape_seen
        if expected is None:
            raise self.error("backward called before forward (predict and evaluate keep nothing for a backward: "
                             "run forward, or a training step, first)")
        if tuple(dy.shape) != tuple(expected):
            raise self.error(f"upstream gradient must have the output's shape {tuple(expected)}, "
                             f"received {tuple(dy.shape)}")
        return dy

    @abstractmethod
    def call(self, x, training):
        """The layer's forward before its activation: z from x (keeps what backward needs)."""

    @abstractmethod
    def call_backward(self, dz, input_grad=True):
        """∂L/∂x from ∂L/∂z (None when not ``input_grad``); sets ``self.grads``, every
        weight's gradient."""

    # -- weights --------------------------------------------------------------
    def get_weights(self):
        return [backend.to_numpy(v).copy() for v in self.params.values()]

    def set_weights(self, weights):
        if len(weights) != len(self.params):
            raise self.error(f"expected {len(self.params)} weight arrays "
                             f"{[tuple(v.shape) for v in self.params.values()]}, received {len(weights)}")
        for (key, old), new in zip(self.params.items(), weights):
            new_shape = tuple(np.shape(new))
            if new_shape != tuple(old.shape):
                raise self.error(f"weight {key!r} must have shape {tuple(old.shape)}, received {new_shape}")
        for key, new in zip(list(self.params), weights):
            xp = backend.get_array_module(self.params[key])
            self.params[key] = xp.asarray(np.asarray(new), dtype=self.dtype)

    def set_weight(self, key, new):
        """Replace one weight (same shape)."""
        old = self.params[key]
        if tuple(np.shape(new)) != tuple(old.shape):
            raise self.error(f"weight {key!r} must have shape {tuple(old.shape)}, received {tuple(np.shape(new))}")
        self.params[key] = backend.get_array_module(old).asarray(np.asarray(new), dtype=self.dtype)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)

    @property
    def weights(self):
        return [Weight(self, key) for key in self.params]

    @property
    def trainable_weights(self):
        return [w for w in self.weights if w.trainable]

    @property
    def non_trainable_weights(self):
        return [w for w in self.weights if not w.trainable]

    def trainable_params(self):
        """(key, params dict, name) of each weight ``fit`` updates."""
        if not self.trainable:
            return []
        return [((self.name, k), self.params, k) for k in self.params if k not in self.non_trainable]

    def count_params(self) -> int:
        if not self.built:
            raise self.error("count_params needs a built layer (call build or forward first)")
        return int(sum(int(np.prod(v.shape)) for v in self.params.values()))

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"
