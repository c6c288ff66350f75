"""``keras.applications.inception_v3``: ``InceptionV3`` (Szegedy et al., 2016) as Keras 3
builds it, with its layer names, weight order and defaults; ``preprocess_input`` (``tf``
mode: to [−1, 1]) and ``decode_predictions``.

Every convolution is ``conv2d_bn``: Conv2D without bias → BatchNormalization without γ
(``scale=False``: the ReLU that follows makes a scale redundant) → ReLU.  After a plain
stem, the "mixed" blocks run parallel branches (1×1; 1×1 then 5×5 or factorized 1×7/7×1;
two stacked 3×3; a 3×3 average pooling then 1×1) and concatenate them on the channels;
mixed3 and mixed8 halve the size.  23,851,784 parameters with the top.
"""
from __future__ import annotations

from functools import partial

from ..layers import Activation, AveragePooling2D, BatchNormalization, Conv2D, MaxPooling2D, concatenate
from ..model import Model
from .builder import check_arguments, image_input, load_weights, pooled_head
from .imagenet_utils import decode_predictions, preprocess_input as _preprocess

_MD5 = {True: "9a0d58056eeedaa3f26cb7ebd46da564", False: "bcbd6486424b2319ff4ef7d526e38f63"}


def conv2d_bn(x, filters, kernel_size, padding="same", strides=1):
    x = Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False)(x)
    x = BatchNormalization(scale=False)(x)
    return Activation("relu")(x)


def _chain(x, *convs):
    """``conv2d_bn`` applied in sequence, each conv given as (filters, kernel_size)."""
    for filters, kernel_size in convs:
        x = conv2d_bn(x, filters, kernel_size)
    return x


def _pool_branch(x, filters):
    return conv2d_bn(AveragePooling2D(3, strides=1, padding="same")(x), filters, 1)


def _mixed_5x5(x, pool_filters, name):
    """mixed0–2: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg-pool→1×1."""
    return concatenate([conv2d_bn(x, 64, 1), _chain(x, (48, 1), (64, 5)), _chain(x, (64, 1), (96, 3), (96, 3)),
                        _pool_branch(x, pool_filters)], name=name)


def _mixed_7x7(x, width, name):
    """mixed4–7: 1×1 | 1×1→1×7→7×1 | 1×1→7×1→1×7→7×1→1×7 | avg-pool→1×1, with ``width``
    channels inside the factorized branches."""
    return concatenate([conv2d_bn(x, 192, 1),
                        _chain(x, (width, 1), (width, (1, 7)), (192, (7, 1))),
                        _chain(x, (width, 1), (width, (7, 1)), (width, (1, 7)), (width, (7, 1)), (192, (1, 7))),
                        _pool_branch(x, 192)], name=name)


def _mixed_expanded(x, i):
    """mixed9–10: 1×1 | 1×1→(1×3 ‖ 3×1) | 1×1→3×3→(1×3 ‖ 3×1) | avg-pool→1×1."""
    branch1x1 = conv2d_bn(x, 320, 1)
    branch3x3 = conv2d_bn(x, 384, 1)
    branch3x3 = concatenate([conv2d_bn(branch3x3, 384, (1, 3)), conv2d_bn(branch3x3, 384, (3, 1))],
                            name=f"mixed9_{i}")
    branch3x3dbl = _chain(x, (448, 1), (384, 3))
    branch3x3dbl = concatenate([conv2d_bn(branch3x3dbl, 384, (1, 3)), conv2d_bn(branch3x3dbl, 384, (3, 1))])
    return concatenate([branch1x1, branch3x3, branch3x3dbl, _pool_branch(x, 192)], name=f"mixed{9 + i}")


def InceptionV3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name="inception_v3"):
    check_arguments("inception_v3", weights, include_top, classes, pooling)
    inputs = image_input("inception_v3", input_tensor, input_shape, include_top, weights, default_size=299,
                         min_size=75)
    x = conv2d_bn(inputs, 32, 3, strides=2, padding="valid")
    x = conv2d_bn(x, 32, 3, padding="valid")
    x = conv2d_bn(x, 64, 3)
    x = MaxPooling2D(3, strides=2)(x)
    x = conv2d_bn(x, 80, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, padding="valid")
    x = MaxPooling2D(3, strides=2)(x)
    for i, pool_filters in enumerate((32, 64, 64)):
        x = _mixed_5x5(x, pool_filters, f"mixed{i}")
    x = concatenate([conv2d_bn(x, 384, 3, strides=2, padding="valid"),
                     conv2d_bn(_chain(x, (64, 1), (96, 3)), 96, 3, strides=2, padding="valid"),
                     MaxPooling2D(3, strides=2)(x)], name="mixed3")
    for i, width in zip(range(4, 8), (128, 160, 160, 192)):
        x = _mixed_7x7(x, width, f"mixed{i}")
    x = concatenate([conv2d_bn(conv2d_bn(x, 192, 1), 320, 3, strides=2, padding="valid"),
                     conv2d_bn(_chain(x, (192, 1), (192, (1, 7)), (192, (7, 1))), 192, 3, strides=2,
                               padding="valid"),
                     MaxPooling2D(3, strides=2)(x)], name="mixed8")
    for i in range(2):
        x = _mixed_expanded(x, i)
    x = pooled_head(x, include_top, pooling, classes, classifier_activation)
    return load_weights(Model(inputs, x, name=name), "inception_v3", weights, include_top, _MD5)


preprocess_input = partial(_preprocess, mode="tf")

__all__ = ["InceptionV3", "preprocess_input", "decode_predictions"]
