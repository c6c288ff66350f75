"""Shared checks of the layer tests: TensorFlow parity on the same weights (float64, under
tf.GradientTape) and central differences of every gradient."""
import numpy as np

from tf_helpers import rel, tf
from minicnn.study.finite_differences import check_layer

TOL = 1e-9


def assert_matches_tf(ours, theirs, x, seed=0, tol=TOL):
    """Forward, ∂L/∂x and ∂L/∂(each trainable weight) of L = Σ y·G, G random, equal to Keras's."""
    ours.build((None, *x.shape[1:]))
    theirs.build((None, *x.shape[1:]))
    if ours.params:
        theirs.set_weights(ours.get_weights())
    y = ours.forward(x)
    G = np.random.default_rng(seed + 1).standard_normal(y.shape)
    dx = ours.backward(G)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y_tf = theirs(xt)
        loss = tf.reduce_sum(y_tf * G)
    dx_tf, *dparams_tf = tape.gradient(loss, [xt, *theirs.trainable_weights])
    assert y.shape == tuple(y_tf.shape), (y.shape, y_tf.shape)
    assert rel(y, y_tf.numpy()) < tol
    assert rel(dx, dx_tf.numpy()) < tol
    assert len(dparams_tf) == len(ours.grads)
    for key, d_tf in zip(ours.params, dparams_tf):
        assert rel(ours.grads[key], d_tf.numpy()) < tol, key


def assert_gradients_check(layer, x, seed=0, tol=1e-6):
    for result in check_layer(layer, x, seed=seed):
        assert result.rel_error < tol, result
