"""The activations as ``activation=`` strings and the activation layers (LeakyReLU, ELU, PReLU,
Softmax): TensorFlow parity in float64 and central differences."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import activations, layers
from conftest import distinct_values
from layer_checks import assert_gradients_check, assert_matches_tf
from tf_helpers import keras, rel

NAMES = ["tanh", "elu", "selu", "gelu", "softplus", "softsign", "swish", "silu", "leaky_relu", "hard_sigmoid",
         "exponential"]
SHAPES = st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple)
SEEDS = st.integers(0, 2**16)
# TF's exact gelu is off by up to 5.0e-9 (value) and 5.7e-9 (derivative) per element against
# scipy.special.erf (measured on 200,001 points of [-4.5, 4.5]); the gradient check weights each
# element by G ~ N(0, 1) and sums over up to 256 of them, so its norm error reaches ~1e-7
TF_QUIRK_TOL = {"gelu": 1e-7, "leaky_relu": 3e-8}


def spread(seed, shape):
    """Distinct values in about [−3.7, 3.7] (past hard_sigmoid's kinks at ±3, and never on them or on 0)."""
    return 3.7 * distinct_values(np.random.default_rng(seed), shape)


@pytest.mark.parametrize("name", NAMES)
@given(shape=SHAPES, seed=SEEDS)
def test_activation_strings_match_tf(float64, name, shape, seed):
    """Two TF float64 quirks, where ours is the exact definition (checked alone below): its
    erfc (its exact gelu is ½x·erfc(−x/√2)) is off by up to ~5e-9 against math.erf and
    scipy, which agree to 1e-16 (``TF_QUIRK_TOL``); its leaky_relu slope is a float32 attribute (0.2 becomes
    0.2 + 3e-9, 1.5e-8 relative)."""
    x = spread(seed, shape)
    tol = TF_QUIRK_TOL.get(name, 1e-9)
    assert_matches_tf(layers.Activation(name), keras.layers.Activation(name, dtype="float64"), x, seed, tol)
    assert_gradients_check(layers.Activation(name), x, seed)


def test_gelu_equals_the_error_function_definition(float64):
    x = spread(3, (5, 7))
    exact = np.vectorize(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))(x)
    np.testing.assert_allclose(layers.Activation("gelu").forward(x), exact, rtol=1e-14, atol=1e-16)


def test_gelus_gradient_equals_the_derivative_of_the_error_function_definition(float64):
    """∂gelu/∂x = Φ(x) + x·φ(x), with Φ from math.erf: the exact reference that TF's quirk
    keeps the parity test above from being."""
    x = spread(5, (5, 7))
    G = np.random.default_rng(6).standard_normal(x.shape)
    exact = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))) + v * math.exp(-v * v / 2)
                         / math.sqrt(2 * math.pi))(x) * G
    layer = layers.Activation("gelu")
    layer.forward(x)
    np.testing.assert_allclose(layer.backward(G), exact, rtol=1e-13, atol=1e-16)


