"""Conv2D with dilation_rate and groups, Conv2DTranspose, DepthwiseConv2D and SeparableConv2D:
TensorFlow parity in float64 on hypothesis-drawn configurations (strides 1–3, both paddings,
even kernels, depth multipliers), central differences, and the loop references."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import layers
from minicnn.kernels import naive
from minicnn.kernels.conv_variants import dilated_kernel
from minicnn.kernels.geometry import window_geometry
from conftest import distinct_values
from layer_checks import assert_gradients_check, assert_matches_tf
from tf_helpers import keras

SEEDS = st.integers(0, 2**16)


@st.composite
def window_cases(draw, dilation=True, equal_strides=False):
    """A window layer's arguments and an input it accepts: dilation > 1 only with stride 1 (as
    Keras); ``equal_strides`` for TF's depthwise kernel, which knows no other."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    rate = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation and draw(st.booleans()) else (1, 1)
    strides = (1, 1) if rate != (1, 1) else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = (strides[0], strides[0]) if equal_strides else strides
    padding = draw(st.sampled_from(["valid", "same"]))
    extent = [r * (k - 1) + 1 for k, r in zip(kernel, rate)]
    h = draw(st.integers(extent[0] if padding == "valid" else 1, extent[0] + 6))
    w = draw(st.integers(extent[1] if padding == "valid" else 1, extent[1] + 6))
    window_geometry(h, w, extent, strides, padding)
    return dict(kernel=kernel, rate=rate, strides=strides, padding=padding, n=draw(st.integers(1, 3)), h=h, w=w)


def image(case, channels, seed):
    return distinct_values(np.random.default_rng(seed), (case["n"], case["h"], case["w"], channels))


def to_device(layer, kernels):
    layer.params = {k: kernels(v) for k, v in layer.params.items()}


@given(case=window_cases(), groups=st.integers(1, 3), per_group=st.integers(1, 2), filters_per_group=st.integers(1, 2),
       activation=st.sampled_from([None, "relu"]), seed=SEEDS)
def test_conv2d_dilation_and_groups_match_tf(cpu_kernels, float64, case, groups, per_group, filters_per_group,
                                             activation, seed):
    args = dict(filters=groups * filters_per_group, kernel_size=case["kernel"], strides=case["strides"],
                padding=case["padding"], dilation_rate=case["rate"], groups=groups, activation=activation)
    x = image(case, groups * per_group, seed)
    assert_matches_tf(layers.Conv2D(**args), keras.layers.Conv2D(**args, dtype="float64"), x, seed)


@given(case=window_cases(), groups=st.integers(1, 2), seed=SEEDS)
def test_conv2d_dilation_and_groups_central_differences(cpu_kernels, float64, case, groups, seed):
    layer = layers.Conv2D(2 * groups, case["kernel"], case["strides"], case["padding"], dilation_rate=case["rate"],
                          groups=groups)
    assert_gradients_check(layer, image(case, 2 * groups, seed), seed)


def test_a_dilated_conv_under_a_max_pool_is_not_fused(cpu_kernels, float64):
    """The fused conv + ReLU + pool kernel knows the plain convolution only."""
    x = distinct_values(np.random.default_rng(0), (2, 12, 12, 3))
    model = mc.Sequential([layers.Input((12, 12, 3)), layers.Conv2D(4, 3, dilation_rate=2, activation="relu"),
                           layers.MaxPooling2D()])
    twin = keras.Sequential([keras.Input((12, 12, 3), dtype="float64"), keras.layers.Conv2D(4, 3, dilation_rate=2, activation="relu",
                                                                            dtype="float64"),
                             keras.layers.MaxPooling2D(dtype="float64")])
    twin.set_weights(model.get_weights())
    np.testing.assert_allclose(model.forward(x), twin(x).numpy(), rtol=1e-10, atol=1e-12)
    (group,) = model.plan().groups                       # the ReLU's gate still runs on the pooled gradient,
    assert not group.group.one_kernel                    # but the forward is the two layers' own


@pytest.mark.parametrize("kwargs,message", [({"groups": 3}, "groups must be a positive int dividing filters"),
                                            ({"dilation_rate": 2, "strides": 2}, "cannot be combined")])
