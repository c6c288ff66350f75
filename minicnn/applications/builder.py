"""What every ``keras.applications`` builder shares: the argument checks, the input shape
(Keras's ``obtain_input_shape`` for channels-last images), the classifier or pooling head,
and the weights (``"imagenet"`` through ``utils.get_file`` with Keras's URL and MD5, ``None``
for random initialization, or the path of a Keras weights file read without TensorFlow)."""
from __future__ import annotations

import os

from ..layers import Dense, GlobalAveragePooling2D, GlobalMaxPooling2D, Input
from ..saving import load_keras_weights
from ..utils import get_file

URL = "https://storage.googleapis.com/tensorflow/keras-applications/{kind}/{file}"


def check_arguments(kind, weights, include_top, classes, pooling):
    if not (weights in (None, "imagenet") or isinstance(weights, (str, os.PathLike))):
        raise ValueError(f"{kind}: weights must be None, 'imagenet' or the path of a weights file, "
                         f"received {weights!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"{kind}: the ImageNet weights with include_top=True need classes=1000, received {classes}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"{kind}: pooling must be None, 'avg' or 'max', received {pooling!r}")


def image_input(kind, input_tensor, input_shape, include_top, weights, default_size, min_size):
    """``input_tensor`` itself, or a new ``Input``: ``(default_size, default_size, 3)`` with the top
    (whose size the ImageNet weights fix), any size of at least ``min_size`` without it."""
    if input_tensor is not None:
        return input_tensor
    default = (default_size, default_size, 3)
    if input_shape is None:
        return Input(default if include_top else (None, None, 3))
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or (input_shape[-1] != 3 and weights == "imagenet"):
        raise ValueError(f"{kind}: input_shape must be (height, width, 3), received {input_shape}")
    if include_top and weights == "imagenet" and input_shape != default:
        raise ValueError(f"{kind}: with include_top=True and the ImageNet weights the input must be "
                         f"{default}, received {input_shape}")
    if include_top and None in input_shape:
        raise ValueError(f"{kind}: include_top=True needs a fixed input size, received {input_shape}")
    if any(d is not None and d < min_size for d in input_shape[:2]):
        raise ValueError(f"{kind}: height and width must be at least {min_size}, received {input_shape}")
    return Input(input_shape)


def pooled_head(x, include_top, pooling, classes, classifier_activation):
    """Keras's head for the all-convolutional networks: global average pooling and the
    ``predictions`` Dense layer with the top, else the optional global pooling."""
    if include_top:
        x = GlobalAveragePooling2D(name="avg_pool")(x)
        return Dense(classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return GlobalAveragePooling2D()(x)
    if pooling == "max":
        return GlobalMaxPooling2D()(x)
    return x


def load_weights(model, kind, weights, include_top, md5):
    """Load ``weights`` into ``model``: Keras's ImageNet file (``md5[include_top]``) or a path."""
    file = f"{kind}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    if weights == "imagenet":
        weights = get_file(file, URL.format(kind=kind, file=file), cache_subdir="models", file_hash=md5[include_top])
    elif weights is None:
        return model
    elif not os.path.exists(weights):
        raise FileNotFoundError(f"{kind}: weights file {weights!r} not found; pass weights='imagenet' to download "
                                f"Keras's ({file}), or the path of a Keras weights file")
    return load_keras_weights(model, weights)
