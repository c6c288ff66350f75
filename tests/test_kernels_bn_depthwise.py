"""The Numba kernels of BatchNormalization and of the depthwise convolution equal the NumPy
path and the loop references (``kernels/naive.py``) on hypothesis-drawn shapes, and the layers
pick them under ``use_kernels('numba')``."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minicnn as mc
from minicnn.kernels import batchnorm, depthwise, naive, numba_batchnorm, numba_depthwise
from minicnn.kernels.geometry import window_geometry

SETTINGS = settings(max_examples=12, deadline=None)


@SETTINGS
@given(rows=st.integers(1, 40), channels=st.integers(1, 9), use_batch=st.booleans(), seed=st.integers(0, 99))
def test_batchnorm_numba_equals_numpy_and_loops(rows, channels, use_batch, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, (rows, channels))          # |μ| > σ: the shifted sums must not cancel
    gamma, beta = rng.uniform(0.5, 1.5, channels), rng.normal(size=channels)
    mean, var = rng.normal(size=channels), rng.uniform(0.5, 2, channels)
    fast = numba_batchnorm.forward(x, gamma, beta, mean, var, 1e-3, use_batch)
    plain = batchnorm.forward(x, gamma, beta, mean, var, 1e-3, use_batch)
    for a, b in zip(fast, plain):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    y_loops, mu_loops, var_loops = naive.batchnorm_forward(x, gamma, beta, *((None, None) if use_batch else (mean, var)))
    np.testing.assert_allclose(fast[0], y_loops, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast[2:4], [mu_loops, var_loops], rtol=1e-10, atol=1e-12)
    dy = rng.normal(size=x.shape)
    for input_grad in (True, False):
        fast_b = numba_batchnorm.backward(dy, fast[1], fast[4], gamma, use_batch, input_grad)
        plain_b = batchnorm.backward(dy, plain[1], plain[4], gamma, use_batch, input_grad)
        for a, b in zip(fast_b, plain_b):
            assert (a is None) == (b is None) == (not input_grad and a is None)
            if a is not None:
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    if use_batch:
        dx, dgamma, dbeta = naive.batchnorm_backward(x, gamma, dy)
        np.testing.assert_allclose(fast_b[0], dbeta, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(fast_b[1], dgamma, rtol=1e-9, atol=1e-11)
        fast_dx = numba_batchnorm.backward(dy, fast[1], fast[4], gamma, True, True)[2]
        np.testing.assert_allclose(fast_dx, dx, rtol=1e-8, atol=1e-10)


@SETTINGS
@given(n=st.integers(1, 3), h=st.integers(3, 9), w=st.integers(3, 9), c=st.integers(1, 5), m=st.integers(1, 3),
       k=st.integers(1, 3), stride=st.integers(1, 3), rate=st.integers(1, 2), padding=st.sampled_from(["same", "valid"]),
       seed=st.integers(0, 99))
def test_depthwise_numba_equals_numpy_and_loops(n, h, w, c, m, k, stride, rate, padding, seed):
    span = (k - 1) * rate + 1
    if padding == "valid" and span > min(h, w) or stride > 1 and rate > 1:
        return
    rng = np.random.default_rng(seed)
    x, W = rng.normal(size=(n, h, w, c)), rng.normal(size=(k, k, c, m))
    oh, ow, pads = window_geometry(h, w, (span, span), (stride, stride), padding, "test")
    args = ((stride, stride), pads, (rate, rate))
    y_fast, pad_fast = numba_depthwise.depthwise_forward(x, W, *args, (oh, ow))
    y_plain, pad_plain = depthwise.depthwise_forward(x, W, *args, (oh, ow))
    np.testing.assert_allclose(y_fast, y_plain, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y_fast, naive.depthwise_conv2d_forward(x, W, (stride, stride), padding, (rate, rate)),
                               rtol=1e-12, atol=1e-12)
    dy = rng.normal(size=y_fast.shape)
    dx_fast, dW_fast = numba_depthwise.depthwise_backward(dy, pad_fast, W, *args)
    dx_plain, dW_plain = depthwise.depthwise_backward(dy, pad_plain, W, *args)
    dx_loops, dW_loops = naive.depthwise_conv2d_backward(x, W, dy, (stride, stride), padding, (rate, rate))
    for fast, plain, loops in ((dx_fast, dx_plain, dx_loops), (dW_fast, dW_plain, dW_loops)):
        np.testing.assert_allclose(fast, plain, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(fast, loops, rtol=1e-12, atol=1e-12)
    assert numba_depthwise.depthwise_backward(dy, pad_fast, W, *args, input_grad=False)[0] is None


@pytest.mark.parametrize("layer", [lambda: mc.layers.BatchNormalization(axis=1),
                                   lambda: mc.layers.SeparableConv2D(4, 3, strides=2, padding="same")])
def test_layers_give_the_same_result_on_both_kernel_families(layer, float64):
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3))
    results = {}
    for family in ("numpy", "numba"):
        mc.set_seed(0)
        with mc.use_kernels(family):
            model = mc.Sequential([mc.Input((6, 6, 3)), layer()])
            model.compile("sgd", "mse")
            y = model(x, training=True)
            model.train_on_batch(x, np.zeros_like(np.asarray(y)))
            results[family] = (np.asarray(y), model.get_weights())
    np.testing.assert_allclose(results["numba"][0], results["numpy"][0], rtol=1e-10, atol=1e-12)
    for a, b in zip(results["numba"][1], results["numpy"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
