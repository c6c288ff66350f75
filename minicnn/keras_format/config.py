"""Keras 3's ``config.json`` ↔ minicnn models.

A Keras model config is ``{"class_name": "Sequential" | "Functional", "config": {...}}``.
A Sequential's ``layers`` are its layers in order (an ``InputLayer`` first); a
Functional's ``layers`` each carry ``inbound_nodes``: one entry per call, whose ``args``
hold ``__keras_tensor__`` placeholders naming the tensor they stand for by the triple
``keras_history = [layer name, node index, output index]``.  A model inside a model is
just an entry of ``layers`` with its own model config (recursively).

Legacy Keras 2 configs (in ``.h5`` files) differ only in details read here too:
``batch_input_shape`` instead of ``batch_shape``, ``Model`` for ``Functional``, and
``inbound_nodes`` as ``[[[name, node, index, kwargs], ...]]``.
"""
from __future__ import annotations

from .. import layers as L
from ..model import Model
from ..sequential import Sequential

# minicnn class name (= Keras's) -> the config keys both share
_WINDOW = ["kernel_size", "strides", "padding", "dilation_rate", "activation", "use_bias"]
_LAYERS = {
    "Conv2D": ["filters", *_WINDOW, "groups"],
    "Conv2DTranspose": ["filters", *_WINDOW, "output_padding"],
    "DepthwiseConv2D": [*_WINDOW, "depth_multiplier"],
    "SeparableConv2D": ["filters", *_WINDOW, "depth_multiplier"],
    "Dense": ["units", "activation", "use_bias"],
    "BatchNormalization": ["axis", "momentum", "epsilon", "center", "scale"],
    "MaxPooling2D": ["pool_size", "strides", "padding"],
    "AveragePooling2D": ["pool_size", "strides", "padding"],
    "GlobalAveragePooling2D": [],
    "GlobalMaxPooling2D": ["keepdims"],
    "ZeroPadding2D": ["padding"],
    "Cropping2D": ["cropping"],
    "UpSampling2D": ["size", "interpolation"],
    "Reshape": ["target_shape"],
    "Permute": ["dims"],
    "Flatten": [],
    "Dropout": ["rate", "seed"],
    "Activation": ["activation"],
    "ReLU": [],
    "LeakyReLU": ["negative_slope", "alpha"],       # alpha: Keras 2's name, read as negative_slope
    "ELU": ["alpha"],
    "PReLU": ["shared_axes"],
    "Softmax": ["axis"],
    **{merge: [] for merge in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")},
    "Concatenate": ["axis"],
}
# Keras arguments minicnn does not implement: accepted only at these (default) values, unless the
# layer's row above lists the argument.
_DEFAULTS_ONLY = {"dilation_rate": [[1, 1], 1], "groups": [1], "data_format": ["channels_last", None],
                  "kernel_regularizer": [None], "bias_regularizer": [None], "activity_regularizer": [None],
                  "kernel_constraint": [None], "bias_constraint": [None], "keepdims": [False],
                  "noise_shape": [None], "max_value": [None], "negative_slope": [0, 0.0], "threshold": [0, 0.0],
                  "lora_rank": [None], "quantization_config": [None]}


def keras_class_name(layer) -> str:
    if isinstance(layer, Sequential):
        return "Sequential"
    if isinstance(layer, Model):
        return "Functional"
    return type(layer).__name__


def _dtype(layer) -> str:
    return layer.dtype or "float32"


def layer_config(layer) -> dict:
    """One entry of a model config's ``layers`` (without ``inbound_nodes``)."""
    if isinstance(layer, Model):
        return model_config(layer)
    kind = type(layer).__name__
    if isinstance(layer, L.InputLayer):
        config = {"batch_shape": list(layer.batch_shape), "dtype": _dtype(layer), "sparse": False,
                  "ragged": False, "name": layer.name}
    elif kind in _LAYERS:
        mine = layer.get_config()
        config = {"name": layer.name, "trainable": layer.trainable, "dtype": _dtype(layer),
                  **{k: list(v) if isinstance(v, tuple) else v for k, v in mine.items() if k in _LAYERS[kind]}}
    else:
        raise ValueError(f"layer {layer.name!r} ({kind}) has no Keras config writer; Keras-format layers: "
                         f"{sorted(_LAYERS)}")
    entry = {"module": "keras.layers", "class_name": kind, "config": config, "registered_name": None}
    if layer.built and not isinstance(layer, L.InputLayer):
        entry["build_config"] = {"input_shape": list(layer.input_shape)}
    return entry


def _tensor(t) -> dict:
    layer, node_index, index = t._keras_history
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": t.dtype or "float32",
                       "keras_history": [layer.name, node_index, index]}}


