"""The fused Conv2D + ReLU + 2×2 max-pool forward (``kernels/conv_relu_pool.py``) against the
three passes it replaces and against the loop-based references, and a model whose
training step takes it against the same model run layer by layer."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minicnn as mc
from minicnn.kernels import conv_plan, conv_relu_pool, naive
from minicnn.kernels.conv import conv2d_backward, conv2d_forward
from minicnn.kernels.epilogue import bias_activation
from minicnn.kernels.pool import maxpool_forward, maxpool_relu_backward
from minicnn.kernels.workspace import Workspace
from strategies import window_configs


@given(cfg=window_configs(max_size=11, max_channels=6), filters=st.sampled_from([3, 16, 20, 40]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_fused_forward_equals_the_three_passes_and_the_loops(tile_set, cfg, filters, dtype, seed):
    """y and the switches exactly as conv → bias + ReLU → pool give them (odd sizes: the
    last row/column of conv pixels in no window; filters not a multiple of the 16- or
    32-column panel), the loops' y, and the same gradients through the two layers' backward,
    on each ISA's register tiles; every conv on the implicit GEMM, forced."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["n"], cfg["h"], cfg["w"], cfg["c"])).astype(dtype)
    W = rng.standard_normal((*cfg["kernel"], cfg["c"], filters)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    strides, padding = cfg["strides"], cfg["padding"]
    with mc.use_kernels("numba"), mc.use_conv_algorithm("implicit_gemm"):
        assume(conv_relu_pool.fusable(x, W, strides, padding, (2, 2), (2, 2), "valid"))
        y, conv_cache, pool_cache = conv_relu_pool.conv2d_relu_maxpool_forward(
            x, W, b, strides, padding, Workspace(), Workspace())
        z, cache3 = conv2d_forward(x, W, None, strides, padding)
        y3, pool3 = maxpool_forward(bias_activation(z, b, relu=True))
        np.testing.assert_array_equal(y, y3)
        np.testing.assert_array_equal(pool_cache.switches, pool3.switches)
        a_ref = np.maximum(naive.conv2d_forward(x.astype(np.float64), W.astype(np.float64), b, strides, padding), 0)
        tolerance = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(y, naive.maxpool_forward(a_ref, (2, 2), (2, 2), "valid")[0],
                                   rtol=tolerance, atol=tolerance)

        dy = rng.standard_normal(y.shape).astype(dtype)
        dz, db = maxpool_relu_backward(dy, pool_cache)
        dz3, db3 = maxpool_relu_backward(dy, pool3)
        np.testing.assert_array_equal(dz, dz3)
        np.testing.assert_array_equal(db, db3)
        dx, dW, _ = conv2d_backward(dz, conv_cache, bias_grad=False)
        dx3, dW3, _ = conv2d_backward(dz3, cache3, bias_grad=False)
        np.testing.assert_array_equal(dx, dx3)
        np.testing.assert_array_equal(dW, dW3)


def small_cnn():
    return mc.Sequential([
        mc.layers.Input((13, 12, 2)),
        mc.layers.Conv2D(16, 3, padding="same", activation="relu"),
        mc.layers.MaxPooling2D(),
        mc.layers.Conv2D(20, 2, activation="relu"),
        mc.layers.MaxPooling2D(),
        mc.layers.Flatten(),
        mc.layers.Dense(3, activation="softmax"),
    ])


def test_training_step_through_the_fused_pairs_equals_the_layer_by_layer_one():
    """Sequential.forward takes the fused kernel for both conv–pool pairs (the convs'
    outputs are never formed: their ReLU keeps none), layer_outputs does not; the loss
    gradient's backward then gives the same output and the same gradients, exactly (the
    convs forced onto the implicit GEMM, whose forward the fused kernel is)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 13, 12, 2)).astype(np.float32)
    y_true = rng.integers(0, 3, 5)
    model = small_cnn()
    model.compile(mc.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    convs = [layer for layer in model.layers if isinstance(layer, mc.layers.Conv2D)]
    grads = []
    with mc.use_kernels("numba"), mc.use_conv_algorithm("implicit_gemm"):
        for fused in (True, False):
            if fused:
                out = model.forward(x, training=True)
                assert all(layer.activation.out is None for layer in convs)
            else:
                for _, out in model.layer_outputs(x, training=True):
                    pass
                assert all(layer.activation.out is not None for layer in convs)
            out = out.copy()
            model.loss.forward(out, y_true)
            model.backward(model.loss.backward())
            grads.append((out, [{k: g.copy() for k, g in layer.grads.items()} for layer in model.layers if layer.params]))
    (out_f, grads_f), (out_u, grads_u) = grads
    np.testing.assert_array_equal(out_f, out_u)
    for layer_f, layer_u in zip(grads_f, grads_u):
        for key in layer_f:
            np.testing.assert_array_equal(layer_f[key], layer_u[key])


@pytest.mark.parametrize("case", ["numpy kernels", "guided relu", "pool 3x3", "no bias"])
def test_pairs_that_cannot_fuse_run_layer_by_layer(case):
    """Elsewhere the pair runs as two layers (the conv's ReLU keeps its output); on the Numba
    kernels the conv is forced onto the implicit GEMM, which the fused kernel would run."""
    layer_conv = mc.layers.Conv2D(16, 3, activation="relu", use_bias=case != "no bias")
    pool = mc.layers.MaxPooling2D(3 if case == "pool 3x3" else 2)
    model = mc.Sequential([mc.layers.Input((8, 8, 2)), layer_conv, pool])
    if case == "guided relu":
        layer_conv.activation.rule = "guided"
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 2)).astype(np.float32)
    numpy = case == "numpy kernels"
    with mc.use_kernels("numpy" if numpy else "numba"), mc.use_conv_algorithm(None if numpy else "implicit_gemm"):
        model.forward(x)
    assert layer_conv.activation.out is not None


def test_a_conv_that_runs_on_winograd_is_not_fused():
    """The fused kernel is the implicit GEMM's: a conv Winograd runs (measured faster, then
    the bias + ReLU and pool passes) is left to the layers; one with 8 input channels is fused."""
    x = np.zeros((64, 14, 14, 24), np.float32)
    with mc.use_kernels("numba"):
        for c, fused in ((24, False), (16, False), (8, True)):
            W = np.zeros((3, 3, c, 48), np.float32)
            plan = conv_plan.choose(x[..., :c].shape, W.shape, (1, 1), (1, 1, 1, 1), "numba")
            assert (plan.forward == "winograd") is not fused
            assert conv_relu_pool.fusable(x[..., :c], W, (1, 1), "same", (2, 2), (2, 2), "valid") is fused
