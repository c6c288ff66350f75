"""The plan: what a model runs, in which order, fused how, and when each array is free.

Built once per (model, tensors asked for) from the graph's nodes (``graph.py``):

* ``steps``    the nodes needed for the targets, in topological order (a node after every
               node it reads from), each a ``LayerStep`` or a ``GroupStep``;
* ``groups``   the fused groups (``fusion.py``), none under ``set_kernels("reference")``:
               a Dense or plain Conv2D and its ReLU written in one pass (``EpilogueGroup``, inside
               its ``LayerStep``), and a layer ending in a ReLU read only by a max-pool,
               where the ReLU's output has that one consumer and is not a target
               (``ReluPoolGroup``, a ``GroupStep``), and a BatchNormalization read only
               by a ReLU, on the same terms (``NormReluGroup``), and an Add read only by a
               ReLU (``AddReluGroup``);
* ``done_with`` for each step, the tensors (but targets) it is the last to read: after
               that step the executor drops its references to them;
* ``makes_target`` for each step, whether it writes a target.

Buffer lifetimes: a tensor's buffer is free once its last reader has run, and the readers
of a pass's tensors include the backward sweep that may follow (each layer's cache holds
what its backward reads).  So the executor gives every buffer of a pass back when the next
pass begins and the layers drop their caches (``reclaim_buffers``), and hands the arrays it
returns to the caller over for good (``hand_over``): those are never written again — but
in a forward no backward follows, whose caller copies them (``inference.py``), where they
stay lent and are written again by the next pass.  In steady state a training step reuses
every buffer of the step before.
"""
from __future__ import annotations

from . import backend
from .kernels.workspace import owner
from .fusion import epilogue_group, pair_group


class LayerStep:
    """One node: its layer's own forward and backward.  A layer keeps one cache slot; when
    it has several nodes in the plan (a shared layer), each node's slot is saved after its
    forward and put back before its backward (``Layer.call_state``), and its weight
    gradient is the sum over its nodes: ∂L/∂W = Σ_calls (∂L/∂W)_call, kept in
    ``summed`` (one dict per plan, emptied when a backward sweep begins).  ``group``: an
    ``EpilogueGroup`` that runs the layer and its ReLU in one pass, or None."""

    inner = None                                    # (a layer forms every tensor it reads and writes)

    def __init__(self, node, shared, summed, group=None):
        self.node, self.shared, self.state, self.summed = node, shared, None, summed
        self.inputs, self.outputs = node.inputs, node.outputs
        self.layers = [node.layer]
        self.group = group
        self.runs = group or node.layer        # what forward and backward are called on

    def forward(self, xs, training):
        layer = self.node.layer
        ys = self.runs.forward(xs if self.node.as_list else xs[0], training=training)
        if self.shared:
            self.state = layer.call_state()
        return ys if isinstance(ys, list) else [ys]

    def backward(self, dys, input_grad, logits=False):
        layer, dy = self.node.layer, dys if len(dys) > 1 else dys[0]
        if self.shared:
            layer.restore_call_state(self.state)
        # by keyword: a nested model's backward takes other arguments in second place
        dx = self.runs.backward_logits(dy, input_grad=input_grad) if logits else \
            self.runs.backward(dy, input_grad=input_grad)
        if self.shared:
            earlier = self.summed.get(id(layer))
            if earlier is not None:
                layer.grads = {k: earlier[k] + g for k, g in layer.grads.items()}
            self.summed[id(layer)] = {k: g.copy() for k, g in layer.grads.items()}
        return dx if self.node.as_list else [dx]

    def describe(self) -> str:
        return self.group.name if self.group else self.node.layer.name


class GroupStep:
    """A fused group of two nodes, ``below`` then ``after`` (``fusion.pair_group``)."""

    def __init__(self, below_node, after_node, group):
        self.group, self.as_list = group, below_node.as_list
        self.inputs, self.outputs = below_node.inputs, after_node.outputs
        self.inner = below_node.outputs[0]          # the tensor the group never forms
        self.layers = [below_node.layer, after_node.layer]

    def forward(self, xs, training):
        return [self.group.forward(xs if self.as_list else xs[0], training)]

    def backward(self, dys, input_grad, logits=False):
        dx = self.group.backward(dys[0], input_grad)
        return dx if self.as_list else [dx]

    def describe(self) -> str:
        return self.group.name


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
            pair = None
            if (fuse and after is not None and len(node.outputs) == 1 and after.inputs == [out]
                    and readers.get(id(out)) == [after] and id(out) not in visible
                    and calls[id(node.layer)] == 1 and calls[id(after.layer)] == 1):
                pair = pair_group(node.layer, after.layer)
            if pair is not None:
                self.steps.append(GroupStep(node, after, pair))
                i += 2
            else:
                group = epilogue_group(node.layer) if fuse else None
                self.steps.append(LayerStep(node, calls[id(node.layer)] > 1, self.summed_grads, group))
                i += 1
        last_use, targets = {}, {id(t) for t in self.targets}
        for index, step in enumerate(self.steps):
            for t in step.inputs:
                last_use[id(t)] = index
        self.done_with = [[id(t) for t in step.inputs if last_use[id(t)] == i and id(t) not in targets]
                          for i, step in enumerate(self.steps)]
        self.makes_target = [any(id(t) in targets for t in step.outputs) for step in self.steps]

    def steps_after(self, stop):
        """The steps that depend on tensor ``stop`` (every step, without one)."""
        if stop is None:
            return set(self.steps)
        reached, steps = {id(stop)}, set()
        for step in self.steps:
            if any(id(t) in reached for t in step.inputs):
                steps.add(step)
                reached.update(map(id, step.outputs))
        return steps

    def group_hiding(self, tensor):
        """The fused group inside which ``tensor`` is never formed, or None."""
        return next((step for step in self.steps if step.inner is tensor), None)

    @property
    def groups(self):
        return [step for step in self.steps if step.group is not None]

    def describe(self) -> list[str]:
        return [step.describe() for step in self.steps]


def reclaim_buffers(layers):
    """A pass begins: the layers drop what their last forward kept for backward, and every
    buffer they lent out during the last pass is theirs again (``kernels/workspace.py``)."""
    for layer in layers:
        layer.release()
        for workspace in layer.workspaces():
            workspace.reclaim()


def hand_over(layers, arrays):
    """The caller keeps ``arrays``: the layers' workspaces let go of the buffers under them."""
    owners = {id(owner(a)) for a in arrays if a is not None}
    for layer in layers:
        for workspace in layer.workspaces():
            workspace.hand_over(owners)
