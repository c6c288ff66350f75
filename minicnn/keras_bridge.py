"""Build the Keras twin of a minicnn model (same layers, arguments and weights).

Used by ``compare_with_keras``, the parity tests and the benchmarks.  TensorFlow/Keras
is imported only when this is called.
"""
from __future__ import annotations


MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")


def keras_layer(layer):
    """The Keras layer with ``layer``'s class, arguments, name and dtype (no weights yet)."""
    import keras
    L = keras.layers
    c, kind = layer.get_config(), type(layer).__name__
    common = {"name": layer.name, "dtype": layer.dtype or "float32"}
    if kind == "Conv2D":
        return L.Conv2D(c["filters"], c["kernel_size"], c["strides"], c["padding"],
                        activation=c["activation"], use_bias=c["use_bias"], **common)
    if kind == "Dense":
        return L.Dense(c["units"], activation=c["activation"], use_bias=c["use_bias"], **common)
    if kind == "MaxPooling2D":
        return L.MaxPooling2D(c["pool_size"], c["strides"], c["padding"], **common)
    if kind == "Dropout":
        return L.Dropout(c["rate"], seed=c["seed"], **common)
    if kind == "Activation":
        return L.Activation(c["activation"], **common)
    if kind == "Concatenate":
        return L.Concatenate(axis=c["axis"], **common)
    if kind in ("GlobalAveragePooling2D", "Flatten", "ReLU", *MERGES):
        return getattr(L, kind)(**common)
    raise ValueError(f"to_keras: no Keras equivalent known for layer {layer.name!r} ({kind})")


def to_keras(model, copy_weights=True):
    """A Keras model with the same architecture (and weights) as ``model``: a
    ``keras.Sequential`` for a Sequential, else the graph replayed call by call on
    ``keras.Input`` tensors (nested models become nested Keras models)."""
    try:
        import keras
    except ImportError as exc:
        raise ImportError("to_keras needs TensorFlow/Keras: pip install tensorflow-cpu") from exc
    from .model import Model
    from .sequential import Sequential
    from .plan import nodes_for
    twins = {}

    def twin_of(layer):
        if id(layer) not in twins:
            twins[id(layer)] = to_keras(layer, copy_weights) if isinstance(layer, Model) else keras_layer(layer)
        return twins[id(layer)]

    if isinstance(model, Sequential):
        dtype = model.layers[0].dtype or "float32"
        twin = keras.Sequential([keras.Input(model.input_shape[1:], dtype=dtype),
                                 *(twin_of(layer) for layer in model.layers)], name=model.name)
    else:
        tensors = {id(t): keras.Input(t.shape[1:], name=t.name, dtype=t.dtype or "float32") for t in model.inputs}
        for node in nodes_for(model.outputs, model.inputs):
            args = [tensors[id(t)] for t in node.inputs]
            out = twin_of(node.layer)(args if node.as_list else args[0])
            tensors.update(zip(map(id, node.outputs), out if isinstance(out, list) else [out]))
        outputs = [tensors[id(t)] for t in model.outputs]
        twin = keras.Model([tensors[id(t)] for t in model.inputs] if len(model.inputs) > 1 else tensors[id(model.inputs[0])],
                           outputs if len(outputs) > 1 else outputs[0], name=model.name)
    if copy_weights:
        for layer in model.layers:
            if not isinstance(layer, Model) and layer.params:
                twin_of(layer).set_weights(layer.get_weights())
    return twin
