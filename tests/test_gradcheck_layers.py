"""Central differences in float64 against every layer's backward (input and params),
with a random upstream gradient, on hypothesis-drawn configurations."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minicnn import layers
from minicnn.study.finite_differences import check_layer
from conftest import distinct_values
from strategies import window_configs

TOL = 1e-6


def assert_all_close(results):
    for r in results:
        assert r.rel_error < TOL, r


@given(cfg=window_configs(max_size=8, max_channels=3), seed=st.integers(0, 2**16),
       activation=st.sampled_from([None, "relu", "sigmoid", "softmax"]), use_bias=st.booleans())
def test_conv2d(cpu_kernels, float64, cfg, seed, activation, use_bias):
    rng = np.random.default_rng(seed)
    layer = layers.Conv2D(cfg["f"], cfg["kernel"], cfg["strides"], cfg["padding"], activation=activation,
                          use_bias=use_bias, name="conv")
    x = distinct_values(rng, (cfg["n"], cfg["h"], cfg["w"], cfg["c"]))
    assert_all_close(check_layer(layer, x, seed=seed))


@given(cfg=window_configs(max_size=8, max_kernel=4, max_channels=3), seed=st.integers(0, 2**16))
def test_max_pooling2d(cpu_kernels, float64, cfg, seed):
    rng = np.random.default_rng(seed)
    layer = layers.MaxPooling2D(cfg["kernel"], cfg["strides"], cfg["padding"], name="pool")
    x = distinct_values(rng, (cfg["n"], cfg["h"], cfg["w"], cfg["c"]))
    assert_all_close(check_layer(layer, x, seed=seed))


@given(lead=st.lists(st.integers(1, 4), min_size=1, max_size=3), k=st.integers(1, 6), u=st.integers(1, 6),
       activation=st.sampled_from([None, "relu", "sigmoid", "softmax"]), seed=st.integers(0, 2**16))
def test_dense_on_any_rank(float64, lead, k, u, activation, seed):
    rng = np.random.default_rng(seed)
    x = distinct_values(rng, (*lead, k))
    assert_all_close(check_layer(layers.Dense(u, activation=activation, name="dense"), x, seed=seed))


@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), seed=st.integers(0, 2**16),
       layer=st.sampled_from(["flatten", "relu", "sigmoid", "softmax", "dropout_eval", "gap"]))
def test_parameter_free_layers(float64, shape, seed, layer):
    rng = np.random.default_rng(seed)
    if layer == "gap":
        shape = (shape + [2, 2, 2])[:4]
    made = {"flatten": lambda: layers.Flatten(), "relu": lambda: layers.ReLU(),
            "sigmoid": lambda: layers.Activation("sigmoid"), "softmax": lambda: layers.Activation("softmax"),
            "dropout_eval": lambda: layers.Dropout(0.5), "gap": lambda: layers.GlobalAveragePooling2D()}[layer]()
    assert_all_close(check_layer(made, distinct_values(rng, tuple(shape)), seed=seed))


def test_dropout_training_backward_uses_the_forward_mask(float64):
    rng = np.random.default_rng(0)
    layer = layers.Dropout(0.25, seed=3)
    x = rng.standard_normal((200, 50))
    y = layer.forward(x, training=True)
    kept = y != 0
    assert abs(1 - kept.mean() - 0.25) < 0.02                      # the dropped fraction is the rate
    np.testing.assert_allclose(y[kept], x[kept] / 0.75)             # inverted scaling
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(layer.backward(dy), dy * kept / 0.75)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)


def test_backward_never_mutates_the_upstream_gradient(cpu_kernels, float64):
    rng = np.random.default_rng(1)
    x = distinct_values(rng, (2, 6, 6, 2))
    for layer in [layers.Conv2D(3, 3, activation="relu"), layers.MaxPooling2D(), layers.ReLU(),
                  layers.Activation("softmax"), layers.Flatten(), layers.Dense(3, activation="sigmoid")]:
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        before = dy.copy()
        layer.backward(dy)
        np.testing.assert_array_equal(dy, before)
