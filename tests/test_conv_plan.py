"""The one choice point for the convolution algorithm (``kernels/conv_plan.py``): the rule
it applies, a choice made once per layer and input shape and kept in the layer, the
backward running the forward's choice, the public override and its errors, and what
``summary(details=True)`` and ``trace`` show."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn.kernels import conv_plan, implicit_gemm, winograd
from minicnn.kernels.conv_plan import ConvPlan, choose
from conftest import record_calls
from strategies import window_configs
from test_ops_reference import check_conv_equals_loops


@pytest.mark.parametrize("x_shape, kernel, strides, pads, family, expected", [
    # MNIST's second conv at batch 256: 3×3, stride 1, 24 → 48 channels, 10⁸ multiply-adds
    ((256, 14, 14, 24), (3, 3, 24, 48), (1, 1), (1, 1, 1, 1), "numba", ("winograd", "winograd", "winograd")),
    # its first: one input channel, too few for Winograd and for ∂L/∂X's implicit GEMM
    ((256, 28, 28, 1), (3, 3, 1, 24), (1, 1), (1, 1, 1, 1), "numba", ("implicit_gemm", "col2im", "implicit_gemm")),
    # 16 → 32 channels: Winograd's least (16) on both sides
    ((64, 16, 16, 16), (3, 3, 16, 32), (1, 1), (1, 1, 1, 1), "numba", ("winograd", "winograd", "winograd")),
    # 16 → 8 channels: below Winograd's 16, ∂L/∂X (8 → 16 channels) on the implicit GEMM
    ((64, 16, 16, 16), (3, 3, 16, 8), (1, 1), (1, 1, 1, 1), "numba", ("implicit_gemm", "implicit_gemm", "implicit_gemm")),
    # stride 2: ∂L/∂X one convolution per phase of the strides; a 1×1 kernel leaves phases without
    # taps (col2im's); 8 input channels keep col2im (∂L/∂X's 8 outputs, below the implicit GEMM's 16)
    ((64, 16, 16, 32), (3, 3, 32, 32), (2, 2), (0, 1, 0, 1), "numba", ("implicit_gemm", "sub_pixel", "implicit_gemm")),
    ((64, 16, 16, 32), (1, 1, 32, 64), (2, 2), (0, 0, 0, 0), "numba", ("implicit_gemm", "col2im", "implicit_gemm")),
    ((64, 16, 16, 8), (3, 3, 8, 64), (2, 2), (0, 1, 0, 1), "numba", ("implicit_gemm", "col2im", "implicit_gemm")),
    # a 'valid' 3×3 on a 6×6 input: the full convolution would compute 36 pixels for col2im's 16
    ((4096, 6, 6, 32), (3, 3, 32, 32), (1, 1), (0, 0, 0, 0), "numba", ("winograd", "col2im", "winograd")),
    # small: im2col + BLAS; and on the NumPy kernels, always
    ((2, 8, 8, 3), (3, 3, 3, 4), (1, 1), (1, 1, 1, 1), "numba", ("im2col", "col2im", "im2col")),
    ((256, 14, 14, 24), (3, 3, 24, 48), (1, 1), (1, 1, 1, 1), "numpy", ("im2col", "col2im", "im2col")),
])
def test_the_rule_picks_per_pass(x_shape, kernel, strides, pads, family, expected):
    assert choose(x_shape, kernel, strides, pads, family) == expected


def test_float64_runs_the_direct_sums_where_float32_runs_winograd():
    """Winograd's rounding breaks exact zeros (test_kernels_bn_depthwise), which float64 is for."""
    shape, kernel = (256, 14, 14, 24), (3, 3, 24, 48)
    assert choose(shape, kernel, (1, 1), (1, 1, 1, 1), "numba", dtype=np.float32).forward == "winograd"
    assert choose(shape, kernel, (1, 1), (1, 1, 1, 1), "numba", dtype=np.float64) == \
        ("implicit_gemm", "implicit_gemm", "implicit_gemm")
    layer = mc.layers.Conv2D(48, 3, padding="same")
    with mc.use_kernels("numba"):
        for dtype, forward in ((np.float64, "implicit_gemm"), (np.float32, "winograd")):
            layer.plan_for(np.zeros(shape, dtype))
            assert layer.algorithm.forward == forward, dtype


