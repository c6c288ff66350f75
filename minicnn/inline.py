"""The inlined view of a model: every nested model's layer calls replayed in the outer graph.

A model used as a layer is one node of the outer graph (``graph.py``); the tensors inside
it belong to the nested model's own graph, which starts at its own ``Input``.  So the
outer model has no tensor for ``block5_conv3`` when a ``VGG16`` base is its first layer.
The inlined view replays the nodes of every nested model (recursively) on the tensors the
outer graph feeds it::

    the model:   x ─ vgg16 ─ flatten ─ dense                     (vgg16 is one node)
    inlined:     x ─ block1_conv1 ─ … ─ block5_pool ─ flatten ─ dense

The replayed nodes call the same layer objects (the same weights: nothing is copied).  A
node whose inputs are unchanged is the model's own node, so a model without nested
models is its own view.  Replayed nodes are not registered with their layers
(``Node(..., register=False)``): ``layer.output`` keeps meaning the layer's first call.
The view starts at the model's own input tensors, so the model's executor runs it with
the same arrays: ``Model.tensor_of`` answers with view tensors, and every method that
takes a layer (``forward(upto=)``, ``layer_outputs``, ``intermediate_outputs``,
``gradient``, ``backward(top=, stop=)``, ``backward_from``) runs the view.  Training runs
the model's own graph, a nested model as one step; both compute the same numbers.

Naming a layer (``find_layer``), in this order: a layer object (it must be inside the
model); the name of one of ``model.layers`` (Keras's ``get_layer``); a path through nested
models, ``"vgg16/block5_conv3"``; a name found inside nested models, if exactly one layer
has it — several layers of that name are a ValueError listing their paths.  A layer called
more than once answers with its first call (Keras's ``layer.output``).
"""
from __future__ import annotations

from .graph import Node
from .plan import nodes_for


def is_model(layer) -> bool:
    from .model import Model
    return isinstance(layer, Model)


def signature(model) -> tuple:
    """The tensors that fix the view: the model's inputs and outputs, and its nested
    models' (recursively).  A nested ``Sequential.add`` changes them."""
    tensors = (*model.inputs, *model.outputs)
    for node in nodes_for(model.outputs, model.inputs):
        if is_model(node.layer):
            tensors += signature(node.layer)
    return tensors


class InlinedGraph:
    """The view of ``model``: ``outputs``, its tensors for the model's outputs, and
    ``output_of``, id(layer) → the view tensor of the layer's first call."""

    def __init__(self, model):
        self.signature = signature(model)
        self.output_of = {id(t.node.layer): t for t in model.inputs}
        self.outputs = self._replay(model, {id(t): t for t in model.inputs})
        self.functional = None              # the view as a Model, made by functional_view

    def _replay(self, model, tensors):
        """Replay ``model``'s nodes in order.  ``tensors``: id(tensor of ``model``'s graph) →
        its view tensor, given for the inputs, filled for every node; returns the view
        tensors of the outputs."""
        for node in nodes_for(model.outputs, model.inputs):
            inputs = [tensors[id(t)] for t in node.inputs]
            if is_model(node.layer):
                inner = node.layer
                for t, fed in zip(inner.inputs, inputs):
                    self.output_of.setdefault(id(t.node.layer), fed)
                outputs = self._replay(inner, {id(t): fed for t, fed in zip(inner.inputs, inputs)})
            elif all(fed is t for fed, t in zip(inputs, node.inputs)):
                outputs = node.outputs                       # no nested model upstream: the model's own call
            else:
                outputs = Node(node.layer, inputs, [t.shape for t in node.outputs], node.as_list,
                               register=False).outputs
            tensors.update(zip(map(id, node.outputs), outputs))
            self.output_of.setdefault(id(node.layer), outputs[0])
        return [tensors[id(t)] for t in model.outputs]


def inlined(model) -> InlinedGraph:
    """The view of ``model``, kept on the model until its graph (or a nested one) changes."""
    cached = model.__dict__.get("_inlined_graph")
    now = signature(model)
    if cached is None or len(cached.signature) != len(now) or any(a is not b for a, b in zip(cached.signature, now)):
        cached = model._inlined_graph = InlinedGraph(model)
    return cached


def layer_paths(model, prefix=""):
    """(path, layer) for every layer inside ``model``: ``"vgg16/block5_conv3"`` for a layer
    of the nested model ``vgg16``."""
    for layer in model.layers:
        yield prefix + layer.name, layer
        if is_model(layer):
            yield from layer_paths(layer, f"{prefix}{layer.name}/")


def find_layer(model, ref):
    """The layer that ``ref`` (a layer object, a name or a path) means in ``model``; the
    rules are in the module docstring."""
    paths = list(layer_paths(model))
    if not isinstance(ref, str):
        if any(layer is ref for _, layer in paths):
            return ref
        raise ValueError(f"model {model.name!r} does not contain {getattr(ref, 'name', ref)!r} "
                         f"({type(ref).__name__}); its layers: {[p for p, _ in paths]}")
    own = [layer for layer in model.layers if layer.name == ref]
    if own:
        return own[0]
    by_path = [layer for path, layer in paths if path == ref]
    if by_path:
        return by_path[0]
    named = {}
    for path, layer in paths:
        if layer.name == ref:
            named.setdefault(id(layer), (layer, []))[1].append(path)
    if len(named) > 1:
        candidates = [p for _, ps in named.values() for p in ps]
        raise ValueError(f"model {model.name!r}: {len(named)} different layers are named {ref!r}, at {candidates}; "
                         f"name one by its path (e.g. {candidates[0]!r}) or pass the layer object")
    if named:
        return next(iter(named.values()))[0]
    raise ValueError(f"model {model.name!r} has no layer {ref!r}; its layers: {[p for p, _ in paths]}")


def tensor_of(model, ref):
    """The view tensor of layer ``ref``'s (first) call in ``model``."""
    layer = find_layer(model, ref)
    tensor = inlined(model).output_of.get(id(layer))
    if tensor is None:
        raise ValueError(f"model {model.name!r}: layer {layer.name!r} is not called between the model's inputs "
                         f"and outputs")
    return tensor


def layers_in_order(model) -> list:
    """Every layer of the view in the order the model lists them, a nested model's layers
    before the nested model itself (whose output is its last layer's); input layers left
    out.  What ``Model.layer_outputs`` walks."""
    out = []
    for layer in model.layers:
        if is_model(layer):
            out += layers_in_order(layer)
        if not layer.is_input_layer:
            out.append(layer)
    return out


def last_layer(model):
    """The last of ``model.layers``, a nested model's own last layer in its place."""
    layer = model.layers[-1]
    return last_layer(layer) if is_model(layer) else layer


def functional_view(model):
    """The view as a functional ``Model`` over the model's inputs (the model itself when
    nothing is nested), for the tools that walk a whole graph call by call (``gradcheck``,
    ``trace``, ``compare_with_keras``): their rows name layers, so the names must differ."""
    graph = inlined(model)
    if all(a is b for a, b in zip(graph.outputs, model.outputs)):
        return model
    if graph.functional is None:
        from .model import Model
        try:
            view = Model(model.inputs, graph.outputs, name=f"{model.name}_inlined")
        except ValueError as error:
            raise ValueError(f"model {model.name!r}: the layers of its nested models need distinct names to be "
                             f"checked call by call ({error})") from None
        view.input_names, view.output_names = model.input_names, model.output_names
        graph.functional = view
    return graph.functional
