"""Keras files both ways for every layer of the second chapter: a small functional model with the
layer is saved as ``.keras`` by minicnn and loaded by ``keras.models.load_model`` (and the reverse),
then its weights go through ``.weights.h5`` both ways; predictions agree in float64.
BatchNormalization is compared in inference mode (moving statistics, after a training step that
moved them) and in training mode (the batch's statistics)."""
import numpy as np
import pytest

import minicnn as mc
from test_layers_activations import TF_QUIRK_TOL
from tf_helpers import keras, rel

pytestmark = pytest.mark.tf
INPUT = (6, 5, 4)
ACTIVATIONS = ["tanh", "elu", "selu", "gelu", "softplus", "softsign", "swish", "silu", "leaky_relu",
               "hard_sigmoid", "exponential", "sigmoid", "relu", "softmax", "linear"]


def merged(kind, **kwargs):
    """Two convolution branches of the input, joined by the merging layer ``kind``."""
    def build(L, x, dt):
        a = L.Conv2D(3, 1, dtype=dt)(x)
        b = L.Conv2D(3, 3, padding="same", dtype=dt)(x)
        return getattr(L, kind)(dtype=dt, **kwargs)([a, b])
    return build


def single(make):
    """A model of one layer made by ``make(L, dt)``."""
    return lambda L, x, dt: make(L, dt)(x)


CASES = {
    "batchnorm": single(lambda L, dt: L.BatchNormalization(momentum=0.5, dtype=dt)),
    "batchnorm_axis1_no_center": single(lambda L, dt: L.BatchNormalization(axis=1, center=False, epsilon=0.01,
                                                                           dtype=dt)),
    "batchnorm_no_scale": single(lambda L, dt: L.BatchNormalization(scale=False, momentum=0.9, dtype=dt)),
    "batchnorm_frozen": single(lambda L, dt: L.BatchNormalization(momentum=0.5, trainable=False, dtype=dt)),
    "average_pooling": single(lambda L, dt: L.AveragePooling2D(2, dtype=dt)),
    "average_pooling_same_strided": single(lambda L, dt: L.AveragePooling2D(3, strides=2, padding="same",
                                                                             dtype=dt)),
    "global_max_pooling": single(lambda L, dt: L.GlobalMaxPooling2D(dtype=dt)),
    "global_max_pooling_keepdims": single(lambda L, dt: L.GlobalMaxPooling2D(keepdims=True, dtype=dt)),
    "zero_padding": single(lambda L, dt: L.ZeroPadding2D(((1, 0), (2, 1)), dtype=dt)),
    "cropping": single(lambda L, dt: L.Cropping2D(((1, 0), (0, 2)), dtype=dt)),
    "upsampling": single(lambda L, dt: L.UpSampling2D((2, 3), dtype=dt)),
    "reshape": single(lambda L, dt: L.Reshape((30, 4), dtype=dt)),
    "permute": single(lambda L, dt: L.Permute((3, 1, 2), dtype=dt)),
    "conv_transpose_same_strided": single(lambda L, dt: L.Conv2DTranspose(3, 3, strides=2, padding="same",
                                                                          dtype=dt)),
    "conv_transpose_output_padding": single(lambda L, dt: L.Conv2DTranspose(2, (3, 2), strides=(2, 3),
                                                                            output_padding=(1, 0), dtype=dt)),
    "conv_dilated": single(lambda L, dt: L.Conv2D(4, 3, dilation_rate=2, padding="same", dtype=dt)),
    "conv_grouped": single(lambda L, dt: L.Conv2D(4, 3, groups=2, activation="relu", dtype=dt)),
    "depthwise": single(lambda L, dt: L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2,
                                                        dtype=dt)),
    "separable": single(lambda L, dt: L.SeparableConv2D(5, 3, depth_multiplier=2, activation="relu", dtype=dt)),
    "separable_no_bias": single(lambda L, dt: L.SeparableConv2D(3, 2, strides=2, padding="same", use_bias=False,
                                                                dtype=dt)),
    "leaky_relu": single(lambda L, dt: L.LeakyReLU(dtype=dt)),
    "leaky_relu_slope": single(lambda L, dt: L.LeakyReLU(negative_slope=0.1, dtype=dt)),
    "elu": single(lambda L, dt: L.ELU(alpha=0.5, dtype=dt)),
    "prelu": single(lambda L, dt: L.PReLU(dtype=dt)),
    "prelu_shared": single(lambda L, dt: L.PReLU(shared_axes=[1, 2], dtype=dt)),
    "softmax_axis1": single(lambda L, dt: L.Softmax(axis=1, dtype=dt)),
    **{f"dense_{name}": single(lambda L, dt, name=name: L.Dense(3, activation=name, dtype=dt)) for name in ACTIVATIONS},
    **{f"activation_{name}": single(lambda L, dt, name=name: L.Activation(name, dtype=dt))
       for name in ("gelu", "selu", "hard_sigmoid")},
    "add": merged("Add"), "subtract": merged("Subtract"), "multiply": merged("Multiply"),
    "average": merged("Average"), "maximum": merged("Maximum"), "minimum": merged("Minimum"),
    "concatenate": merged("Concatenate", axis=-1),
}


