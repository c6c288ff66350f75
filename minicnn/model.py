"""Sequential: a stack of layers, and the whole of backpropagation in two loops.

::

    forward:   a₀ = x,   a_l = layer_l.forward(a_{l−1})            l = 1 … L
    backward:  g_L = ∂L/∂a_L,   g_{l−1} = layer_l.backward(g_l)    l = L … 1

No tape and no graph: each layer keeps what its own backward needs from the last
forward.  One pair of layers is fused: a max-pool over a layer with a ReLU runs that
ReLU's backward too, on its own (smaller) output gradient (``kernels/pool.py``), and over a
Conv2D with a ReLU, on the Numba kernels, the forward of both in one kernel
(``kernels/conv_relu_pool.py``).  The same two loops serve training (``training.py``) and
the visualizations, which seed the backward pass with the gradient of any scalar of any
layer's output (``gradient``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import backend, device_copy
from .layers import Input, Layer
from .summary import summary_table
from .training import TrainingMixin


class Gradient(NamedTuple):
    grad: object         # ∂S/∂(model input), or ∂S/∂(output of layer `wrt`)
    target: object       # the output (or logits) of the layer the score reads
    wrt_value: object    # the model input, or the output of layer `wrt`


class Sequential(TrainingMixin):
    def __init__(self, layers=None, name=None):
        self.name = name or "sequential"
        self.layers: list[Layer] = []
        self.input_shape = None
        self.stop_training = False
        self.optimizer = self.loss = None
        self.device = "cpu"
        for layer in layers or []:
            self.add(layer)

    # -- construction ---------------------------------------------------------
    def add(self, layer) -> None:
        if isinstance(layer, Input):
            if self.layers or self.input_shape is not None:
                raise ValueError(f"model {self.name!r}: Input must come first, before any layer")
            self.input_shape = (None, *layer.shape)
            return
        if not isinstance(layer, Layer):
            raise ValueError(f"model {self.name!r}: expected a minicnn layer, received {type(layer).__name__}")
        if layer.name is None:
            layer.name = self._unique_name(layer.default_name())
        elif any(other.name == layer.name for other in self.layers):
            raise ValueError(f"model {self.name!r}: duplicate layer name {layer.name!r}")
        if not self.layers and self.input_shape is None and layer.batch_input_shape is not None:
            self.input_shape = layer.batch_input_shape
        self.layers.append(layer)
        if self.input_shape is not None:
            self.build(self.input_shape)

    def _unique_name(self, base: str) -> str:
        """Keras's numbering: conv2d, conv2d_1, conv2d_2, ..."""
        taken = {layer.name for layer in self.layers}
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        return name

    def build(self, input_shape) -> None:
        """Build every layer from the input shape ``(None, h, w, c)``."""
        shape = (None, *tuple(input_shape)[1:])
        self.input_shape = shape
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def output_shape(self):
        return self.layers[-1].output_shape

    def get_layer(self, name=None, index=None) -> Layer:
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"model {self.name!r} has no layer {name!r}; layers: {[layer.name for layer in self.layers]}")

    def layer_index(self, name) -> int:
        return self.layers.index(self.get_layer(name))

    # -- the two loops ----------------------------------------------------------
    def check_input(self, x):
        if not isinstance(x, np.ndarray) and not backend.is_gpu_array(x):
            raise ValueError(f"model {self.name!r}: expected an array input, received {type(x).__name__}")
        if x.dtype.kind != "f":
            raise ValueError(f"model {self.name!r}: expected float input, received dtype {x.dtype}; "
                             f"convert first, e.g. x.astype('float32') / 255")
        if self.input_shape is not None:
            expected = self.input_shape[1:]
            if x.ndim != len(expected) + 1 or any(e is not None and e != s for e, s in zip(expected, x.shape[1:])):
                raise ValueError(f"model {self.name!r}: expected input shape {(None, *expected)}, "
                                 f"received {tuple(x.shape)}")
        return x

    def forward(self, x, training=False, upto=None):
        """Run the layers in order (through layer ``upto``, a name, when given) and return
        the last output.  A max-pool over a Conv2D with a ReLU runs the forward of both in
        one kernel where it can (``MaxPooling2D.forward_through_relu_of``): only the pool's
        output is formed, not the conv's (``layer_outputs`` forms every one)."""
        x, layers = self._start_pass(x, upto)
        i = 0
        while i < len(layers):
            if i + 1 < len(layers) and layers[i + 1].fuses_forward_of(layers[i], x):
                x = layers[i + 1].forward_through_relu_of(layers[i], x)    # (neither layer differs in training)
                i += 2
            else:
                x = layers[i].forward(x, training=training)
                i += 1
        return x

    def layer_outputs(self, x, training=False, upto=None):
        """Yield ``(layer, its output)`` in order, through layer ``upto`` (default: the last)."""
        x, layers = self._start_pass(x, upto)
        for layer in layers:
            x = layer.forward(x, training=training)
            yield layer, x

    def _start_pass(self, x, upto):
        """(x checked, the layers through ``upto``).  A pass starts by releasing every
        layer's arrays from the previous one (``Layer.release``), so that their buffers
        can be reused in this one."""
        x = self.check_input(x)
        if not self.built:
            self.build((None, *x.shape[1:]))
        for layer in self.layers:
            layer.release()
        return x, self.layers[:self.layer_index(upto) + 1 if upto is not None else None]

    def backward(self, grad, from_logits=False, top=None, stop=None, input_grad=True):
        """Run the layers' backward in reverse, from layer ``top`` (default: the last)
        down to the model input, or down to the output of layer ``stop``.

        ``grad`` is ∂L/∂(output of ``top``); with ``from_logits`` it is ∂L/∂(its
        pre-activation), and ``top``'s activation backward is skipped.  With
        ``input_grad=False`` the first layer computes only its parameter gradients (a
        training step needs no ∂L/∂(model input)).
        """
        end = self.layer_index(top) if top is not None else len(self.layers) - 1
        begin = self.layer_index(stop) + 1 if stop is not None else 0
        i = end
        while i >= begin:
            layer = self.layers[i]
            if from_logits and i == end:
                grad = layer.backward_logits(grad, input_grad or i > 0)
            elif i > begin and layer.runs_relu_backward_of(self.layers[i - 1]):    # a max-pool over a ReLU
                i -= 1
                grad = layer.backward_through_relu_of(self.layers[i], grad, input_grad or i > 0)
            else:
                grad = layer.backward(grad, input_grad or i > 0)
            i -= 1
        return grad

    def backward_from(self, grads_by_layer: dict):
        """∂S/∂(model input) for ``S = Σ_l S_l(output of layer l)``, given
        ``{layer name: ∂S_l/∂output}``: one reverse sweep from the highest of those layers,
        adding each layer's term as the sweep passes its output (style transfer uses this)."""
        top = max(self.layer_index(name) for name in grads_by_layer)
        grad = None
        for i in range(top, -1, -1):
            layer = self.layers[i]
            if layer.name in grads_by_layer:
                term = grads_by_layer[layer.name]
                grad = term if grad is None else grad + term
            grad = layer.backward(grad)
        return grad

    # -- what the tutorials build a functional Model for --------------------------
    def intermediate_outputs(self, x, names):
        """The activations of the named layers for input ``x`` (inference mode), in order."""
        wanted = [self.layer_index(n) for n in names]
        passes = self.layer_outputs(x, upto=self.layers[max(wanted)].name)
        outputs = {i: a.copy() for i, (_, a) in enumerate(passes) if i in wanted}
        return [outputs[i] for i in wanted]

    def gradient(self, x, score_grad, layer=None, wrt=None, logits=False):
        """Gradient of a scalar score ``S`` of a layer's output, in inference mode.

        ``score_grad(out)`` returns ∂S/∂out for the output ``out`` of ``layer`` (default
        the last), or of its pre-activation when ``logits=True`` (e.g. a class logit
        with the final softmax replaced by linear).  The gradient is taken w.r.t. the
        model input (``wrt=None``) or the output of layer ``wrt``.
        """
        top = self.layers[-1].name if layer is None else layer
        seen = {}
        for layer, a in self.layer_outputs(x, upto=top):
            seen[layer.name] = a
        target = self.get_layer(top).activation.logits if logits else a
        if target is None:
            raise ValueError(f"model {self.name!r}: layer {top!r} keeps no pre-activation ({self.get_layer(top).activation.name} "
                             f"works in place); logits=True is for layers with a linear, softmax or sigmoid output")
        grad = self.backward(score_grad(target), from_logits=logits, top=top, stop=wrt)
        return Gradient(grad, target, x if wrt is None else seen[wrt])

    # -- devices ----------------------------------------------------------------
    def to(self, device):
        """Move parameters, gradients and optimizer state to ``'gpu'`` (CuPy) or ``'cpu'``.
        Asking for the GPU without CuPy or without a GPU raises a RuntimeError saying which."""
        if device not in ("cpu", "gpu"):
            raise ValueError(f"model {self.name!r}: device must be 'cpu' or 'gpu', received {device!r}")
        move = backend.require_gpu().asarray if device == "gpu" else backend.to_numpy
        for layer in self.layers:
            layer.params = {k: move(v) for k, v in layer.params.items()}
            layer.grads = {k: move(v) for k, v in layer.grads.items()}
            layer.workspace.clear()
        if self.optimizer is not None:
            self.optimizer.slots = {key: {s: move(v) for s, v in slots.items()}
                                    for key, slots in self.optimizer.slots.items()}
        self.device = device
        return self

    def to_device(self, array, rows=None):
        """``array`` (or ``array[rows]``) on this model's device: host batches go to the GPU
        through page-locked staging buffers, asynchronously (``device_copy.py``)."""
        if array is None:
            return None
        if self.device == "gpu":
            backend.require_gpu()
            return device_copy.to_gpu(array, rows)
        array = backend.to_numpy(array)
        return array if rows is None else array[rows]

    # -- parameters ----------------------------------------------------------
    def get_weights(self):
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Keras order; every shape is checked before any layer changes."""
        weights = list(weights)
        counts = [len(layer.params) for layer in self.layers]
        if len(weights) != sum(counts):
            raise ValueError(f"model {self.name!r}: expected {sum(counts)} weight arrays, received {len(weights)}")
        parts, start = [], 0
        for layer, count in zip(self.layers, counts):
            part, start = weights[start:start + count], start + count
            for (key, old), new in zip(layer.params.items(), part):
                if tuple(np.shape(new)) != tuple(old.shape):
                    raise ValueError(f"model {self.name!r}, layer {layer.name!r}: weight {key!r} must have "
                                     f"shape {tuple(old.shape)}, received {tuple(np.shape(new))}")
            parts.append(part)
        for layer, part in zip(self.layers, parts):
            layer.set_weights(part)

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def trainable_params(self):
        """(key, params dict, name) for every trainable parameter, in layer order."""
        return [((layer.name, k), layer.params, k) for layer in self.layers if layer.trainable for k in layer.params]

    def summary(self, details=False, batch_size=32, print_fn=print) -> str:
        """Keras's table; ``details=True`` adds padding, receptive field, stride, im2col bytes."""
        text = summary_table(self, details=details, batch_size=batch_size)
        if print_fn is not None:
            print_fn(text)
        return text
