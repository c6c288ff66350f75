"""VGG16 and VGG19 as Keras 3 builds them: functional models with Keras's layer names,
so Keras weight files load by name.

``weights``: ``"imagenet"`` (Keras's files, through ``utils.get_file`` with Keras's URL
and MD5: downloaded once into ``~/.minicnn/models``), ``None`` (random initialization)
or the path of a Keras file (``.weights.h5``, ``.h5`` or ``.keras``), read with
``load_keras_weights`` — no TensorFlow needed.  Without the top the input may be
``(None, None, 3)`` (any image size); with it, the flattened features fix the size.
"""
from __future__ import annotations

import os

from ..layers import Conv2D, Dense, Flatten, GlobalAveragePooling2D, Input, MaxPooling2D
from ..model import Model
from ..saving import load_keras_weights
from ..utils import get_file

_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_FILTERS = (64, 128, 256, 512, 512)
_URL = "https://storage.googleapis.com/tensorflow/keras-applications/{kind}/{file}"
_MD5 = {("vgg16", True): "64373286793e3c8b2b4e3219cbf3544b", ("vgg16", False): "6d6bbae143d832006294945121d1f1fc",
        ("vgg19", True): "cbe5617147190e668d6c5d5026f83318", ("vgg19", False): "253f8cb515780f3b799900260a226db6"}


def _input_shape(kind, input_shape, include_top, weights):
    if input_shape is None:
        return (224, 224, 3) if include_top else (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or (input_shape[-1] != 3 and weights == "imagenet"):
        raise ValueError(f"{kind}: input_shape must be (height, width, 3), received {input_shape}")
    if include_top and weights == "imagenet" and input_shape != (224, 224, 3):
        raise ValueError(f"{kind}: with include_top=True and the ImageNet weights the input must be "
                         f"(224, 224, 3), received {input_shape}")
    if include_top and None in input_shape:
        raise ValueError(f"{kind}: include_top=True needs a fixed input size (the Dense layers), received "
                         f"{input_shape}")
    if any(d is not None and d < 32 for d in input_shape[:2]):
        raise ValueError(f"{kind}: height and width must be at least 32, received {input_shape}")
    return input_shape


def weights_file(kind, include_top) -> str:
    """The local path of Keras's ImageNet weights for ``kind``, downloaded if needed."""
    file = f"{kind}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    return get_file(file, _URL.format(kind=kind, file=file), cache_subdir="models",
                    file_hash=_MD5[kind, include_top])


def vgg(kind, include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
        classes=1000, classifier_activation="softmax", name=None):
    if not (weights in (None, "imagenet") or isinstance(weights, (str, os.PathLike))):
        raise ValueError(f"{kind}: weights must be None, 'imagenet' or the path of a weights file, "
                         f"received {weights!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"{kind}: the ImageNet weights with include_top=True need classes=1000, received {classes}")
    if pooling not in (None, "avg"):
        raise ValueError(f"{kind}: pooling must be None or 'avg' (minicnn has no GlobalMaxPooling2D yet), "
                         f"received {pooling!r}")
    inputs = input_tensor if input_tensor is not None else \
        Input(_input_shape(kind, input_shape, include_top, weights))
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
    elif pooling == "avg":
        x = GlobalAveragePooling2D()(x)
    model = Model(inputs, x, name=name or kind)
    if weights == "imagenet":
        load_keras_weights(model, weights_file(kind, include_top))
    elif weights is not None:
        if not os.path.exists(weights):
            raise FileNotFoundError(
                f"{kind}: weights file {weights!r} not found; pass weights='imagenet' to download Keras's "
                f"({kind}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5), or the path "
                f"of a Keras weights file")
        load_keras_weights(model, weights)
    return model
