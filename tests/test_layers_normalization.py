"""BatchNormalization: TensorFlow parity in both modes (outputs, gradients, moving statistics
after a step), central differences, the loop reference, and its non-trainable weights."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import layers
from minicnn.kernels import naive
from minicnn.study.finite_differences import numeric_gradient
from conftest import distinct_values
from tf_helpers import keras, rel, tf


def bn_config(draw):
    ndim = draw(st.integers(2, 4))
    shape = tuple(draw(st.integers(1 if i else 2, 4)) for i in range(ndim))
    axis = draw(st.sampled_from([-1, *range(1, ndim)]))
    return shape, axis


@st.composite
def bn_cases(draw):
    shape, axis = bn_config(draw)
    return dict(shape=shape, axis=axis, momentum=draw(st.sampled_from([0.99, 0.5, 0.0])),
                epsilon=draw(st.sampled_from([1e-3, 0.1])), center=draw(st.booleans()),
                scale=draw(st.booleans()))


def randomized(layer, rng):
    """The layer built with random gamma, beta and moving statistics (variance > 0)."""
    for key, value in layer.params.items():
        layer.params[key] = (rng.uniform(0.5, 2, value.shape) if key in ("gamma", "moving_variance")
                             else rng.standard_normal(value.shape))
    return layer


@pytest.mark.tf
@given(case=bn_cases(), training=st.booleans(), seed=st.integers(0, 2**16))
def test_batch_normalization_matches_tf(float64, case, training, seed):
    rng = np.random.default_rng(seed)
    shape = case.pop("shape")
    x = rng.standard_normal(shape) * 3 + 1
    ours = layers.BatchNormalization(**case)
    theirs = keras.layers.BatchNormalization(**case, dtype="float64")
    ours.build((None, *shape[1:]))
    theirs.build((None, *shape[1:]))
    randomized(ours, rng)
    theirs.set_weights(ours.get_weights())
    G = rng.standard_normal(shape)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y_tf = theirs(xt, training=training)
        loss = tf.reduce_sum(y_tf * G)
    dx_tf, *dparams_tf = tape.gradient(loss, [xt, *theirs.trainable_weights])
    y = ours.forward(x, training=training)
    dx = ours.backward(G)
    assert rel(y, y_tf.numpy()) < 1e-9
    assert rel(dx, dx_tf.numpy()) < 1e-9
    assert [k for k in ours.params if k not in ours.non_trainable] == list(ours.grads)
    for key, d_tf in zip(ours.grads, dparams_tf):
        assert rel(ours.grads[key], d_tf.numpy()) < 1e-9, key
    for ours_w, theirs_w in zip(ours.get_weights(), theirs.get_weights()):     # moving stats after the step
        assert rel(ours_w, theirs_w) < 1e-12


@pytest.mark.tf
def test_frozen_batch_normalization_runs_in_inference_mode_as_keras3():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3, 3, 2))
    ours = layers.BatchNormalization(trainable=False, dtype="float64")
    ours.build((None, 3, 3, 2))
    randomized(ours, rng)
    theirs = keras.layers.BatchNormalization(dtype="float64")
    theirs.build((None, 3, 3, 2))
    theirs.set_weights(ours.get_weights())
    theirs.trainable = False
    before = ours.get_weights()
    assert rel(ours.forward(x, training=True), theirs(x, training=True).numpy()) < 1e-12
    for a, b in zip(before, ours.get_weights()):
        np.testing.assert_array_equal(a, b)


@given(case=bn_cases(), training=st.booleans(), seed=st.integers(0, 2**16))
def test_batch_normalization_central_differences(float64, case, training, seed):
    rng = np.random.default_rng(seed)
    shape = case.pop("shape")
    layer = layers.BatchNormalization(**case)
    x = distinct_values(rng, shape) * 2
    layer.build((None, *shape[1:]))
    randomized(layer, rng)
    G = rng.standard_normal(shape)

    def scalar():
        return float((layer.forward(x, training=training) * G).sum())

    layer.forward(x, training=training)
    dx = layer.backward(G)
    grads = dict(layer.grads)
    # central differences at step 1e-6 carry a round-off of ~|L|·1e-10 (a few samples normalized
    # to ±1 can make every gradient that small), hence the absolute part of the bound
    atol = 1e-9 * max(1.0, abs(scalar()))
    np.testing.assert_allclose(dx.reshape(-1), numeric_gradient(scalar, x, np.arange(x.size)), rtol=1e-6, atol=atol)
    for key, g in grads.items():
        np.testing.assert_allclose(g.reshape(-1), numeric_gradient(scalar, layer.params[key], np.arange(g.size)),
                                   rtol=1e-6, atol=atol, err_msg=key)


@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4).filter(lambda s: np.prod(s[:-1]) > 1),
       seed=st.integers(0, 2**16))
def test_batch_normalization_equals_loop_reference(float64, shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    layer = layers.BatchNormalization(epsilon=0.01)
    layer.build((None, *shape[1:]))
    randomized(layer, rng)
    gamma, beta = layer.params["gamma"], layer.params["beta"]
    y_ref, mu, var = naive.batchnorm_forward(x, gamma, beta, epsilon=0.01)
    np.testing.assert_allclose(layer.forward(x, training=True), y_ref, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(shape)
    dx_ref, dgamma_ref, dbeta_ref = naive.batchnorm_backward(x, gamma, dy, epsilon=0.01)
    np.testing.assert_allclose(layer.backward(dy), dx_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["gamma"], dgamma_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["beta"], dbeta_ref, rtol=1e-10, atol=1e-12)
    y_inf, _, _ = naive.batchnorm_forward(x, gamma, beta, layer.params["moving_mean"],
                                          layer.params["moving_variance"], epsilon=0.01)
    np.testing.assert_allclose(layer.forward(x, training=False), y_inf, rtol=1e-12, atol=1e-12)


def test_the_optimizer_never_touches_the_moving_statistics(float64):
    rng = np.random.default_rng(0)
    model = mc.Sequential([layers.Input((4, 4, 2)), layers.BatchNormalization(momentum=0.5), layers.Flatten(),
                           layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    x = rng.standard_normal((8, 4, 4, 2)) * 2 + 3
    y = np.eye(3)[rng.integers(0, 3, 8)]
    bn = model.layers[0]
    assert [name for key, _, name in model.trainable_params() if key[0] == bn.name] == ["gamma", "beta"]
    model.train_on_batch(x, y)
    batch_mean = x.mean(axis=(0, 1, 2))
    np.testing.assert_allclose(bn.params["moving_mean"], 0.5 * batch_mean, rtol=1e-12)  # the update rule alone
    np.testing.assert_allclose(bn.params["moving_variance"], 0.5 + 0.5 * x.var(axis=(0, 1, 2)), rtol=1e-12)
    assert not np.allclose(bn.params["gamma"], 1)


@pytest.mark.parametrize("kwargs,message", [({"axis": 0}, "axis=0"), ({"momentum": 2}, "momentum"),
                                             ({"epsilon": 0}, "epsilon")])
def test_batch_normalization_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.BatchNormalization(**kwargs).build((None, 3, 2))
