"""Build the Keras twin of a minicnn model (same layers, arguments and weights).

Used by ``compare_with_keras``, the parity tests and the benchmarks.  TensorFlow/Keras
is imported only when this is called.
"""
from __future__ import annotations


def to_keras(model, copy_weights=True):
    """A ``keras.Sequential`` with the same architecture (and weights) as ``model``."""
    try:
        import keras
    except ImportError as exc:
        raise ImportError("to_keras needs TensorFlow/Keras: pip install tensorflow-cpu") from exc
    L = keras.layers
    built = [L.Input(model.input_shape[1:], dtype=model.layers[0].dtype or "float32")]
    for layer in model.layers:
        c, kind = layer.get_config(), type(layer).__name__
        common = {"name": layer.name, "dtype": layer.dtype or "float32"}
        if kind == "Conv2D":
            built.append(L.Conv2D(c["filters"], c["kernel_size"], c["strides"], c["padding"],
                                  activation=c["activation"], use_bias=c["use_bias"], **common))
        elif kind == "Dense":
            built.append(L.Dense(c["units"], activation=c["activation"], use_bias=c["use_bias"], **common))
        elif kind == "MaxPooling2D":
            built.append(L.MaxPooling2D(c["pool_size"], c["strides"], c["padding"], **common))
        elif kind == "GlobalAveragePooling2D":
            built.append(L.GlobalAveragePooling2D(**common))
        elif kind == "Flatten":
            built.append(L.Flatten(**common))
        elif kind == "Dropout":
            built.append(L.Dropout(c["rate"], seed=c["seed"], **common))
        elif kind == "ReLU":
            built.append(L.ReLU(**common))
        elif kind == "Activation":
            built.append(L.Activation(c["activation"], **common))
        else:
            raise ValueError(f"to_keras: no Keras equivalent known for layer {layer.name!r} ({kind})")
    twin = keras.Sequential(built, name=model.name)
    if copy_weights:
        twin.set_weights(model.get_weights())
    return twin
