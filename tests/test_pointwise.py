"""A 1×1 convolution's backward in one pass over ∂L/∂Y (``kernels/pointwise.py``, the plan's
∂L/∂X algorithm 'one_pass'): against the loops in float64 and, to the last bit, against the
two implicit-GEMM kernels it fuses, on hypothesis-drawn shapes (blocks of pixels that end
inside a register tile, filter counts below, at and past a panel); the rule that picks it;
its refusals; a backward asked for no ∂L/∂X."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn.kernels import implicit_gemm, naive, pointwise
from minicnn.kernels.conv import conv2d_backward, conv2d_forward
from minicnn.kernels.conv_plan import ConvPlan, check, choose
from minicnn.kernels.workspace import Workspace
from conftest import record_calls

ONE_PASS = ConvPlan("implicit_gemm", "one_pass", "implicit_gemm")
APART = ConvPlan("implicit_gemm", "implicit_gemm", "implicit_gemm")


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 17), w=st.integers(1, 17), c=st.integers(1, 40), f=st.integers(1, 70),
       dtype=st.sampled_from([np.float64, np.float32]), bias_grad=st.booleans(), seed=st.integers(0, 2**16))
@example(n=3, h=41, w=39, c=17, f=5, dtype=np.float32, bias_grad=True, seed=1)      # 10 blocks; f under a panel
@example(n=5, h=31, w=29, c=40, f=70, dtype=np.float64, bias_grad=False, seed=2)    # 9 blocks; 70 = 64 + 6
@example(n=2, h=40, w=40, c=33, f=129, dtype=np.float32, bias_grad=True, seed=3)    # 7 blocks; a panel overlap
def test_one_pass_equals_the_loops_and_the_two_kernels_apart(n, h, w, c, f, dtype, bias_grad, seed):
    """Drawn: up to 867 pixels, one or two blocks of KERNEL_GRAD_PIXELS (512); the examples:
    7–10 blocks, whose sizes are not multiples of a ∂L/∂X tile's rows; every pixel of ∂L/∂X
    written (the buffer starts as NaN)."""
    rng = np.random.default_rng(seed)
    x, W, dy = rng.standard_normal((n, h, w, c)), rng.standard_normal((1, 1, c, f)), rng.standard_normal((n, h, w, f))
    dx = np.full(x.shape, np.nan, dtype)
    with mc.use_kernels("numba"):
        dx, dW, db = pointwise.conv2d_backward(x.astype(dtype), dy.astype(dtype), W.astype(dtype), dx, Workspace(),
                                               bias_grad)
        dW_apart, db_apart = implicit_gemm.conv2d_kernel_grad(x.astype(dtype), dy.astype(dtype), (1, 1), (1, 1),
                                                              Workspace(), bias_grad)
        dx_apart = implicit_gemm.conv2d(dy.astype(dtype), W.astype(dtype).transpose(0, 1, 3, 2), (1, 1),
                                        np.empty(x.shape, dtype))
    dx_ref, dW_ref, db_ref = naive.conv2d_backward(x, W, dy, (1, 1), "valid")
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(dx, dx_ref, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(dW, dW_ref, rtol=tolerance, atol=tolerance)
    np.testing.assert_array_equal(dx, dx_apart)
    np.testing.assert_array_equal(dW, dW_apart.reshape(W.shape))
    if bias_grad:
        np.testing.assert_allclose(db, db_ref, rtol=tolerance, atol=tolerance)
        np.testing.assert_array_equal(db, db_apart)
    else:
        assert db is None and db_apart is None


def test_a_layers_backward_on_one_pass_equals_the_kernels_apart(monkeypatch):
    """Through conv2d_backward, as a layer calls it: the one pass runs where the plan says
    (and only there), ∂L/∂X, ∂L/∂W and ∂L/∂b equal those of the plan with the two passes
    apart; asked for no ∂L/∂X (a first layer), it runs ∂L/∂W alone."""
    rng = np.random.default_rng(1)
    x, W = rng.standard_normal((4, 20, 20, 24)).astype(np.float32), rng.standard_normal((1, 1, 24, 40))
    b, dy = rng.standard_normal(40).astype(np.float32), rng.standard_normal((4, 20, 20, 40)).astype(np.float32)
    W = W.astype(np.float32)
    calls = record_calls(monkeypatch, pointwise, ("conv2d_backward",))
    grads, ran = {}, {}
    with mc.use_kernels("numba"):
        for name, plan in (("one_pass", ONE_PASS), ("apart", APART)):
            _, cache = conv2d_forward(x, W, b, plan=plan)
            grads[name] = [g.copy() for g in conv2d_backward(dy, cache)]
            ran[name] = len(calls)
        _, cache = conv2d_forward(x, W, b, plan=ONE_PASS)
        no_dx = conv2d_backward(dy, cache, input_grad=False)
    assert ran == {"one_pass": 1, "apart": 1} and len(calls) == 1
    for one_pass, apart in zip(grads["one_pass"], grads["apart"]):
        np.testing.assert_array_equal(one_pass, apart)
    assert no_dx[0] is None
    np.testing.assert_array_equal(no_dx[1], grads["apart"][1])
    np.testing.assert_array_equal(no_dx[2], grads["apart"][2])


def test_a_1x1_transposed_convolution_runs_its_forward_alone():
    """Conv2DTranspose's forward is the ∂L/∂X of the convolution it transposes, with no ∂L/∂W
    pass beside it: where that convolution's plan would take the one pass, the layer keeps the
    implicit GEMM (and says so), and its output equals im2col's."""
    x = np.random.default_rng(0).standard_normal((8, 28, 28, 128)).astype(np.float32)
    layer = mc.layers.Conv2DTranspose(64, 1, name="up")
    outputs = {}
    with mc.use_kernels("numba"):
        assert choose((8, 28, 28, 64), (1, 1, 64, 128), (1, 1), (0, 0, 0, 0), "numba") == ONE_PASS
        outputs["chosen"] = layer.forward(x).copy()
        assert layer.algorithm.conv.input_grad == "implicit_gemm"
        with mc.use_conv_algorithm("im2col"):
            outputs["im2col"] = layer.forward(x).copy()
    np.testing.assert_allclose(outputs["chosen"], outputs["im2col"], rtol=1e-4, atol=1e-4)


