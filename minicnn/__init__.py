"""minicnn — a from-scratch CNN engine whose every backward pass you can read.

    import minicnn as mc
    model = mc.Sequential([mc.layers.Input((28, 28, 1)),
                           mc.layers.Conv2D(32, 3, activation="relu"), ...])
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    model.fit(x, y, epochs=3)
"""
from . import activations, backend, callbacks, initializers, layers, losses, metrics, optimizers
from .backend import get_kernels, set_floatx, set_kernels, use_kernels
from .model import Sequential
from .saving import load_keras_weights, load_model
from .seeding import set_seed
from . import viz  # noqa: E402  (after the model, which viz builds on)

__version__ = "0.1.0"

__all__ = ["Sequential", "layers", "losses", "optimizers", "metrics", "callbacks", "activations",
           "initializers", "backend", "set_seed", "set_floatx", "set_kernels", "get_kernels",
           "use_kernels", "load_model", "load_keras_weights"]