def test_leaky_relu_uses_its_exact_slope(float64):
    x = spread(4, (3, 4))
    np.testing.assert_array_equal(layers.Activation("leaky_relu").forward(x), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_array_equal(layers.LeakyReLU().forward(x), np.where(x > 0, x, 0.3 * x))


@pytest.mark.parametrize("name", ["tanh", "selu", "gelu", "silu", "hard_sigmoid"])
def test_a_dense_layer_applies_them_as_keras(float64, name):
    x = spread(0, (3, 5))
    assert_matches_tf(layers.Dense(4, activation=name), keras.layers.Dense(4, activation=name, dtype="float64"), x,
                      tol=TF_QUIRK_TOL.get(name, 1e-9))


def test_gelu_tanh_approximation_matches_keras(float64):
    from tf_helpers import tf
    x = spread(1, (4, 6))
    ours = activations.GELU(approximate=True)
    expected = keras.activations.gelu(tf.constant(x), approximate=True).numpy()
    assert rel(ours.forward(x), expected) < 1e-9
    layer = layers.Activation(activations.GELU(approximate=True))
    assert_gradients_check(layer, x)


def test_selu_uses_keras_full_precision_constants():
    assert activations.SELU.ALPHA == 1.6732632423543772848170429916717
    assert activations.SELU.SCALE == 1.0507009873554804934193349852946


def test_float32_stays_float32():
    x = spread(2, (3, 4)).astype("float32")
    for name in NAMES:
        layer = layers.Activation(name)
        y = layer.forward(x)
        assert y.dtype == np.float32 and layer.backward(np.ones_like(y)).dtype == np.float32, name


@given(slope=st.sampled_from([0.3, 0.01, 0.5]), shape=SHAPES, seed=SEEDS)
def test_leaky_relu_layer(float64, slope, shape, seed):
    x = spread(seed, shape)
    assert layers.LeakyReLU().negative_slope == 0.3 and activations.get("leaky_relu").negative_slope == 0.2
    assert_matches_tf(layers.LeakyReLU(slope), keras.layers.LeakyReLU(negative_slope=slope, dtype="float64"), x,
                      seed, TF_QUIRK_TOL["leaky_relu"])
    assert_gradients_check(layers.LeakyReLU(slope), x, seed)


def test_leaky_relu_reads_keras2_alpha_and_rejects_negative_slopes():
    with pytest.warns(UserWarning, match="alpha"):
        layer = layers.LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1 and layer.get_config()["negative_slope"] == 0.1
    assert "alpha" not in layer.get_config()
    for bad in (-0.1, None, float("nan")):
        with pytest.raises(ValueError, match=r"LeakyReLU: negative_slope must be .*received"):
            layers.LeakyReLU(bad)


@given(alpha=st.sampled_from([1.0, 0.5, 2.0]), shape=SHAPES, seed=SEEDS)
def test_elu_layer(float64, alpha, shape, seed):
    x = spread(seed, shape)
    assert_matches_tf(layers.ELU(alpha), keras.layers.ELU(alpha=alpha, dtype="float64"), x, seed)
    assert_gradients_check(layers.ELU(alpha), x, seed)


@given(shape=SHAPES, seed=SEEDS, data=st.data())
def test_softmax_layer_on_any_axis(float64, shape, seed, data):
    axis = data.draw(st.sampled_from([-1, *range(1, len(shape))]))
    x = spread(seed, shape) / 2
    assert_matches_tf(layers.Softmax(axis), keras.layers.Softmax(axis=axis, dtype="float64"), x, seed)
    assert_gradients_check(layers.Softmax(axis), x, seed)


@given(shared=st.sampled_from([None, [1], [1, 2], [3], 2]), seed=SEEDS)
def test_prelu_layer(float64, shared, seed):
    x = spread(seed, (3, 4, 3, 2))
    ours = layers.PReLU(alpha_initializer="glorot_uniform", shared_axes=shared)
    theirs = keras.layers.PReLU(shared_axes=shared, dtype="float64")
    assert_matches_tf(ours, theirs, x, seed)
    assert ours.params["alpha"].shape == tuple(theirs.get_weights()[0].shape)
    assert_gradients_check(layers.PReLU(alpha_initializer="glorot_uniform", shared_axes=shared), x, seed)


def test_unknown_activation_names_the_choices():
    with pytest.raises(ValueError, match="unknown activation 'mish'.*gelu"):
        layers.Dense(3, activation="mish")


def test_a_model_trains_with_the_new_activations(float64):
    rng = np.random.default_rng(0)
    model = mc.Sequential([layers.Input((6,)), layers.Dense(8, activation="gelu"), layers.PReLU(),
                           layers.Dense(8, activation="selu"), layers.Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    x, y = rng.standard_normal((32, 6)), np.eye(3)[rng.integers(0, 3, 32)]
    first = model.train_on_batch(x, y)
    for _ in range(30):
        last = model.train_on_batch(x, y)
    assert last < first