@pytest.mark.parametrize("kernel_size, strides, kernels, algorithm, why", [
    (5, 1, "numba", "winograd", "3×3 kernel and stride 1"),
    (3, 2, "numba", "winograd", "3×3 kernel and stride 1"),
    (3, 1, "numpy", "winograd", "Numba kernels"),
    (3, 1, "numpy", "implicit_gemm", "Numba kernels"),
])
def test_a_forced_algorithm_that_cannot_run_names_the_layer(kernel_size, strides, kernels, algorithm, why):
    layer = mc.layers.Conv2D(4, kernel_size, strides=strides, padding="same", name="edge_conv")
    x = np.zeros((2, 9, 9, 3), np.float32)
    with mc.use_kernels(kernels), mc.use_conv_algorithm(algorithm), pytest.raises(ValueError) as error:
        layer.forward(x)
    assert "edge_conv" in str(error.value) and repr(algorithm) in str(error.value) and why in str(error.value)


def test_unknown_algorithms_are_refused():
    with pytest.raises(ValueError, match="fft"):
        with mc.use_conv_algorithm("fft"):
            pass
    with mc.use_kernels("numba"), mc.use_conv_algorithm(ConvPlan("im2col", "full", "im2col")):
        with pytest.raises(ValueError, match="'full'"):
            mc.layers.Conv2D(4, 3).forward(np.zeros((1, 5, 5, 2), np.float32))


def test_the_choice_is_made_once_per_input_shape_and_kernel_family(monkeypatch):
    """Kept in ``layer.algorithm``: decided again only when the input's shape, the kernel
    family or the forced algorithm changes."""
    decisions = record_calls(monkeypatch, conv_plan, ("choose",))
    layer = mc.layers.Conv2D(8, 3, padding="same")
    x = np.random.default_rng(0).standard_normal((8, 12, 12, 16)).astype(np.float32)
    with mc.use_kernels("numba"):
        for _ in range(3):
            layer.backward(layer.forward(x, training=True))
        assert len(decisions) == 1 and layer.algorithm == ("implicit_gemm",) * 3
        layer.forward(x[:1])
        assert len(decisions) == 2 and layer.algorithm == ("im2col", "col2im", "im2col")
        with mc.use_conv_algorithm("winograd"):
            layer.forward(x[:1])
        assert len(decisions) == 3 and layer.algorithm == ("winograd",) * 3
    with mc.use_kernels("numpy"):
        layer.forward(x)
    assert len(decisions) == 4 and layer.algorithm == ("im2col", "col2im", "im2col")


def test_the_backward_runs_what_the_forward_chose(monkeypatch):
    """A forward on Winograd (forced) is followed by Winograd's ∂L/∂W and ∂L/∂X even where
    the backward runs outside the forcing context, and nothing is decided again."""
    calls = record_calls(monkeypatch, winograd, ("conv2d", "conv2d_kernel_grad"))
    gemm = record_calls(monkeypatch, implicit_gemm, ("conv2d", "conv2d_kernel_grad"))
    decisions = record_calls(monkeypatch, conv_plan, ("choose",))
    layer = mc.layers.Conv2D(8, 3, padding="same")
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 4)).astype(np.float32)
    with mc.use_kernels("numba"):
        with mc.use_conv_algorithm("winograd"):
            y = layer.forward(x, training=True)
        layer.backward(np.ones_like(y))
    assert sorted(calls) == ["conv2d", "conv2d", "conv2d_kernel_grad"] and gemm == [] and len(decisions) == 1


@given(cfg=window_configs(max_channels=20), seed=st.integers(0, 2**16), relu=st.booleans())
def test_conv_forced_onto_im2col_on_the_numba_kernels_equals_loops(cfg, seed, relu):
    """The third algorithm, forced where the rule would pick another (the implicit GEMM and
    Winograd have their own: test_ops_reference.py, test_winograd.py)."""
    with mc.use_kernels("numba"), mc.use_conv_algorithm("im2col"):
        check_conv_equals_loops(np.asarray, cfg, seed, relu=relu)