def test_conv2d_rejects_bad_variants(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.Conv2D(4, 3, **kwargs)


def test_conv2d_groups_must_divide_the_input_channels():
    with pytest.raises(ValueError, match="groups=2 must divide the input channels, received 3"):
        layers.Conv2D(4, 3, groups=2).build((None, 5, 5, 3))


@given(case=window_cases(dilation=False), c=st.integers(1, 3), f=st.integers(1, 3), seed=SEEDS,
       output_padding=st.sampled_from([None, 0, 1, 2, (0, 1)]), activation=st.sampled_from([None, "relu"]))
def test_conv2d_transpose_matches_tf(kernels, float64, case, c, f, seed, output_padding, activation):
    """(TF's CPU kernels have no dilated transposed convolution: the dilated ones are checked by
    central differences and against the loop reference below.)"""
    op = (output_padding,) * 2 if isinstance(output_padding, int) else output_padding
    assume(op is None or all(o < s for o, s in zip(op, case["strides"])))
    args = dict(filters=f, kernel_size=case["kernel"], strides=case["strides"], padding=case["padding"],
                output_padding=output_padding, dilation_rate=case["rate"], activation=activation)
    x = image(case, c, seed)
    try:
        expected_shape = keras.layers.Conv2DTranspose(**args, dtype="float64")(x).shape
    except Exception:                       # Keras / TF reject this output_padding for this input
        with pytest.raises(ValueError, match="output_padding"):
            layers.Conv2DTranspose(**args).build((None, *x.shape[1:]))
        return
    ours = layers.Conv2DTranspose(**args)
    ours.build((None, *x.shape[1:]))
    assert ours.output_shape == (None, *expected_shape[1:])
    if kernels is np.asarray:
        assert_matches_tf(ours, keras.layers.Conv2DTranspose(**args, dtype="float64"), x, seed)
    else:                                   # the Numba kernels (or the GPU): equal to the NumPy path
        reference = layers.Conv2DTranspose(**args)
        reference.build((None, *x.shape[1:]))
        reference.set_weights(ours.get_weights())
        with mc.use_kernels("numpy"):
            y_ref = reference.forward(x)
        to_device(ours, kernels)
        np.testing.assert_allclose(mc.backend.to_numpy(ours.forward(kernels(x))), y_ref, rtol=1e-10, atol=1e-12)


@given(case=window_cases(), seed=SEEDS)
def test_conv2d_transpose_central_differences_and_loop_reference(cpu_kernels, float64, case, seed):
    x = image(case, 2, seed)
    layer = layers.Conv2DTranspose(3, case["kernel"], case["strides"], case["padding"], dilation_rate=case["rate"],
                                   use_bias=False)
    assert_gradients_check(layer, x, seed)
    y = layer.forward(x)
    # The transposed convolution is the input gradient of the convolution it transposes.
    stand_in = np.zeros(y.shape)
    W_d = dilated_kernel(layer.params["kernel"], case["rate"])
    expected, _, _ = naive.conv2d_backward(stand_in, W_d, x, case["strides"], case["padding"])
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-13)


@given(case=window_cases(), c=st.integers(1, 3), multiplier=st.integers(1, 3), seed=SEEDS,
       activation=st.sampled_from([None, "relu", "tanh"]), use_bias=st.booleans())
def test_depthwise_conv2d_matches_tf_and_the_loop_reference(float64, case, c, multiplier, seed, activation, use_bias):
    args = dict(kernel_size=case["kernel"], strides=case["strides"], padding=case["padding"],
                depth_multiplier=multiplier, dilation_rate=case["rate"], activation=activation, use_bias=use_bias)
    x = image(case, c, seed)
    if case["strides"][0] == case["strides"][1]:          # TF's depthwise kernel knows no other strides
        assert_matches_tf(layers.DepthwiseConv2D(**args), keras.layers.DepthwiseConv2D(**args, dtype="float64"),
                          x, seed)
    plain = layers.DepthwiseConv2D(**{**args, "activation": None, "use_bias": False})
    plain.build((None, *x.shape[1:]))
    W = plain.params["kernel"]
    y = plain.forward(x)
    np.testing.assert_allclose(y, naive.depthwise_conv2d_forward(x, W, case["strides"], case["padding"], case["rate"]),
                               rtol=1e-12, atol=1e-13)
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    dx_ref, dW_ref = naive.depthwise_conv2d_backward(x, W, dy, case["strides"], case["padding"], case["rate"])
    np.testing.assert_allclose(plain.backward(dy), dx_ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(plain.grads["kernel"], dW_ref, rtol=1e-12, atol=1e-13)


@given(case=window_cases(equal_strides=True), c=st.integers(1, 3), multiplier=st.integers(1, 2), filters=st.integers(1, 3),
       seed=SEEDS,
       activation=st.sampled_from([None, "relu"]), use_bias=st.booleans())
def test_separable_conv2d_matches_tf(float64, case, c, multiplier, filters, seed, activation, use_bias):
    args = dict(filters=filters, kernel_size=case["kernel"], strides=case["strides"], padding=case["padding"],
                depth_multiplier=multiplier, dilation_rate=case["rate"], activation=activation, use_bias=use_bias)
    x = image(case, c, seed)
    ours = layers.SeparableConv2D(**args)
    theirs = keras.layers.SeparableConv2D(**args, dtype="float64")
    assert_matches_tf(ours, theirs, x, seed)
    assert [tuple(w.shape) for w in theirs.get_weights()] == [tuple(v.shape) for v in ours.params.values()]


@given(case=window_cases(), seed=SEEDS)
def test_depthwise_and_separable_central_differences(float64, case, seed):
    x = image(case, 2, seed)
    common = dict(kernel_size=case["kernel"], strides=case["strides"], padding=case["padding"], depth_multiplier=2,
                  dilation_rate=case["rate"], bias_initializer="glorot_uniform")
    assert_gradients_check(layers.DepthwiseConv2D(**common), x, seed)
    assert_gradients_check(layers.SeparableConv2D(3, **common), x, seed)
