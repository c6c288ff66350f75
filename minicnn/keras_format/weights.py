"""Keras 3's ``model.weights.h5`` layout ↔ minicnn weights and optimizer state.

::

    /vars                          (attribute name = the model's name)
    /layers/<key>/vars/0, 1, ...   a layer's variables, Keras order (kernel, bias)
    /layers/<key>/vars             attribute name = the layer's real name
    /layers/<key>/layers/...       a nested model: the same, one level down
    /optimizer/vars/0, 1, ...      iterations, learning_rate, then the slots

``<key>`` is the snake-cased *class name* with a counter per class within one model
(``conv2d``, ``conv2d_1``, ``dense``, ... in ``model.layers`` order; a Sequential's
layers exclude its input layer, a functional model's include them).  Reading matches a
group by the real name in its ``name`` attribute when the names agree, else by key.

The optimizer's slots follow Keras 3's order for the model's trainable variables
(``model.trainable_weights``): Adam makes its (momentum, velocity) per variable in one
call, so they alternate; RMSprop makes all velocities, then all momentums; SGD only
momentums (when ``momentum > 0``).
"""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..layers.base import snake_case
from .config import keras_class_name

# minicnn slot names, in the groups Keras 3 creates them in (see the module docstring)
SLOT_GROUPS = {"adam": [("m", "v")], "rmsprop": [("velocity",), ("momentum",)], "sgd": [("momentum",)]}


def layer_keys(model) -> list:
    """[(key, layer)] for ``model.layers``: Keras's snake-case class name + per-class counter."""
    used, out = {}, []
    for layer in model.layers:
        key = snake_case(keras_class_name(layer))
        used[key] = used.get(key, -1) + 1
        out.append((key if used[key] == 0 else f"{key}_{used[key]}", layer))
    return out


def write_layers(group, model) -> None:
    group.create_group("vars").attrs["name"] = model.name
    layers = group.create_group("layers")
    for key, layer in layer_keys(model):
        sub = layers.create_group(key)
        if hasattr(layer, "layers") and hasattr(layer, "inputs"):
            write_layers(sub, layer)
            continue
        variables = sub.create_group("vars")
        variables.attrs["name"] = layer.name
        for i, value in enumerate(layer.params.values()):
            variables.create_dataset(str(i), data=to_numpy(value))


def _vars(group) -> list:
    v = group.get("vars")
    return [] if v is None else [np.asarray(v[str(i)]) for i in range(len(v))]


def read_layers(group, model, where) -> None:
    """Assign the weights under ``group/layers`` to ``model`` (all checked before any is set)."""
    assignments = []
    _collect(group, model, where, assignments)
    for layer, arrays in assignments:
        layer.set_weights(arrays)


def _collect(group, model, where, assignments):
    stored = group.get("layers", {})
    by_name = {stored[k]["vars"].attrs.get("name"): stored[k] for k in stored if "vars" in stored[k]}
    names = [layer.name for _, layer in layer_keys(model)]
    use_names = all(n in by_name for n in names)
    for key, layer in layer_keys(model):
        sub = by_name[layer.name] if use_names else stored.get(key)
        if sub is None:
            if layer.params:
                raise ValueError(f"{where}: no weights for layer {layer.name!r} (group layers/{key}); the file "
                                 f"holds {sorted(stored)}")
            continue
        if hasattr(layer, "layers") and hasattr(layer, "inputs"):
            _collect(sub, layer, where, assignments)
            continue
        arrays = _vars(sub)
        want = [tuple(v.shape) for v in layer.params.values()]
        if [a.shape for a in arrays] != want:
            raise ValueError(f"{where}: layer {layer.name!r} needs weights of shapes {want}, the file has "
                             f"{[a.shape for a in arrays]} in layers/{key}")
        assignments.append((layer, arrays))


def trainable_slots_order(model) -> list:
    """(layer name, param key) of each trainable weight, in Keras's variable order."""
    return [(w.layer.name, w.key) for w in model.trainable_weights]


def write_optimizer(group, model) -> None:
    opt = model.optimizer
    variables = group.create_group("vars")
    variables.attrs["name"] = opt.name
    dtype = model.trainable_weights[0].dtype if model.trainable_weights else np.float32
    values = [np.asarray(opt.iterations, dtype=np.int64), np.asarray(opt.learning_rate, dtype=np.float32)]
    order = trainable_slots_order(model)
    for slots in _slot_groups(opt):
        for key in order:
            state = opt.slots.get(key)
            for slot in slots:
                shape = model.get_layer(key[0]).params[key[1]].shape
                values.append(to_numpy(state[slot]) if state else np.zeros(shape, dtype=dtype))
    for i, value in enumerate(values):
        variables.create_dataset(str(i), data=value)


def _slot_groups(opt):
    return [g for g in SLOT_GROUPS[opt.name] if all(s in opt.slot_names for s in g)]


def read_optimizer(group, model, where) -> None:
    """Set the optimizer's step count and slots from ``group/vars`` (Keras 3 order)."""
    opt, stored = model.optimizer, _vars(group)
    order = trainable_slots_order(model)
    groups = _slot_groups(opt)
    expected = 2 + len(order) * sum(len(g) for g in groups)
    if len(stored) != expected:
        raise ValueError(f"{where}: the {opt.name} state holds {len(stored)} variables, the model's "
                         f"{len(order)} trainable weights need {expected}; the optimizer state is not loaded")
    opt.iterations = int(stored[0])
    values = iter(stored[2:])
    slots = {key: {} for key in order}
    for group_slots in groups:
        for key in order:
            for slot in group_slots:
                slots[key][slot] = np.array(next(values), dtype=model.get_layer(key[0]).params[key[1]].dtype)
    opt.slots = slots