def test_the_rule_picks_one_pass_for_a_large_1x1_convolution():
    """The separable layer's pointwise product (64 → 128 channels on 32×28×28), not a larger
    one (128 → 128), one of fewer filters (128 → 32) nor one on fewer than ONE_PASS_FROM_PIXELS
    pixels; 8 input channels
    keep col2im (∂L/∂X's 8 outputs, below the implicit GEMM's 16); stride 2 has no full
    convolution; the NumPy kernels keep im2col."""
    assert choose((32, 28, 28, 64), (1, 1, 64, 128), (1, 1), (0, 0, 0, 0), "numba") == ONE_PASS
    assert choose((32, 28, 28, 128), (1, 1, 128, 128), (1, 1), (0, 0, 0, 0), "numba") == APART    # computes
    assert choose((4, 28, 28, 64), (1, 1, 64, 128), (1, 1), (0, 0, 0, 0), "numba") == APART       # 7 blocks
    assert choose((32, 28, 28, 128), (1, 1, 128, 32), (1, 1), (0, 0, 0, 0), "numba") == APART     # 32 filters
    assert choose((32, 28, 28, 8), (1, 1, 8, 128), (1, 1), (0, 0, 0, 0), "numba").input_grad == "col2im"
    assert choose((32, 28, 28, 64), (1, 1, 64, 128), (2, 2), (0, 0, 0, 0), "numba").input_grad == "col2im"
    assert choose((32, 28, 28, 64), (1, 1, 64, 128), (1, 1), (0, 0, 0, 0), "numpy").input_grad == "col2im"


@pytest.mark.parametrize("kernel, strides, plan, why", [
    ((3, 3, 4, 4), (1, 1), ONE_PASS, r"'one_pass'.*1×1 kernel.*received kernel \(3, 3\)"),
    ((1, 1, 4, 4), (1, 1), ConvPlan("im2col", "one_pass", "im2col"), r"'one_pass'.*∂L/∂W on 'im2col'"),
    ((1, 1, 4, 4), (2, 2), ONE_PASS, r"'one_pass'.*needs stride 1"),
])
def test_one_pass_where_it_cannot_run_is_refused(kernel, strides, plan, why):
    with pytest.raises(ValueError, match=why):
        check(plan, (2, 8, 8, 4), kernel, strides, "numba", who="Conv2D layer 'c'")
