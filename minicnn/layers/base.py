"""The protocol every layer keeps, and the input checks they share.

::

    layer.build(input_shape)            # (None, h, w, c): creates params lazily
    y  = layer.forward(x, training=False)
    dx = layer.backward(dy)             # returns ∂L/∂x, never mutates dy; sets layer.grads
    layer.params, layer.grads           # dicts keyed 'kernel', 'bias'
    layer.get_weights(), layer.set_weights([...])   # Keras order and shapes

A layer with an ``activation`` computes ``a = activation(z)``, ``z = call(x)``; a weighted
layer's ``z`` is its matrix product plus its bias.  When the activation is linear or a
ReLU, the weighted layer's kernels apply it too, as they write their output
(``call(x, training, relu)``, the fused epilogue, ``kernels/epilogue.py``), and the
activation only keeps the result (``kept``).  Backward runs the activation's backward
(the ReLU's also sums ``∂L/∂bias`` in the same pass), then ``call_backward`` (which sums
``∂L/∂bias`` when that has not: ``bias_grad=True``).  ``backward_logits`` starts from
``∂L/∂z`` instead — the model uses it when the loss is fused with a final softmax /
sigmoid, and below a max-pool that ran this layer's ReLU backward itself
(``backward_through_relu_of``).  Each forward overwrites the one cache slot that
backward reads; each backward *overwrites* ``grads`` (never accumulates).

Buffers: a layer's large outputs and input gradients live in its ``workspace`` and are
reused by the next call once nothing holds the previous ones (``kernels/workspace.py``).  A
forward starts with ``release()`` — dropping the last forward's cache and activation
arrays — and ``Model.forward`` releases every layer before a pass, so that in a training
loop the previous step's buffers are free again when the layers ask for them.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod

import numpy as np

from .. import activations, backend
from ..kernels.workspace import Workspace


def snake_case(name: str) -> str:
    """Keras's rule: 'Conv2D' -> 'conv2d', 'MaxPooling2D' -> 'max_pooling2d', 'ReLU' -> 're_lu'."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class Layer(ABC):
    """Base class: subclasses implement ``call``, ``call_backward`` and, if they have
    weights, ``build_params``; and ``output_shape_of`` for shapes."""

    has_activation = False
    input_rank: int | None = None     # expected ndim of the input, None for any >= 2
    cache = None                      # what call keeps for call_backward

    def __init__(self, name=None, activation=None, input_shape=None, dtype=None, trainable=True):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string, received {name!r}")
        self.name = name
        self.activation = activations.get(activation, self._who())
        self.params: dict = {}
        self.grads: dict = {}
        self.built = False
        self.input_shape = None
        self.batch_input_shape = None if input_shape is None else (None, *tuple(input_shape))
        self.dtype = dtype
        self.trainable = trainable
        self._out_shape = None
        self.workspace = self.activation.workspace = Workspace()

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

    # -- forward / backward ---------------------------------------------------
    def release(self) -> None:
        """Let go of the arrays the last forward kept for backward (its cache and its
        activation's), so that their buffers may be reused by the next forward."""
        self.cache = None
        self.activation.release()

    def forward(self, x, training=False):
        x = self.begin_forward(x)
        if self.params and self.activation.epilogue:            # linear or ReLU: the layer's kernels apply it
            y = self.activation.kept(self.call(x, training, relu=self.activation.epilogue == "relu"))
        else:
            y = self.activation.forward(self.call(x, training))
        self._last_out_shape = y.shape
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
        """∂L/∂x from ∂L/∂y (the layer's output, after its activation).  With
        ``input_grad=False`` only the parameter gradients are computed (returns None)."""
        dy = self._check_grad(dy)
        if "bias" in self.params:
            dz, db = self.activation.backward_with_bias_grad(dy)
        else:
            dz, db = self.activation.backward(dy), None
        return self._backward_through_call(dz, db, input_grad)

    def backward_logits(self, dz, input_grad=True, db=None):
        """∂L/∂x from ∂L/∂z, the gradient w.r.t. the pre-activation output (``db``: ∂L/∂bias
        when the caller summed it already)."""
        return self._backward_through_call(self._check_grad(dz), db, input_grad)

    def runs_relu_backward_of(self, below) -> bool:
        """True when this layer's backward can also run the ReLU backward of ``below``, the
        layer whose output it takes (``backward_through_relu_of``): only a max-pool can."""
        return False

    def fuses_forward_of(self, below, x) -> bool:
        """True when this layer can run its forward and that of ``below`` (the layer whose
        output it takes, about to take ``x``) as one (``forward_through_relu_of``): only a
        max-pool can."""
        return False

    def _backward_through_call(self, dz, db, input_grad):
        if "bias" not in self.params:
            return self.call_backward(dz, input_grad)
        if db is None:                          # not summed yet: the layer's kernels sum it (in their pass over dz)
            return self.call_backward(dz, input_grad, bias_grad=True)
        dx = self.call_backward(dz, input_grad)
        self.grads["bias"] = db
        return dx

    def _check_grad(self, dy):
        expected = getattr(self, "_last_out_shape", None)
        if expected is None:
            raise self.error("backward called before forward")
        if tuple(dy.shape) != tuple(expected):
            raise self.error(f"upstream gradient must have the output's shape {tuple(expected)}, "
                             f"received {tuple(dy.shape)}")
        return dy

    @abstractmethod
    def call(self, x, training):
        """The layer's forward before its activation: z from x (keeps what backward needs).
        A weighted layer's takes ``relu=False`` as well: z = x·W + b, through the ReLU when
        ``relu`` (see the module docstring)."""

    @abstractmethod
    def call_backward(self, dz, input_grad=True):
        """∂L/∂x from ∂L/∂z (None when not ``input_grad``); sets ``self.grads``.  A weighted
        layer's takes ``bias_grad=False`` as well: ∂L/∂bias is among them only when
        ``bias_grad`` (else ``backward`` adds it)."""

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

    def count_params(self) -> int:
        if not self.built:
            raise self.error("count_params needs a built layer (call build or forward first)")
        return int(sum(int(np.prod(v.shape)) for v in self.params.values()))

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"