def model_config(model) -> dict:
    """The Keras config of a Sequential or functional model (nested models inside)."""
    from ..plan import nodes_for
    if isinstance(model, Sequential):
        entries = [layer_config(model.inputs[0].node.layer)] + [layer_config(layer) for layer in model.layers]
        config = {"name": model.name, "trainable": model.trainable, "dtype": "float32", "layers": entries,
                  "build_input_shape": list(model.input_shape)}
        return {"module": "keras", "class_name": "Sequential", "config": config, "registered_name": None}
    mine = {id(n) for n in nodes_for(model.outputs, model.inputs)}
    entries = []
    for layer in model.layers:
        entry = layer_config(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [{"args": [[_tensor(t) for t in node.inputs] if node.as_list
                                            else _tensor(node.inputs[0])], "kwargs": {}}
                                  for node in layer.inbound_nodes if id(node) in mine]
        entries.append(entry)

    def triples(tensors):
        found = [[t.node.layer.name, t._keras_history[1], t.index] for t in tensors]
        return found[0] if len(found) == 1 else found

    config = {"name": model.name, "trainable": model.trainable, "layers": entries,
              "input_layers": triples(model.inputs), "output_layers": triples(model.outputs)}
    return {"module": "keras.src.models.functional", "class_name": "Functional", "config": config,
            "registered_name": "Functional"}


# -- reading --------------------------------------------------------------------------

def _name_of(value):
    """An activation/dtype given as a string or as a serialized object."""
    if isinstance(value, dict):
        return value.get("config", {}).get("name", value.get("class_name"))
    return value


def missing_layers(config) -> list:
    """'ClassName (name)' for every layer in a model config that minicnn cannot build."""
    out = []
    for entry in config["config"]["layers"]:
        kind, name = entry["class_name"], entry["config"].get("name", entry.get("name"))
        if kind in ("Sequential", "Functional", "Model"):
            out += missing_layers(entry)
        elif kind != "InputLayer" and kind not in _LAYERS:
            out.append(f"{kind} ({name})")
    return out


def check_buildable(config, where) -> None:
    missing = missing_layers(config)
    if missing:
        raise ValueError(f"{where}: minicnn has no layer for: {', '.join(missing)}; layers it can load: "
                         f"{sorted(_LAYERS)}")


def layer_from_config(entry, where):
    kind, config = entry["class_name"], dict(entry["config"])
    if kind in ("Sequential", "Functional", "Model"):
        return model_from_config(entry, where)
    if kind == "InputLayer":
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        return L.InputLayer(batch_shape=shape, dtype=_name_of(config.get("dtype")), name=config["name"])
    for key, allowed in _DEFAULTS_ONLY.items():
        if key in config and key not in _LAYERS[kind] and config[key] not in allowed:
            raise ValueError(f"{where}: layer {config['name']!r} ({kind}) uses {key}={config[key]!r}, which minicnn "
                             f"does not implement (only {allowed[0]!r})")
    args = {k: config[k] for k in _LAYERS[kind] if k in config}
    if "activation" in args:
        args["activation"] = _name_of(args["activation"])
    dtype = _name_of(config.get("dtype"))
    layer = getattr(L, kind)(name=config["name"], dtype=dtype if dtype in ("float32", "float64") else None, **args)
    layer.trainable = config.get("trainable", True)
    if "batch_input_shape" in config:                           # Keras 2: the first layer's input shape
        layer.batch_input_shape = tuple(config["batch_input_shape"])
    return layer


def model_from_config(config, where="config"):
    """A minicnn model from a Keras (3 or 2) model config."""
    check_buildable(config, where)
    kind, inner = config["class_name"], config["config"]
    if kind == "Sequential":
        entries = inner["layers"]
        layers = [layer_from_config(e, where) for e in entries]
        model = Sequential([layer.output if isinstance(layer, L.InputLayer) else layer for layer in layers],
                           name=inner.get("name"))
        if not model.built and inner.get("build_input_shape"):
            model.build(tuple(inner["build_input_shape"]))
    else:
        model = _functional(inner, where)
    if not inner.get("trainable", True):
        model.trainable = False
    return model


def _history_triples(args):
    """Keras 3 ``{"args": [...]}`` or Keras 2 ``[[name, node, index, kwargs], ...]`` ->
    ([(name, node, index)], called with a list)."""
    if isinstance(args, dict):
        first = args["args"][0]
        items = first if isinstance(first, list) else [first]
        return [tuple(t["config"]["keras_history"]) for t in items], isinstance(first, list)
    return [tuple(t[:3]) for t in args], len(args) > 1


def _functional(inner, where):
    tensors, pending = {}, []
    for entry in inner["layers"]:
        layer = layer_from_config(entry, where)
        name = entry.get("name", entry["config"].get("name"))
        if isinstance(layer, L.InputLayer):
            tensors[(name, 0, 0)] = layer.output
            continue
        pending += [(layer, name, i, node) for i, node in enumerate(entry["inbound_nodes"])]
    while pending:                              # a call waits until the tensors it reads exist
        waiting = []
        for layer, name, i, node in pending:
            keys, as_list = _history_triples(node)
            if not all(k in tensors for k in keys):
                waiting.append((layer, name, i, node))
                continue
            args = [tensors[k] for k in keys]
            out = layer(args if as_list else args[0])
            for j, t in enumerate(out if isinstance(out, list) else [out]):
                tensors[(name, i, j)] = t
        if len(waiting) == len(pending):
            raise ValueError(f"{where}: the layer calls of model {inner.get('name')!r} cannot be connected: "
                             f"{[(n, i) for _, n, i, _ in waiting]} read tensors no layer makes")
        pending = waiting

    def resolve(spec):
        specs = [spec] if spec and isinstance(spec[0], str) else spec
        return [tensors[tuple(s[:3])] for s in specs]

    inputs, outputs = resolve(inner["input_layers"]), resolve(inner["output_layers"])
    return Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                 name=inner.get("name"))
