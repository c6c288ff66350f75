"""The Numba kernels of BatchNormalization and of the depthwise convolution equal the NumPy
path and the loop references (``kernels/naive.py``) on hypothesis-drawn shapes, and the layers
pick them under ``use_kernels('numba')``."""
import numpy as np
import pytest
from hypothesis import given, reject, settings, strategies as st

import minicnn as mc
from minicnn.kernels import batchnorm, depthwise, naive, numba_batchnorm, numba_depthwise
from minicnn.kernels.geometry import window_geometry

SETTINGS = settings(max_examples=12, deadline=None)


@SETTINGS
@given(rows=st.integers(1, 40), channels=st.integers(1, 9), use_batch=st.booleans(), relu=st.booleans(),
       seed=st.integers(0, 99))
def test_batchnorm_numba_equals_numpy_and_loops(rows, channels, use_batch, relu, seed):
    """Forward (with and without the BN + ReLU group's ReLU) and backward (from ∂L/∂y, or from
    the ReLU output's gradient), each Numba kernel against the NumPy twin and the loops."""
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, (rows, channels))          # |μ| > σ: the shifted sums must not cancel
    gamma, beta = rng.uniform(0.5, 1.5, channels), rng.normal(size=channels)
    mean, var = rng.normal(size=channels), rng.uniform(0.5, 2, channels)
    args = (x, gamma, beta, mean, var, 1e-3, use_batch)
    fast = numba_batchnorm.forward(*args, np.full_like(x, np.nan), relu)
    plain = batchnorm.forward(*args, np.full_like(x, np.nan), relu)
    for a, b in zip(fast, plain):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    y_loops, mu_loops, var_loops = naive.batchnorm_forward(x, gamma, beta, *((None, None) if use_batch else (mean, var)))
    np.testing.assert_allclose(fast[0], np.maximum(y_loops, 0) if relu else y_loops, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast[1:3], [mu_loops, var_loops], rtol=1e-10, atol=1e-12)
    dy = rng.normal(size=x.shape)
    relu_beta = beta if relu else None       # (the gate formed from x, as the forward formed a)
    for input_grad in (True, False):
        fast_b = numba_batchnorm.backward(dy, x, fast[1], fast[3], gamma, use_batch, input_grad,
                                          np.full_like(x, np.nan), relu_beta)
        plain_b = batchnorm.backward(dy, x, plain[1], plain[3], gamma, use_batch, input_grad,
                                     np.full_like(x, np.nan), relu_beta)
        assert (fast_b[2] is None) == (plain_b[2] is None) == (not input_grad)
        for a, b in zip(fast_b, plain_b):
            if a is not None:
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    dz = dy * (y_loops > 0) if relu else dy
    if use_batch:
        dx, dgamma, dbeta = naive.batchnorm_backward(x, gamma, dz)
    else:                                               # μ, σ² constants: (5)–(6) of docs/backprop.md §9
        dx, dgamma = gamma / np.sqrt(var + 1e-3) * dz, (dz * (x - mean) / np.sqrt(var + 1e-3)).sum(axis=0)
        dbeta = dz.sum(axis=0)
    np.testing.assert_allclose(fast_b[0], dbeta, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(fast_b[1], dgamma, rtol=1e-9, atol=1e-11)
    fast_dx = numba_batchnorm.backward(dy, x, fast[1], fast[3], gamma, use_batch, True, np.empty_like(x), relu_beta)[2]
    np.testing.assert_allclose(fast_dx, dx, rtol=1e-8, atol=1e-10)


@SETTINGS
@given(rows=st.integers(1, 64), channels=st.integers(1, 20), dtype=st.sampled_from(["float32", "float64"]),
       dy_float64=st.booleans(), use_batch=st.booleans(), seed=st.integers(0, 99))
def test_batchnorm_relu_gate_from_x_is_the_forwards_mask(rows, channels, dtype, dy_float64, use_batch, seed):
    """The BN + ReLU group's backward forms the ReLU's gate from x, not from the output a: on
    both kernel families it must be exactly [a > 0] of the forward that ran, also where the
    pre-activation is 0 give or take a rounding error (β set to cancel the first row, which a
    third of the rows repeat; another order of the operations flips some of these signs), and
    when ∂L/∂a comes in float64 to a float32 layer (a float64 layer above it)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, channels)).astype(dtype)
    x[rng.random(rows) < 1 / 3] = x[0]
    gamma = rng.uniform(0.5, 1.5, channels).astype(dtype)
    mean, var = rng.normal(size=channels).astype(dtype), rng.uniform(0.5, 2, channels).astype(dtype)
    dy = rng.normal(size=x.shape).astype("float64" if dy_float64 else dtype)
    for kernels in (numba_batchnorm, batchnorm):
        _, mu, _, inv_std = kernels.forward(x, gamma, gamma, mean, var, 1e-3, use_batch, np.empty_like(x))
        beta = (-(x[0].astype(float) - mu) * inv_std * gamma).astype(dtype)
        a = kernels.forward(x, gamma, beta, mean, var, 1e-3, use_batch, np.empty_like(x), True)[0]
        gated = kernels.backward(dy, x, mu, inv_std, gamma, use_batch, True, np.empty_like(x), beta)
        masked = kernels.backward(dy * (a > 0), x, mu, inv_std, gamma, use_batch, True, np.empty_like(x))
        for got, expected in zip(gated, masked):
            np.testing.assert_array_equal(got, expected)


@SETTINGS
@given(n=st.integers(1, 3), h=st.integers(3, 9), w=st.integers(3, 9),
       c=st.one_of(st.integers(1, 5), st.integers(numba_depthwise.CHANNEL_BLOCK - 2, 2 * numba_depthwise.CHANNEL_BLOCK + 3)),
       m=st.integers(1, 3), k=st.integers(1, 4), stride=st.integers(1, 3), rate=st.integers(1, 2),
       padding=st.sampled_from(["same", "valid"]), seed=st.integers(0, 99))
def test_depthwise_numba_equals_numpy_and_loops(n, h, w, c, m, k, stride, rate, padding, seed):
    """Every path of the Numba kernels: the channel blocks (m = 1, c past CHANNEL_BLOCK) and
    the channels after them, the plain loop (m > 1), taps in the padding, strides that skip
    input pixels, even kernels, and kernels of more than nine taps (∂L/∂W's tap groups)."""
    span = (k - 1) * rate + 1
    if padding == "valid" and span > min(h, w) or stride > 1 and rate > 1:
        reject()
    rng = np.random.default_rng(seed)
    x, W = rng.normal(size=(n, h, w, c)), rng.normal(size=(k, k, c, m))
    oh, ow, pads = window_geometry(h, w, (span, span), (stride, stride), padding, "test")
    args = ((stride, stride), pads, (rate, rate))
    y_fast = numba_depthwise.depthwise_forward(x, W, *args, (oh, ow))
    y_plain = depthwise.depthwise_forward(x, W, *args, (oh, ow))
    np.testing.assert_allclose(y_fast, y_plain, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y_fast, naive.depthwise_conv2d_forward(x, W, (stride, stride), padding, (rate, rate)),
                               rtol=1e-12, atol=1e-12)
    dy = rng.normal(size=y_fast.shape)
    dx_fast, dW_fast = numba_depthwise.depthwise_backward(dy, x, W, *args)
    dx_plain, dW_plain = depthwise.depthwise_backward(dy, x, W, *args)
    dx_loops, dW_loops = naive.depthwise_conv2d_backward(x, W, dy, (stride, stride), padding, (rate, rate))
    for fast, plain, loops in ((dx_fast, dx_plain, dx_loops), (dW_fast, dW_plain, dW_loops)):
        np.testing.assert_allclose(fast, plain, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(fast, loops, rtol=1e-12, atol=1e-12)
    assert numba_depthwise.depthwise_backward(dy, x, W, *args, input_grad=False)[0] is None


@pytest.mark.parametrize("h, w", [(9, 3), (3, 9), (2, 2)])
def test_depthwise_kernel_grad_where_no_window_lies_inside_the_input(h, w):
    """A 'same' 4 × 4 kernel on an image narrower than it (rows or columns, or both): no window
    lies inside x along that side, so every pixel takes ∂L/∂W's border loop."""
    rng = np.random.default_rng(0)
    c = numba_depthwise.LANES + 3
    x, W = rng.normal(size=(2, h, w, c)), rng.normal(size=(4, 4, c, 1))
    pads, dy = (1, 2, 1, 2), rng.normal(size=(2, h, w, c))
    dx_fast, dW_fast = numba_depthwise.depthwise_backward(dy, x, W, (1, 1), pads, (1, 1))
    dx_plain, dW_plain = depthwise.depthwise_backward(dy, x, W, (1, 1), pads, (1, 1))
    np.testing.assert_allclose(dW_fast, dW_plain, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx_fast, dx_plain, rtol=1e-12, atol=1e-12)


@st.composite
def weighted_models(draw):
    """(build, input shape): one weighted layer of a random kind and configuration, alone or in
    the chains the planner fuses (Conv2D + ReLU layer + max pooling, Conv2D + BN + ReLU)."""
    L = mc.layers
    kind = draw(st.sampled_from(["dense", "conv2d", "conv2d_relu_pool", "conv2d_bn_relu", "conv2d_transpose",
                                 "depthwise", "separable", "batchnorm"]))
    # wide: channels and sizes around the thresholds where the Numba convolutions switch from
    # im2col to the implicit GEMM and (3×3, stride 1) to Winograd (kernels/conv.py)
    wide = kind != "dense" and draw(st.booleans())
    n, side, channels = draw(st.integers(1, 3)), (6, 14) if wide else (3, 7), (16, 30) if wide else (1, 4)
    h, w, c = draw(st.integers(*side)), draw(st.integers(*side)), draw(st.integers(*channels))
    filters, k = draw(st.integers(*channels)), draw(st.sampled_from([3, 3, 1, 2, 5] if wide else [1, 2, 3]))
    strides = draw(st.sampled_from([1, 1, 2, 3] if wide else [1, 2, 3]))
    padding = draw(st.sampled_from(["same", "valid"]))
    window = dict(strides=strides, padding=padding, use_bias=draw(st.booleans()),
                  activation=draw(st.sampled_from([None, "relu", "tanh"])))
    if kind == "dense":
        return (lambda: [L.Dense(filters, activation=window["activation"], use_bias=window["use_bias"])],
                (n, draw(st.integers(1, 6))))
    groups = draw(st.sampled_from([g for g in (1, 2) if c % g == 0 and filters % g == 0]))
    multiplier, axis = draw(st.integers(1, 2)), draw(st.sampled_from([-1, 1, 2]))
    makers = {
        "conv2d": lambda: [L.Conv2D(filters, k, groups=groups, **window)],
        "conv2d_relu_pool": lambda: [L.Conv2D(filters, k, **window), L.ReLU(), L.MaxPooling2D(2, padding="same")],
        "conv2d_bn_relu": lambda: [L.Conv2D(filters, k, **window), L.BatchNormalization(), L.Activation("relu")],
        "conv2d_transpose": lambda: [L.Conv2DTranspose(filters, k, output_padding=None, **window)],
        "depthwise": lambda: [L.DepthwiseConv2D(k, depth_multiplier=multiplier, **window)],
        "separable": lambda: [L.SeparableConv2D(filters, k, depth_multiplier=multiplier, **window)],
        "batchnorm": lambda: [L.BatchNormalization(axis=axis, center=window["use_bias"])],
    }
    return makers[kind], (n, h, w, c)


def gradients(build, shape, family, input_grad):
    """(y, ∂L/∂x, [every weight gradient]) for L = Σ y·G on ``family``'s kernels, from the same
    random weights, input and G."""
    rng = np.random.default_rng(0)
    with mc.use_kernels(family):
        model = mc.Sequential([mc.Input(shape[1:]), *build()])
        model.set_weights([rng.uniform(0.5, 1.5, w.shape) * rng.choice([-1, 1], w.shape) if "variance" not in k
                           else rng.uniform(0.5, 1.5, w.shape) for w, k in zip(model.get_weights(),
                                                                                [w.key for w in model.weights])])
        x = rng.standard_normal(shape)
        y = model.forward(x, training=True)
        dx = model.backward(rng.standard_normal(y.shape), input_grad=input_grad)
        grads = [(type(layer).__name__, key, np.array(layer.grads[key]))
                 for layer in model.layers for key in layer.grads]
    return y, dx, grads


@settings(max_examples=40, deadline=None)
@given(case=weighted_models(), input_grad=st.booleans())
def test_every_gradient_is_the_same_on_the_three_kernel_families(case, input_grad, float64):
    """∂L/∂x and every weight gradient (biases included) of each weighted layer, alone and in
    fused chains, agree between the Numba, NumPy and reference kernels (with ``input_grad=False``,
    a training step's first layer, the weight gradients take their own path)."""
    build, shape = case
    try:
        build()[0].build((None, *shape[1:]))
        expected = gradients(build, shape, "reference", input_grad)
    except ValueError:                  # a window larger than a 'valid' input, strides with dilation
        reject()
    for family in ("numpy", "numba"):
        y, dx, grads = gradients(build, shape, family, input_grad)
        np.testing.assert_allclose(y, expected[0], rtol=1e-10, atol=1e-12, err_msg=family)
        if input_grad:
            np.testing.assert_allclose(dx, expected[1], rtol=1e-10, atol=1e-12, err_msg=family)
        else:
            assert dx is None and expected[1] is None
        assert [g[:2] for g in grads] == [g[:2] for g in expected[2]]
        for (name, key, got), (_, _, want) in zip(grads, expected[2]):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"{family}: {name}/{key}")


def test_a_convolution_is_exactly_zero_where_its_window_reads_only_zeros(float64):
    """In float64 the Numba kernels keep the exact zeros of the direct sum: Winograd F(4x4, 3x3)
    mixes a tile's pixels in its transforms, so where a 3x3 window reads only zeros it gives
    ±1e-15 instead of 0, and a ReLU after it (or after an Add of two such convolutions, as in
    examples/resnet.py at its first step, biases 0, on zero image borders) would pass the
    gradient where TensorFlow and the reference kernels block it; float64 convolutions do not
    run on Winograd unless it is forced (``conv_plan.choose``)."""
    rng = np.random.default_rng(0)
    x = np.zeros((2, 14, 14, 32))
    x[:, 3:9, 5:10] = np.maximum(rng.standard_normal((2, 6, 5, 32)), 0)      # a patch of data on a zero background
    outputs = {}
    for family in ("reference", "numba"):
        with mc.use_kernels(family):
            mc.set_seed(0)
            model = mc.Sequential([mc.Input((14, 14, 32)), mc.layers.Conv2D(32, 3, padding="same")])
            outputs[family] = model.predict(x, verbose=0)
    exact_zeros = outputs["reference"] == 0
    assert exact_zeros.sum() > 0
    np.testing.assert_array_equal(outputs["numba"][exact_zeros], 0)