def build(lib, case):
    dt = "float64"
    x = lib.Input(INPUT, dtype=dt)
    return lib.Model(x, CASES[case](lib.layers, x, dt))


def random_weights(model, names, rng):
    """Values away from 0 with random signs; variances positive."""
    return [rng.uniform(0.3, 1.5, w.shape) * (1 if "variance" in name else rng.choice([-1, 1], w.shape))
            for w, name in zip(model.get_weights(), names)]


def configs(model):
    """Each layer's class and minicnn config, without its name (counted per session)."""
    return [(type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"})
            for layer in model.layers]


def minicnn_names(model):
    return [w.key for w in model.weights]


def keras_names(model):
    return [w.path for w in model.weights]


@pytest.fixture
def data():
    return np.random.default_rng(1).standard_normal((5, *INPUT))


def assert_same_function(ours, theirs, x, case):
    """Equal outputs in inference and in training mode; Keras's predict() casts its input to
    float32 (keras.config.floatx()), a call keeps float64."""
    tol = max([1e-9] + [t for name, t in TF_QUIRK_TOL.items() if name in case])
    assert rel(ours.predict(x, verbose=0), theirs(x, training=False)) < tol
    assert rel(ours.forward(x, training=True), theirs(x, training=True)) < tol


def assert_same_weights(ours, theirs):
    assert len(ours.get_weights()) == len(theirs.get_weights())
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", sorted(CASES))
def test_minicnn_keras_file_loads_in_keras(case, tmp_path, data, float64):
    rng = np.random.default_rng(2)
    ours = build(mc, case)
    ours.set_weights(random_weights(ours, minicnn_names(ours), rng))
    ours.compile(mc.optimizers.SGD(0.01), "mse")
    ours.train_on_batch(data, rng.uniform(-1, 1, (len(data), *ours.output_shape[1:])))  # moves BN's statistics
    ours.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert [type(layer).__name__ for layer in theirs.layers] == [type(layer).__name__ for layer in ours.layers]
    assert_same_weights(ours, theirs)
    assert_same_function(ours, theirs, data, case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_file_loads_in_minicnn(case, tmp_path, data, float64):
    rng = np.random.default_rng(3)
    theirs = build(keras, case)
    theirs.set_weights(random_weights(theirs, keras_names(theirs), rng))
    theirs.save(tmp_path / "k.keras")
    ours = mc.models.load_model(tmp_path / "k.keras")
    assert configs(ours) == configs(build(mc, case))
    assert_same_weights(ours, theirs)
    assert_same_function(ours, theirs, data, case)


@pytest.mark.parametrize("case", sorted(CASES))
def test_weights_h5_both_ways(case, tmp_path, data, float64):
    rng = np.random.default_rng(4)
    ours, theirs = build(mc, case), build(keras, case)
    theirs.set_weights(random_weights(theirs, keras_names(theirs), rng))
    theirs.save_weights(tmp_path / "k.weights.h5")
    ours.load_weights(tmp_path / "k.weights.h5")
    assert_same_weights(ours, theirs)
    assert_same_function(ours, theirs, data, case)
    ours.set_weights(random_weights(ours, minicnn_names(ours), rng))
    ours.save_weights(tmp_path / "m.weights.h5")
    theirs.load_weights(tmp_path / "m.weights.h5")
    assert_same_weights(ours, theirs)
    assert_same_function(ours, theirs, data, case)


def test_the_resnet_example_goes_to_keras_and_back(tmp_path, data, float64):
    """The ResNet of examples/resnet.py (BatchNormalization, residual Add, global pooling) after a
    training step: minicnn's .keras file loads in Keras, and Keras's save loads back."""
    from examples.resnet import small_resnet
    rng = np.random.default_rng(5)
    ours = small_resnet(mc, INPUT, widths=(4, 6), classes=3)
    ours.compile(mc.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy")
    ours.train_on_batch(data, rng.integers(0, 3, len(data)))
    ours.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert_same_weights(ours, theirs)
    assert_same_function(ours, theirs, data, "resnet")
    theirs.save(tmp_path / "k.keras")
    back = mc.models.load_model(tmp_path / "k.keras")
    assert configs(back) == configs(ours)
    assert_same_weights(back, theirs)
    assert_same_function(back, theirs, data, "resnet")
