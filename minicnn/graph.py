"""How a model records its layer calls: symbolic tensors and nodes.

Calling a layer on a ``SymbolicTensor`` (what ``Input`` returns) computes nothing: it
builds the layer from the input shapes and records a ``Node`` — *this layer, called on
these tensors, made these tensors* — and returns the new symbolic tensors::

    x = mc.Input((28, 28, 1))            # SymbolicTensor, shape (None, 28, 28, 1)
    h = mc.layers.Conv2D(8, 3)(x)        # Node(conv2d, inputs=[x], outputs=[h])
    y = mc.layers.Dense(10)(mc.layers.Flatten()(h))
    model = mc.Model(x, y)               # the nodes between x and y, in order

A model is the set of nodes between its inputs and outputs; ``plan.py`` orders them and
``model.py`` runs them.  A layer called twice has two nodes and one set of weights.
"""
from __future__ import annotations


class SymbolicTensor:
    """A placeholder for an array: its shape (batch axis ``None``), dtype, and the node
    that makes it (``node``, output number ``index``).  Keras calls it a KerasTensor."""

    def __init__(self, shape, dtype, node=None, index=0, name=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def _keras_history(self):
        """(layer, node index in ``layer.inbound_nodes``, output index): Keras's triple."""
        return self.node.layer, self.node.layer.inbound_nodes.index(self.node), self.index

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, *args, **kwargs):
        raise ValueError(f"symbolic tensor {self.name!r} {self.shape} has no value: it stands for the "
                         f"output of layer calls in a model being built; build a Model and call "
                         f"predict (or call the layers on arrays) to compute values")


class Node:
    """One call of ``layer``: it read ``inputs`` and made ``outputs`` (lists of tensors).
    ``as_list``: whether the layer was called with a list (a merge layer's inputs) or a
    single tensor — the executor hands it its arrays the same way.  ``register``: whether
    the layer lists the call in ``inbound_nodes`` (a call the user made); a replayed call
    (``inline.py``) is not listed, so ``layer.output`` keeps meaning the first user call."""

    def __init__(self, layer, inputs, output_shapes, as_list, register=True):
        self.layer = layer
        self.inputs = list(inputs)
        self.as_list = as_list
        self.outputs = [SymbolicTensor(shape, layer.dtype, self, i, name=layer.name if len(output_shapes) == 1
                                       else f"{layer.name}_{i}") for i, shape in enumerate(output_shapes)]
        if register:
            layer.inbound_nodes.append(self)

    def __repr__(self):
        return f"<Node {self.layer.name}: {[t.name for t in self.inputs]} -> {[t.name for t in self.outputs]}>"


def is_symbolic(x) -> bool:
    return isinstance(x, SymbolicTensor)


def flatten(structure) -> list:
    """The tensors or arrays of a tensor, a list/tuple of them, or a dict of them (in the
    dict's order)."""
    if isinstance(structure, dict):
        return list(structure.values())
    if isinstance(structure, (list, tuple)) or hasattr(structure, "__next__"):     # a generator too
        return list(structure)
    return [structure]


def in_order(data, names, what, expected):
    """``data`` — one array, a list in order, or a dict keyed by name — as the list in the
    order of ``names`` (a model's inputs, or its outputs' labels); ``what`` and ``expected``
    word the error ("model 'm'", "input arrays")."""
    if isinstance(data, dict):
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"{what}: no {expected} for {missing}; received keys {list(data)}")
        return [data[n] for n in names]
    items = flatten(data) if len(names) > 1 else [data]
    if len(items) != len(names):
        raise ValueError(f"{what}: expected {expected} for {len(names)} {names}, received {len(items)}")
    return items