def small_model():
    return mc.Sequential([mc.layers.Input((8, 8, 3)), mc.layers.Conv2D(8, 3, padding="same", activation="relu",
                                                                      name="conv"),
                          mc.layers.Conv2D(4, 3, strides=2, name="strided"), mc.layers.Flatten(),
                          mc.layers.Dense(2, activation="softmax")])


def test_summary_and_trace_show_the_kept_choice():
    model = small_model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    assert "Algorithm of conv: not run yet" in model.summary(details=True, print_fn=None)
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype(np.float32)
    y = np.array([0, 1, 1, 0])
    with mc.use_kernels("numba"), mc.use_conv_algorithm("implicit_gemm"):
        rows = mc.trace(model, x, y, verbose=False)
    conv, strided = model.get_layer("conv"), model.get_layer("strided")
    assert conv.algorithm == ("implicit_gemm",) * 3
    assert strided.algorithm == ("implicit_gemm", "sub_pixel", "implicit_gemm")
    assert [r["algorithm"] for r in rows[:2]] == ["implicit GEMM", "implicit GEMM; ∂L/∂X: a full conv per stride phase"]
    text = model.summary(details=True, print_fn=None)
    assert "Algorithm of conv: implicit GEMM\n" in text + "\n"
    assert "Algorithm of strided: implicit GEMM; ∂L/∂X: a full conv per stride phase" in text


def test_a_transposed_convolution_keeps_the_plan_of_the_convolution_it_transposes():
    """Conv2DTranspose decides its plan once per input shape, as Conv2D: the plan of the
    convolution it transposes (its forward is that convolution's ∂L/∂X), which a forced
    algorithm sets on every pass; a forced algorithm it cannot run names it; the forced
    passes give the numbers the chosen ones give (forward and every gradient); summary and
    trace name the roles."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6, 24)).astype(np.float32)
    dy = rng.standard_normal((2, 6, 6, 24)).astype(np.float32)
    mc.set_seed(0)
    layer = mc.layers.Conv2DTranspose(24, 3, padding="same", name="up")
    with mc.use_kernels("numba"):
        chosen = layer.forward(x).copy(), layer.backward(dy).copy(), layer.grads["kernel"].copy()
        plan = layer.algorithm
        assert plan.conv == choose((2, 6, 6, 24), (3, 3, 24, 24), (1, 1), (1, 1, 1, 1), "numba")
        layer.forward(x)
        assert layer.algorithm is plan                        # not decided again
        for algorithm, forced in [("im2col", ("im2col", "col2im", "im2col")),
                                  ("implicit_gemm", ("implicit_gemm",) * 3), ("winograd", ("winograd",) * 3)]:
            with mc.use_conv_algorithm(algorithm):
                y = layer.forward(x)
                assert layer.algorithm.conv == forced
            np.testing.assert_allclose(y, chosen[0], rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(layer.backward(dy), chosen[1], rtol=1e-4, atol=1e-4)   # outside: the same plan
            np.testing.assert_allclose(layer.grads["kernel"], chosen[2], rtol=1e-4, atol=1e-3)
        strided = mc.layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="strided_up")
        with mc.use_conv_algorithm("winograd"), pytest.raises(ValueError, match="strided_up.*'winograd'.*stride 1"):
            strided.forward(x)
    model = mc.Sequential([mc.layers.Input((6, 6, 24)), layer, mc.layers.GlobalAveragePooling2D(),
                           mc.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with mc.use_kernels("numba"), mc.use_conv_algorithm("implicit_gemm"):
        rows = mc.trace(model, x, np.array([0, 1]), verbose=False)
    described = ("transposed convolution: forward = ∂L/∂X of the convolution it transposes, full conv on the "
                 "implicit GEMM; ∂L/∂X = its forward, implicit GEMM; ∂L/∂W: implicit GEMM")
    assert rows[0]["algorithm"] == described
    assert f"Algorithm of up: {described}" in model.summary(details=True, print_fn=None)
