"""VGG16 and VGG19 as Keras 3 builds them: functional models with Keras's layer names,
so Keras weight files load by name.

``weights``: ``"imagenet"`` (Keras's files, through ``utils.get_file`` with Keras's URL
and MD5: downloaded once into ``~/.minicnn/models``), ``None`` (random initialization)
or the path of a Keras file (``.weights.h5``, ``.h5`` or ``.keras``), read with
``load_keras_weights`` — no TensorFlow needed.  Without the top the input may be
``(None, None, 3)`` (any image size); with it, the flattened features fix the size.
"""
from __future__ import annotations

from ..layers import Conv2D, Dense, Flatten, MaxPooling2D
from ..model import Model
from .builder import check_arguments, image_input, load_weights, pooled_head

_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_FILTERS = (64, 128, 256, 512, 512)
_MD5 = {"vgg16": {True: "64373286793e3c8b2b4e3219cbf3544b", False: "6d6bbae143d832006294945121d1f1fc"},
        "vgg19": {True: "cbe5617147190e668d6c5d5026f83318", False: "253f8cb515780f3b799900260a226db6"}}


def vgg(kind, include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
        classes=1000, classifier_activation="softmax", name=None):
    check_arguments(kind, weights, include_top, classes, pooling)
    inputs = image_input(kind, input_tensor, input_shape, include_top, weights, default_size=224, min_size=32)
    x = inputs
    for block, (convs, filters) in enumerate(zip(_BLOCKS[kind], _FILTERS), start=1):
        for i in range(1, convs + 1):
            x = Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{i}")(x)
        x = MaxPooling2D(2, name=f"block{block}_pool")(x)
    if include_top:
        x = Flatten(name="flatten")(x)
        x = Dense(4096, activation="relu", name="fc1")(x)
        x = Dense(4096, activation="relu", name="fc2")(x)
        x = Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = pooled_head(x, False, pooling, classes, classifier_activation)
    return load_weights(Model(inputs, x, name=name or kind), kind, weights, include_top, _MD5[kind])
