"""Model: a graph of layer calls, and the whole of backpropagation in two loops.

::

    forward:   for each step in topological order:  outputs = step.forward(inputs)
    backward:  for each step in reverse order:      ∂L/∂inputs += step.backward(∂L/∂outputs)

A functional model is the nodes between ``inputs`` and ``outputs`` (``graph.py``);
``Sequential`` is the case where they form one chain.  The steps come from the plan
(``plan.py``): the nodes in order, with fused groups where a group cannot change what
anybody sees.  No tape: each layer keeps what its own backward needs from the last
forward.  The same two loops serve training (``training.py``) and the visualizations,
which seed the backward pass with the gradient of any scalar of any layer's output
(``gradient``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import backend, device_copy, inline
from .graph import flatten, in_order, is_symbolic
from .inference import no_backward_follows
from .kernels.epilogue import sum_activation
from .layers import Layer
from .persistence import PersistenceMixin
from .layer_order import keras_layer_order
from .plan import Plan, hand_over, nodes_for, reclaim_buffers
from .summary import summary_table
from .training import TrainingMixin, serialized


class Gradient(NamedTuple):
    grad: object         # ∂S/∂(model input), or ∂S/∂(output of layer `wrt`)
    target: object       # the output (or logits) of the layer the score reads
    wrt_value: object    # the model input, or the output of layer `wrt`


class Model(TrainingMixin, PersistenceMixin, Layer):
    """``Model(inputs, outputs)``: the layer calls between symbolic ``inputs`` (from
    ``mc.Input``) and ``outputs``, each a tensor, a list or a dict of them (Keras)."""

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True):
        Layer.__init__(self, name=name or backend.unique_name(self.default_name()), trainable=trainable)
        self.stop_training = False
        self.optimizer = self.loss = None
        self.device = "cpu"
        self._plans, self._last_plan = {}, None
        if type(self) is Model:
            if inputs is None or outputs is None:
                raise ValueError(f"Model {self.name!r}: give inputs and outputs, e.g. "
                                 f"Model(inputs=x, outputs=y) with x = mc.Input(shape)")
            self._set_graph(inputs, outputs)

    @classmethod
    def default_name(cls) -> str:
        return "functional" if cls is Model else super().default_name()

    # -- the graph ------------------------------------------------------------------
    def _set_graph(self, inputs, outputs):
        inputs, outputs = (flatten(s) if hasattr(s, "__next__") else s for s in (inputs, outputs))
        for what, given in (("inputs", inputs), ("outputs", outputs)):
            wrong = [type(t).__name__ for t in flatten(given) if not is_symbolic(t)]
            if wrong:
                raise ValueError(f"Model {self.name!r}: {what} must be symbolic tensors (from mc.Input(...) and "
                                 f"layer calls on them), received {wrong}")
        self.inputs, self.outputs = flatten(inputs), flatten(outputs)
        self.output_names = list(outputs) if isinstance(outputs, dict) else \
            [t.node.layer.name for t in self.outputs]
        self.input_names = list(inputs) if isinstance(inputs, dict) else [t.name for t in self.inputs]
        nodes = nodes_for(self.outputs, self.inputs)
        given = {id(t) for t in self.inputs}
        for node in nodes:
            for t in node.inputs:
                if t.node.layer.is_input_layer and id(t) not in given:
                    raise ValueError(f"Model {self.name!r}: the outputs depend on input {t.name!r} {t.shape}, "
                                     f"which is not among the model's inputs {[i.name for i in self.inputs]} (for "
                                     f"a layer inside a nested model, take outer_model.tensor_of(layer))")
        self._layers = keras_layer_order(self.inputs, self.outputs)
        names = [layer.name for layer in self._layers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"Model {self.name!r}: duplicate layer names {twice}; every layer of a model "
                             f"needs its own name")
        self._plans, self._last_plan = {}, None
        self.input_shape = self.inputs[0].shape if len(self.inputs) == 1 else [t.shape for t in self.inputs]
        self._out_shape = self.outputs[0].shape if len(self.outputs) == 1 else [t.shape for t in self.outputs]
        self.built = True

    @property
    def layers(self) -> list:
        return list(self._layers)

    @property
    def input(self):
        return self.inputs[0] if len(self.inputs) == 1 else self.inputs

    @property
    def output(self):
        return self.outputs[0] if len(self.outputs) == 1 else self.outputs

    def get_layer(self, name=None, index=None) -> Layer:
        """The layer called ``name`` (searched in nested models too), or at ``index``."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        for layer in self.layers:
            if isinstance(layer, Model) and any(inner.name == name for inner in layer.flat_layers()):
                return layer.get_layer(name)
        raise ValueError(f"model {self.name!r} has no layer {name!r}; layers: {[layer.name for layer in self.layers]}")

    def layer_index(self, name) -> int:
        return self.layers.index(self.get_layer(name))

    def flat_layers(self) -> list:
        """Every layer inside, nested models' layers in place of the models."""
        out = []
        for layer in self.layers:
            out += layer.flat_layers() if isinstance(layer, Model) else [layer]
        return out

    def tensor_of(self, layer):
        """The output tensor of ``layer`` (a layer, its name, or a path "vgg16/block5_conv3")
        in this model's inlined view, where nested models' layers are calls of the outer
        graph (``inline.py``); a model without nested models is its own view."""
        return inline.tensor_of(self, layer)

    def plan(self, targets=None, keep=()) -> Plan:
        """The plan for computing ``targets`` (default: the outputs) with the tensors in
        ``keep`` left visible (not hidden inside a fused group), cached per kernel family."""
        targets = self.outputs if targets is None else targets
        key = (tuple(map(id, targets)), tuple(map(id, keep)), backend.get_kernels())
        if key not in self._plans:
            self._plans[key] = Plan(self.inputs, targets, keep)
        return self._plans[key]

    # -- the two loops ----------------------------------------------------------
    def run_forward(self, arrays, training, plan, record=None):
        """Each step in order: its outputs from its inputs; returns {id(tensor): array} for the
        targets, handed over to the caller (the last pass's buffers are given back first:
        ``plan.py``).  When no backward follows (``inference.py``), each step's layers let go
        of their caches once it has run, but for the targets' steps, and the targets are lent
        to the caller, not handed over: valid until the next pass, which writes into them
        (the caller copies what it keeps).  ``record``: a list that receives (step, outputs)
        for each step."""
        layers, inference = self.flat_layers(), no_backward_follows()
        reclaim_buffers(layers)
        self.workspace.reclaim()                        # (the gradient sums of the last backward)
        values = {id(t): a for t, a in zip(self.inputs, arrays)}
        for step, done_with, makes_target in zip(plan.steps, plan.done_with, plan.makes_target):
            outputs = step.forward([values[id(t)] for t in step.inputs], training)
            values.update(zip(map(id, step.outputs), outputs))
            if inference and not makes_target:
                for layer in step.layers:               # (a target's step keeps what a loss reads: its logits)
                    layer.release()
            if record is not None:
                record.append((step, outputs))
            for key in done_with:
                values.pop(key, None)
        if not inference:
            hand_over(layers, [values[id(t)] for t in plan.targets])
        self._last_plan = plan
        return values

    def run_backward(self, seeds, stop=None, input_grad=True, logits=(), record=None):
        """Backprop through the graph of the last forward:

            ∂L/∂x = Σ over the steps c that read x of  c.backward(∂L/∂(outputs of c))

        the chain rule through each step, and at a fan-out the gradients add up (a residual
        block's skip connection receives the branch's gradient plus its own).  ``seeds``:
        {id(tensor): ∂L/∂tensor}; ``stop``: a tensor at which to stop (default: the inputs);
        ``logits``: ids of tensors whose seed is ∂L/∂(pre-activation).  Returns {id(tensor):
        gradient} for ``stop`` or the inputs, handed over to the caller (``record``: a list
        that receives (step, output gradients, input gradients) for each step run)."""
        plan, stop_ids = self._last_plan, {id(stop)} if stop is not None else {id(t) for t in self.inputs}
        if plan is None:
            raise ValueError(f"model {self.name!r}: backward called before forward")
        hiding = plan.group_hiding(stop) if stop is not None else None
        if hiding is not None:
            raise ValueError(f"model {self.name!r}: no gradient at {stop.name!r}: the last forward never formed it, "
                             f"it ran inside the fused group {hiding.describe()!r}; run that forward under "
                             f"mc.use_kernels('reference') (no fused groups) to backprop to it")
        grads, below, summed = dict(seeds), plan.steps_after(stop), set()
        plan.summed_grads.clear()
        for step in (s for s in reversed(plan.steps) if s in below):
            dys = [grads.pop(id(t), None) for t in step.outputs]
            if all(dy is None for dy in dys):
                continue                                     # L does not depend on this step
            needed = input_grad or any(id(t) not in stop_ids for t in step.inputs)
            dxs = step.backward(dys, needed, logits=any(id(t) in logits for t in step.outputs))
            if record is not None:
                record.append((step, dys, dxs if needed else None))
            for t, dx in zip(step.inputs, dxs if needed else ()):
                self._add_gradient(grads, summed, t, dx)
        hand_over([*self.flat_layers(), self], [grads[key] for key in stop_ids if key in grads])
        return {key: grads[key] for key in stop_ids if key in grads}

    def _add_gradient(self, grads, summed, t, dx):
        """grads[id(t)] += dx, at a fan-out.  The sum goes into a buffer of the model's own
        workspace (``summed``: the ids whose buffer it is), never into ``dx`` or the gradient
        already there: a step may hand one array to several inputs (Add sends dy to each)."""
        key = id(t)
        if key not in grads:
            grads[key] = dx
            return
        out = grads[key] if key in summed else self.workspace.reusable(f"gradient_sum_{key}", dx.shape, dx.dtype,
                                                                        like=dx)
        summed.add(key)
        grads[key] = sum_activation([grads[key], dx], out)

    # -- the loops as layers and visualizations call them ---------------------------
    def check_input(self, x):
        arrays = self._input_arrays(x)
        for t, a in zip(self.inputs, arrays):
            if not isinstance(a, np.ndarray) and not backend.is_gpu_array(a):
                raise ValueError(f"model {self.name!r}: expected an array for input {t.name!r}, "
                                 f"received {type(a).__name__}")
            if a.dtype.kind != "f":
                raise ValueError(f"model {self.name!r}: expected float input, received dtype {a.dtype}; "
                                 f"convert first, e.g. x.astype('float32') / 255")
            expected = t.shape[1:]
            if a.ndim != len(expected) + 1 or any(e is not None and e != s for e, s in zip(expected, a.shape[1:])):
                which = f" (input {t.name!r})" if len(self.inputs) > 1 else ""
                raise ValueError(f"model {self.name!r}: expected input shape {(None, *expected)}, "
                                 f"received {tuple(a.shape)}{which}")
        return arrays if len(arrays) > 1 else arrays[0]

    def _input_arrays(self, x) -> list:
        return in_order(x, self.input_names, f"model {self.name!r}", "input arrays")

    def forward(self, x, training=False, upto=None, record=None):
        """The outputs for ``x`` (one array, or a list for several outputs); with ``upto``
        (a layer name), that layer's output."""
        if not self.built:
            self.build((None, *x.shape[1:]))
        arrays = flatten(self.check_input(x)) if len(self.inputs) > 1 else [self.check_input(x)]
        targets = self.outputs if upto is None else [self.tensor_of(upto)]
        values = self.run_forward(arrays, training, self.plan(targets), record)
        outputs = [values[id(t)] for t in targets]
        self.output_shape_seen = outputs[0].shape if len(outputs) == 1 else [a.shape for a in outputs]
        return outputs[0] if len(outputs) == 1 else outputs

    def layer_outputs(self, x, training=False, upto=None):
        """Yield ``(layer, its output)`` in order, through layer ``upto`` (default: the last),
        every output visible (no fused group hides one); nested models' layers too."""
        if not self.built:
            self.build((None, *x.shape[1:]))
        arrays = flatten(self.check_input(x)) if len(self.inputs) > 1 else [self.check_input(x)]
        layers = inline.layers_in_order(self)
        layers = layers[:layers.index(inline.find_layer(self, upto)) + 1] if upto is not None else layers
        targets = [self.tensor_of(layer) for layer in layers]
        values = self.run_forward(arrays, training, self.plan(targets))
        for layer, t in zip(layers, targets):
            yield layer, values[id(t)]

    def backward(self, grad, from_logits=False, top=None, stop=None, input_grad=True, record=None):
        """∂L/∂(model input) — or ∂L/∂(output of layer ``stop``) — from ``grad`` =
        ∂L/∂(output of ``top``, default the model's output; a list for several outputs).
        With ``from_logits`` (one flag, or one per output), ``grad`` is ∂L/∂(pre-activation).  With
        ``input_grad=False`` no ∂L/∂(model input) is formed (a training step needs none)."""
        tops = self.outputs if top is None else [self.tensor_of(top)]
        seeds = dict(zip(map(id, tops), grad if len(tops) > 1 else [grad]))
        stop_tensor = None if stop is None else self.tensor_of(stop)
        flags = from_logits if isinstance(from_logits, (list, tuple)) else [from_logits] * len(tops)
        logits = {id(t) for t, fused in zip(tops, flags) if fused}
        grads = self.run_backward(seeds, stop_tensor, input_grad, logits, record)
        if not input_grad and stop is None:
            return None
        wanted = [stop_tensor] if stop is not None else self.inputs
        result = [grads.get(id(t)) for t in wanted]
        return result[0] if len(result) == 1 else result

    def backward_logits(self, dz, input_grad=True):     # (a model nested in another)
        return self.backward(dz, from_logits=True, input_grad=input_grad)

    @serialized
    def backward_from(self, grads_by_layer: dict):
        """∂S/∂(model input) for ``S = Σ_l S_l(output of layer l)``, given
        ``{layer name: ∂S_l/∂output}`` (the last forward must have computed those outputs,
        e.g. ``intermediate_outputs``): the terms enter the one reverse sweep where their
        layers' outputs are (style transfer uses this)."""
        seeds = {id(self.tensor_of(name)): g for name, g in grads_by_layer.items()}
        grads = self.run_backward(seeds)
        return grads.get(id(self.inputs[0]))

    @serialized
    def intermediate_outputs(self, x, names):
        """The activations of the named layers for input ``x`` (inference mode), in order."""
        targets = [self.tensor_of(n) for n in names]
        arrays = flatten(self.check_input(x)) if len(self.inputs) > 1 else [self.check_input(x)]
        values = self.run_forward(arrays, False, self.plan(targets))
        return [values[id(t)].copy() for t in targets]

    @serialized
    def gradient(self, x, score_grad, layer=None, wrt=None, logits=False):
        """Gradient of a scalar score ``S`` of a layer's output, in inference mode.

        ``score_grad(out)`` returns ∂S/∂out for the output ``out`` of ``layer`` (default
        the last), or of its pre-activation when ``logits=True`` (e.g. a class logit
        with the final softmax replaced by linear).  The gradient is taken w.r.t. the
        model input (``wrt=None``) or the output of layer ``wrt``.
        """
        top = inline.last_layer(self) if layer is None else inline.find_layer(self, layer)
        seen = dict(self.layer_outputs(x, upto=top))
        target = top.activation.logits if logits else seen[top]
        if target is None:
            raise ValueError(f"model {self.name!r}: layer {top.name!r} keeps no pre-activation ({top.activation.name} "
                             f"works in place); logits=True is for layers with a linear, softmax or sigmoid output")
        hand_over(self.flat_layers(), [target])                 # a pre-activation no target held
        grad = self.backward(score_grad(target), from_logits=logits, top=top, stop=wrt)
        return Gradient(grad, target, x if wrt is None else seen[inline.find_layer(self, wrt)])

    # -- a model is a layer -------------------------------------------------------
    def record_call(self, inputs):
        """Called on symbolic tensors: one node whose layer is this whole model."""
        from .graph import Node
        items = flatten(inputs)
        if len(items) != len(self.inputs):
            raise ValueError(f"model {self.name!r}: expected {len(self.inputs)} input tensors, received {len(items)}")
        for given, mine in zip(items, self.inputs):
            if any(a is not None and b is not None and a != b for a, b in zip(given.shape[1:], mine.shape[1:])) \
                    or len(given.shape) != len(mine.shape):
                raise ValueError(f"model {self.name!r}: input {mine.name!r} expects shape {mine.shape}, "
                                 f"received {given.shape}")
        shapes = [t.shape for t in self.outputs]
        node = Node(self, items, shapes, as_list=len(items) > 1)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def release(self) -> None:
        for layer in self.flat_layers():
            layer.release()

    def call(self, x, training):
        return self.forward(x, training)

    def call_backward(self, dz, input_grad=True):
        return self.backward(dz, input_grad=input_grad)

    @Layer.trainable.setter
    def trainable(self, value):
        """As Keras: a model's setting is given to every layer inside (nested ones too)."""
        self._trainable = bool(value)
        for layer in getattr(self, "_layers", []):
            layer.trainable = value

    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    def trainable_params(self):
        """(key, params dict, name) for every weight ``fit`` updates, in layer order."""
        if not self.trainable:
            return []
        return [p for layer in self.layers for p in layer.trainable_params()]

    @serialized
    def get_weights(self):
        return [w for layer in self.layers for w in layer.get_weights()]

    @serialized
    def set_weights(self, weights):
        """Keras order; every shape is checked before any layer changes."""
        weights, views = list(weights), self.weights
        if len(weights) != len(views):
            raise ValueError(f"model {self.name!r}: expected {len(views)} weight arrays, received {len(weights)}")
        for view, new in zip(views, weights):
            if tuple(np.shape(new)) != view.shape:
                raise ValueError(f"model {self.name!r}, layer {view.layer.name!r}: weight {view.key!r} must have "
                                 f"shape {view.shape}, received {tuple(np.shape(new))}")
        for view, new in zip(views, weights):
            view.assign(new)

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    @property
    def output_shape(self):
        return self._out_shape

    def summary(self, details=False, batch_size=32, print_fn=print) -> str:
        """Keras's table (with "Connected to" for graphs); ``details=True`` adds padding,
        receptive field, stride, im2col bytes and the plan's steps and fused groups."""
        text = summary_table(self, details=details, batch_size=batch_size)
        if print_fn is not None:
            print_fn(text)
        return text

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable}

    # -- devices ----------------------------------------------------------------
    def to(self, device):
        """Move parameters, gradients and optimizer state to ``'gpu'`` (CuPy) or ``'cpu'``.
        Asking for the GPU without CuPy or without a GPU raises a RuntimeError saying which."""
        if device not in ("cpu", "gpu"):
            raise ValueError(f"model {self.name!r}: device must be 'cpu' or 'gpu', received {device!r}")
        move = backend.require_gpu().asarray if device == "gpu" else backend.to_numpy
        for layer in self.flat_layers():
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
        if isinstance(array, (list, tuple)):
            return [self.to_device(a, rows) for a in array]
        if isinstance(array, dict):
            return {k: self.to_device(a, rows) for k, a in array.items()}
        if self.device == "gpu":
            backend.require_gpu()
            return device_copy.to_gpu(array, rows)
        array = backend.to_numpy(array)
        return array if rows is None else array[rows]
