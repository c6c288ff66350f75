"""The plan: what a model runs, in which order, fused how, and when each array is free.

Built once per (model, tensors asked for) from the graph's nodes (``graph.py``):

* ``steps``    the nodes needed for the targets, in topological order (a node after every
               node it reads from), each a ``LayerStep`` or a fused group (``fusion.py``);
* ``groups``   a layer ending in a ReLU read only by a max-pool, where the ReLU's output has
               that one consumer and is not a target (``set_kernels("reference")``: none);
* ``last_use`` for each tensor, the index of the last step that reads it: after that step the
               executor drops its reference, so the buffer can be reused
               (``kernels/workspace.py``) — the same arrays as in a hand-written two-loop model.
"""
from __future__ import annotations

from . import backend
from .fusion import ReluPoolGroup, forms_group


class LayerStep:
    """One node: its layer's own forward and backward.  A layer keeps one cache slot; when
    it has several nodes in the plan (a shared layer), each node's slot is saved after its
    forward and put back before its backward (``Layer.call_state``), and its weight
    gradient is the sum over its nodes: ∂L/∂W = Σ_calls (∂L/∂W)_call, kept in
    ``summed`` (one dict per plan, emptied when a backward sweep begins)."""

    def __init__(self, node, shared, summed):
        self.node, self.shared, self.state, self.summed = node, shared, None, summed
        self.inputs, self.outputs = node.inputs, node.outputs
        self.layers = [node.layer]

    def forward(self, xs, training):
        layer = self.node.layer
        ys = layer.forward(xs if self.node.as_list else xs[0], training=training)
        if self.shared:
            self.state = layer.call_state()
        return ys if isinstance(ys, list) else [ys]

    def backward(self, dys, input_grad, logits=False):
        layer, dy = self.node.layer, dys if len(dys) > 1 else dys[0]
        if self.shared:
            layer.restore_call_state(self.state)
        # by keyword: a nested model's backward takes other arguments in second place
        dx = layer.backward_logits(dy, input_grad=input_grad) if logits else \
            layer.backward(dy, input_grad=input_grad)
        if self.shared:
            earlier = self.summed.get(id(layer))
            if earlier is not None:
                layer.grads = {k: earlier[k] + g for k, g in layer.grads.items()}
            self.summed[id(layer)] = {k: g.copy() for k, g in layer.grads.items()}
        return dx if self.node.as_list else [dx]

    def describe(self) -> str:
        return self.node.layer.name


class GroupStep:
    """A fused group of two nodes, ``below`` then ``pool``."""

    def __init__(self, below_node, pool_node):
        self.group = ReluPoolGroup(below_node.layer, pool_node.layer)
        self.inputs, self.outputs = below_node.inputs, pool_node.outputs
        self.layers = [below_node.layer, pool_node.layer]

    def forward(self, xs, training):
        return [self.group.forward(xs[0], training)]

    def backward(self, dys, input_grad, logits=False):
        return [self.group.backward(dys[0], input_grad)]

    def describe(self) -> str:
        return " + ".join(layer.name for layer in self.layers) + " (fused)"


def nodes_for(targets, stop_at=()):
    """The nodes that compute ``targets``, each after the nodes it reads from (depth-first,
    inputs in order: a chain comes out in the order it was built).  Tensors in ``stop_at``
    (the model's inputs) are given, not computed."""
    order, seen = [], set()
    stack = [(t, False) for t in reversed(targets)]
    while stack:
        tensor, expanded = stack.pop()
        node = tensor.node
        if id(tensor) in {id(s) for s in stop_at} or node is None or id(node) in seen:
            continue
        if expanded:
            seen.add(id(node))
            order.append(node)
            continue
        stack.append((tensor, True))
        stack.extend((t, False) for t in reversed(node.inputs) if id(t.node) not in seen)
    return [n for n in order if not n.layer.is_input_layer]


class Plan:
    def __init__(self, inputs, targets, keep=()):
        self.inputs, self.targets = list(inputs), list(targets)
        nodes = nodes_for(self.targets, self.inputs)
        readers = {}
        for node in nodes:
            for t in node.inputs:
                readers.setdefault(id(t), []).append(node)
        visible = {id(t) for t in [*self.targets, *keep]}
        calls = {}
        for node in nodes:
            calls[id(node.layer)] = calls.get(id(node.layer), 0) + 1
        self.kernels = backend.get_kernels()
        fuse = self.kernels != "reference"
        self.steps, self.summed_grads, i = [], {}, 0
        while i < len(nodes):
            node, after = nodes[i], nodes[i + 1] if i + 1 < len(nodes) else None
            out = node.outputs[0]
            if (fuse and after is not None and len(node.outputs) == 1 and after.inputs == [out]
                    and readers.get(id(out)) == [after] and id(out) not in visible
                    and calls[id(node.layer)] == 1 and calls[id(after.layer)] == 1
                    and forms_group(node.layer, after.layer)):
                self.steps.append(GroupStep(node, after))
                i += 2
            else:
                self.steps.append(LayerStep(node, calls[id(node.layer)] > 1, self.summed_grads))
                i += 1
        self.last_use = {}
        for index, step in enumerate(self.steps):
            for t in step.inputs:
                self.last_use[id(t)] = index

    @property
    def groups(self):
        return [step for step in self.steps if isinstance(step, GroupStep)]

    def describe(self) -> list[str]:
        return [step.describe() for step in self.steps]
