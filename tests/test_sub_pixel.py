"""∂L/∂X of a strided convolution, one stride-1 convolution per phase of the strides
(``kernels/sub_pixel.py``), against the loop reference, on hypothesis-drawn geometries; its
refusal of a kernel smaller than the strides; and a strided Conv2DTranspose, whose forward
it is, against im2col's."""
import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn.kernels import conv_plan, naive, sub_pixel
from minicnn.kernels.conv_plan import ConvPlan, check
from minicnn.kernels.geometry import window_geometry
from minicnn.kernels.workspace import Workspace


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 11), w=st.integers(1, 11), c=st.integers(1, 20),
       f=st.integers(1, 20), sh=st.integers(1, 3), sw=st.integers(1, 3),
       extra=st.tuples(st.integers(0, 2), st.integers(0, 2)), padding=st.sampled_from(["same", "valid"]),
       dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2**16))
def test_the_phases_give_the_loops_input_gradient(n, h, w, c, f, sh, sw, extra, padding, dtype, seed):
    """Kernels from the strides up to two taps larger (phases of one, two or three taps),
    odd and even sizes, both paddings (the phases' first rows then start on either side),
    float64 to 1e-10 and float32 to its rounding."""
    kh, kw = sh + extra[0], sw + extra[1]
    if padding == "valid" and (kh > h or kw > w):
        reject()
    oh, ow, pads = window_geometry(h, w, (kh, kw), (sh, sw), padding, "test")
    rng = np.random.default_rng(seed)
    x, W = rng.standard_normal((n, h, w, c)), rng.standard_normal((kh, kw, c, f))
    dy = rng.standard_normal((n, oh, ow, f))
    dx = np.full(x.shape, np.nan, dtype)                # every pixel must be written
    with mc.use_kernels("numba"):
        sub_pixel.conv2d_input_grad(dy.astype(dtype), W.astype(dtype), x.shape, (sh, sw), pads, dx, Workspace())
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(dx, naive.conv2d_backward(x, W, dy, (sh, sw), padding)[0], rtol=tolerance,
                               atol=tolerance)


@pytest.mark.parametrize("size, kernel, padding, expected", [
    (32, 3, "same", 1.0), (7, 3, "valid", 121 / 81), (8, 3, "valid", (12 / 9) ** 2), (7, 3, "same", (10 / 12) ** 2)])
def test_the_overwork_counts_the_phases_multiply_adds_against_col2ims(size, kernel, padding, expected):
    """Per axis Σ_phases count·K against out_size·kernel: a 'valid' border's windows read only
    padding (8 → 3 outputs: 12 tap-rows against 9), a 'same' one reads fewer; past
    FULL_CONV_MAX_OVERWORK the plan keeps col2im."""
    oh, ow, pads = window_geometry(size, size, (kernel, kernel), (2, 2), padding, "test")
    ratio = sub_pixel.overwork((1, size, size, 1), (kernel, kernel), (2, 2), pads, (oh, ow))
    assert ratio == pytest.approx(expected)
    plan = conv_plan.choose((64, size, size, 32), (kernel, kernel, 32, 32), (2, 2), pads, "numba")
    assert plan.input_grad == ("sub_pixel" if ratio <= conv_plan.FULL_CONV_MAX_OVERWORK else "col2im")


def test_a_kernel_smaller_than_the_strides_is_refused():
    """Its phases without taps are zeros, which col2im writes: the plan and the kernel say so."""
    with pytest.raises(ValueError, match=r"'sub_pixel'.*kernel \(1, 1\), strides \(2, 2\)"):
        check(ConvPlan("implicit_gemm", "sub_pixel", "implicit_gemm"), (2, 8, 8, 4), (1, 1, 4, 4), (2, 2), "numba")
    with pytest.raises(ValueError, match=r"kernel \(1, 3\), strides \(2, 2\)"):
        sub_pixel.conv2d_input_grad(np.zeros((1, 4, 4, 2)), np.zeros((1, 3, 2, 2)), (1, 8, 8, 2), (2, 2), (0, 0, 1, 1),
                                    np.empty((1, 8, 8, 2)), Workspace())


def test_a_strided_transposed_convolution_on_the_phases_equals_im2col():
    """Conv2DTranspose's forward is the ∂L/∂X of the convolution it transposes: forced onto the
    implicit GEMM, the phases compute it; its output equals im2col + col2im's."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 6, 8)).astype(np.float32)
    mc.set_seed(0)
    layer = mc.layers.Conv2DTranspose(6, 4, strides=2, padding="same", name="up")
    outputs = {}
    with mc.use_kernels("numba"):
        for algorithm in ("im2col", "implicit_gemm"):
            with mc.use_conv_algorithm(algorithm):
                outputs[algorithm] = layer.forward(x).copy()
                assert layer.algorithm.conv.input_grad == {"im2col": "col2im", "implicit_gemm": "sub_pixel"}[algorithm]
    np.testing.assert_allclose(outputs["implicit_gemm"], outputs["im2col"], rtol=1e-5, atol=1e-5)
