"""VGG16 and VGG19 with Keras's layer names, so Keras weight files load by name.

``weights`` is None (random initialization) or the path of a Keras file
(``.weights.h5``, ``.h5`` or ``.keras``, e.g. the ImageNet weights
``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`` downloaded beforehand); they are
read with ``load_keras_weights`` — no TensorFlow needed.
"""
from __future__ import annotations

import os

from .layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from .model import Sequential
from .saving import load_keras_weights

_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_FILTERS = (64, 128, 256, 512, 512)


def _vgg(kind, include_top, weights, input_shape, classes):
    layers = [Input(input_shape)]
    for block, (convs, filters) in enumerate(zip(_BLOCKS[kind], _FILTERS), start=1):
        layers += [Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{i}")
                   for i in range(1, convs + 1)]
        layers.append(MaxPooling2D(2, name=f"block{block}_pool"))
    if include_top:
        layers += [Flatten(name="flatten"), Dense(4096, activation="relu", name="fc1"),
                   Dense(4096, activation="relu", name="fc2"), Dense(classes, activation="softmax",
                                                                     name="predictions")]
    model = Sequential(layers, name=kind)
    if weights is not None:
        if not os.path.exists(weights):
            raise FileNotFoundError(
                f"{kind}: weights file {weights!r} not found. minicnn cannot download it here; get the Keras "
                f"file (e.g. {kind}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5) "
                f"and pass its path.")
        load_keras_weights(model, weights)
    return model


def VGG16(include_top=False, weights=None, input_shape=(224, 224, 3), classes=1000):
    return _vgg("vgg16", include_top, weights, input_shape, classes)


def VGG19(include_top=False, weights=None, input_shape=(224, 224, 3), classes=1000):
    return _vgg("vgg19", include_top, weights, input_shape, classes)
