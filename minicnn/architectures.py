"""The seed tutorials' architectures, as minicnn models (and the single source the
tests, examples and benchmarks build them from).  ``input_shape`` may be scaled down
for quick runs; the parameter counts quoted are for the tutorials' input sizes.
``residual_separable_blocks`` holds the next chapter's layers (``minicnn warmup`` compiles
their kernels with it)."""
from __future__ import annotations

from .layers import (Activation, Add, BatchNormalization, Conv2D, Dense, DepthwiseConv2D, Dropout, Flatten,
                     GlobalAveragePooling2D, Input, MaxPooling2D, SeparableConv2D)
from .model import Model
from .sequential import Sequential


def face_fcnn(input_shape=(64, 64, 1)):
    """Olivetti FCNN: Flatten → Dense 4 relu → Dense 1 sigmoid (16,393 params)."""
    return Sequential([Input(input_shape), Flatten(), Dense(4, activation="relu"),
                       Dense(1, activation="sigmoid")], name="face_fcnn")


def face_cnn(input_shape=(64, 64, 1)):
    """Olivetti CNN: Conv2D 4×(8,8) relu → MaxPool 4 → Flatten → Dense 4 relu → Dense 1 sigmoid (3,405)."""
    return Sequential([Input(input_shape), Conv2D(4, (8, 8), activation="relu"), MaxPooling2D((4, 4)),
                       Flatten(), Dense(4, activation="relu"), Dense(1, activation="sigmoid")], name="face_cnn")


def mnist_deconstructed(input_shape=(28, 28, 1), classes=10):
    """MNIST 'deconstructed': 24/48/64 3×3 'same' convs + MaxPool 2 each → Dense 128 →
    Dropout 0.25 → Dense 10 softmax (113,514 params).  Built with the functional API, as the tutorial builds it."""
    inputs = Input(shape=input_shape)
    x = inputs
    for filters in (24, 48, 64):
        x = Conv2D(filters, kernel_size=(3, 3), padding="same", activation="relu")(x)
        x = MaxPooling2D(pool_size=(2, 2))(x)
    x = Flatten()(x)
    x = Dense(128, activation="relu")(x)
    x = Dropout(0.25)(x)
    output = Dense(classes, activation="softmax")(x)
    return Model(inputs, output, name="mnist_deconstructed")


def mnist_cnn(input_shape=(28, 28, 1), classes=10, dropout=0.5):
    """MNIST 32/64 'same' CNN + MaxPools → Dense 64 → Dropout 0.5 → Dense 10 (220,234 params)."""
    return Sequential([Input(input_shape), Conv2D(32, 3, padding="same", activation="relu"), MaxPooling2D(2),
                       Conv2D(64, 3, padding="same", activation="relu"), MaxPooling2D(2), Flatten(),
                       Dense(64, activation="relu"), Dropout(dropout), Dense(classes, activation="softmax")],
                      name="mnist_cnn")


def mnist_convnet(input_shape=(28, 28, 1), classes=10):
    """MNIST convnet: 32/64/64 'valid' convs, two MaxPools → Dense 64 → Dense 10 (93,322 params)."""
    return Sequential([Input(input_shape), Conv2D(32, 3, activation="relu"), MaxPooling2D(2),
                       Conv2D(64, 3, activation="relu"), MaxPooling2D(2), Conv2D(64, 3, activation="relu"),
                       Flatten(), Dense(64, activation="relu"), Dense(classes, activation="softmax")],
                      name="mnist_convnet")


def cifar_six_conv(input_shape=(32, 32, 3), classes=10, dropout=0.5):
    """CIFAR-10: six 16-filter 3×3 'same' convs (MaxPool after the 2nd and 4th) → Dense 64
    on the 4-D tensor → Dropout → Flatten → Dense 10 softmax.  Built with the functional
    API and the tutorial's layer names."""
    input_layer = Input(shape=input_shape, name="input")
    h = input_layer
    for i in range(6):
        h = Conv2D(filters=16, kernel_size=(3, 3), activation="relu", padding="same", name=f"conv2d_{i + 1}")(h)
        if i in (1, 3):
            h = MaxPooling2D(pool_size=(2, 2), name=f"pool_{(i + 1) // 2}")(h)
    h = Dense(64, activation="relu", name="dense_1")(h)
    h = Dropout(dropout, name="dropout_1")(h)
    h = Flatten(name="flatten_1")(h)
    output_layer = Dense(classes, activation="softmax", name="dense_2")(h)
    return Model(inputs=input_layer, outputs=output_layer, name="cifar_six_conv")


def cats_dogs_cnn(input_shape=(150, 150, 3)):
    """Cats vs dogs: 32/64/128/128 convs + MaxPools → Dense 512 → Dense 1 sigmoid (3,453,121)."""
    body = []
    for filters in (32, 64, 128, 128):
        body += [Conv2D(filters, 3, activation="relu"), MaxPooling2D(2)]
    return Sequential([Input(input_shape), *body, Flatten(), Dense(512, activation="relu"),
                       Dense(1, activation="sigmoid")], name="cats_dogs_cnn")


def cats_dogs_small(input_shape=(150, 150, 3)):
    """The 32/64/128 variant: → Dense 128 → Dense 512 → Dense 1 sigmoid (4,894,913 params)."""
    body = []
    for filters in (32, 64, 128):
        body += [Conv2D(filters, 3, activation="relu"), MaxPooling2D(2)]
    return Sequential([Input(input_shape), *body, Flatten(), Dense(128, activation="relu"),
                       Dense(512, activation="relu"), Dense(1, activation="sigmoid")], name="cats_dogs_small")


SEED_MODELS = {f.__name__: f for f in (face_fcnn, face_cnn, mnist_deconstructed, mnist_cnn, mnist_convnet,
                                       cifar_six_conv, cats_dogs_cnn, cats_dogs_small)}


def residual_separable_blocks(input_shape=(32, 32, 3), classes=10):
    """A residual block with BatchNormalization (conv → BN → ReLU, conv → BN, add → ReLU),
    two blocks that halve the size and double the channels (a stride-2 conv in the branch, a
    stride-2 1×1 conv + BN as the shortcut: 32, then 64 channels), then an Xception-style
    separable block (SeparableConv2D → BN → ReLU, DepthwiseConv2D), global average pooling
    and a softmax: one of each layer the plan fuses or the Numba kernels run for BN, the
    residual sum, the strided convolutions and the depthwise convolution, at the channel
    counts of a small ResNet (``examples/resnet.py``), whose register tiles differ."""
    def conv_bn(x, filters, kernel_size=3, strides=1):
        return BatchNormalization()(Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False)(x))

    inputs = Input(input_shape)
    x = Conv2D(16, 3, padding="same", activation="relu")(inputs)
    for filters, strides in ((16, 1), (32, 2), (64, 2)):
        shortcut = x if strides == 1 else conv_bn(x, filters, 1, strides)
        branch = conv_bn(Activation("relu")(conv_bn(x, filters, strides=strides)), filters)
        x = Activation("relu")(Add()([shortcut, branch]))
    x = Activation("relu")(BatchNormalization()(SeparableConv2D(32, 3, padding="same", use_bias=False)(x)))
    x = GlobalAveragePooling2D()(DepthwiseConv2D(3, padding="same")(x))
    return Model(inputs, Dense(classes, activation="softmax")(x), name="residual_separable_blocks")
