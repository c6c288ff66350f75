"""``keras.applications.xception``: ``Xception`` (Chollet, 2017) as Keras 3 builds it, with
its layer names, weight order and defaults; ``preprocess_input`` (``tf`` mode: to [−1, 1])
and ``decode_predictions``.

The network: an entry flow of two plain 3×3 convolutions, then blocks of
``SeparableConv2D → BatchNormalization`` pairs (ReLU between them) joined by residual
additions — a strided 1×1 convolution on the shortcut where the block halves the size
(blocks 2–4 and 13), the identity in the eight middle blocks (5–12) — and an exit flow
of two separable convolutions to 2048 channels.  22,910,480 parameters with the top.
"""
from __future__ import annotations

from functools import partial

from ..layers import Activation, BatchNormalization, Conv2D, MaxPooling2D, SeparableConv2D, add
from ..model import Model
from .builder import check_arguments, image_input, load_weights, pooled_head
from .imagenet_utils import decode_predictions, preprocess_input as _preprocess

_MD5 = {True: "0a58e3b7378bc2990ea3b43d5981f1f6", False: "b0042744bf5b25fce3cb969f33bebb97"}


def _sep_bn(x, filters, name):
    x = SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    return BatchNormalization(name=f"{name}_bn")(x)


def _downsampling_block(x, block, filters, relu_first=True):
    """Two separable convolutions and a strided max pooling, plus the strided 1×1 shortcut."""
    residual = BatchNormalization()(Conv2D(filters[1], 1, strides=2, padding="same", use_bias=False)(x))
    prefix = f"block{block}"
    if relu_first:
        x = Activation("relu", name=f"{prefix}_sepconv1_act")(x)
    x = _sep_bn(x, filters[0], f"{prefix}_sepconv1")
    x = Activation("relu", name=f"{prefix}_sepconv2_act")(x)
    x = _sep_bn(x, filters[1], f"{prefix}_sepconv2")
    x = MaxPooling2D(3, strides=2, padding="same", name=f"{prefix}_pool")(x)
    return add([x, residual])


def Xception(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="xception"):
    check_arguments("xception", weights, include_top, classes, pooling)
    inputs = image_input("xception", input_tensor, input_shape, include_top, weights, default_size=299, min_size=71)
    x = inputs
    for i, (filters, strides) in enumerate(((32, 2), (64, 1)), start=1):
        x = Conv2D(filters, 3, strides=strides, use_bias=False, name=f"block1_conv{i}")(x)
        x = BatchNormalization(name=f"block1_conv{i}_bn")(x)
        x = Activation("relu", name=f"block1_conv{i}_act")(x)
    x = _downsampling_block(x, 2, (128, 128), relu_first=False)
    x = _downsampling_block(x, 3, (256, 256))
    x = _downsampling_block(x, 4, (728, 728))
    for block in range(5, 13):
        residual = x
        for i in (1, 2, 3):
            x = Activation("relu", name=f"block{block}_sepconv{i}_act")(x)
            x = _sep_bn(x, 728, f"block{block}_sepconv{i}")
        x = add([x, residual])
    x = _downsampling_block(x, 13, (728, 1024))
    for i, filters in ((1, 1536), (2, 2048)):
        x = _sep_bn(x, filters, f"block14_sepconv{i}")
        x = Activation("relu", name=f"block14_sepconv{i}_act")(x)
    x = pooled_head(x, include_top, pooling, classes, classifier_activation)
    return load_weights(Model(inputs, x, name=name), "xception", weights, include_top, _MD5)


preprocess_input = partial(_preprocess, mode="tf")

__all__ = ["Xception", "preprocess_input", "decode_predictions"]
