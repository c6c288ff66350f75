"""Fast ops (NumPy and Numba kernels; CUDA on a GPU) equal the loop references."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import backend
from minicnn.kernels import naive
from minicnn.kernels.conv import conv2d_backward, conv2d_forward
from minicnn.kernels.pool import maxpool_backward, maxpool_forward
from strategies import window_configs
from conftest import distinct_values, record_calls


def host(a):
    return backend.to_numpy(a)


@given(cfg=window_configs(), seed=st.integers(0, 2**16), relu=st.booleans())
def test_conv_forward_and_backward_equal_loops(kernels, cfg, seed, relu):
    check_conv_equals_loops(kernels, cfg, seed, relu=relu)


@given(cfg=window_configs(max_channels=20), seed=st.integers(0, 2**16))
def test_conv_through_the_numba_matmul_equals_loops(cfg, seed, monkeypatch):
    """Conv2D's products on the register-blocked Numba kernel, forced for every size
    (by default only products of ≥ NUMBA_MATMUL_FROM multiply-adds take it, or of ≥
    NARROW_NUMBA_MATMUL_FROM into at most NARROW_COLUMNS columns)."""
    from minicnn.kernels import matmul
    monkeypatch.setattr(matmul, "NUMBA_MATMUL_FROM", 0)
    monkeypatch.setattr(matmul, "NARROW_NUMBA_MATMUL_FROM", 0)
    with mc.use_kernels("numba"):
        check_conv_equals_loops(np.asarray, cfg, seed)


@given(cfg=window_configs(max_channels=20), filters=st.sampled_from([None, 5, 16, 20, 24, 40, 64, 70, 100, 124]),
       seed=st.integers(0, 2**16), budget=st.sampled_from([None, 1]), relu=st.booleans(), span=st.sampled_from([3, 64]))
def test_conv_through_the_implicit_gemm_equals_loops(tile_set, cfg, filters, seed, budget, relu, span, monkeypatch):
    """Conv2D on the Numba implicit GEMM, on each ISA's register tiles — the forward; ∂L/∂x
    for stride 1, and per phase of the strides for a kernel at least as large as them
    (``kernels/sub_pixel.py``; a smaller kernel: col2im); ∂L/∂W (fewer filters than a panel:
    zero-padded to one, 5 on the 4 × 16 tile, on AVX2's ∂L/∂W on the 4 × 8, 20 on the 3 × 24;
    more, not a multiple: the last panel overlaps the one before, 40 on 4 × 16, 70 on 3 × 24;
    on AVX-512's 8 × 16: 5, 16 and 100; on its 3 × 48: 40; on AVX2's 3 × 24 there: 20 and 70;
    on its 4 × 64: 64, and 124 with a last panel of 60) — forced for every size and channel
    count (by default only products of ≥ 10⁶ multiply-adds take it), ∂L/∂W summed over blocks
    of ≤ 7 pixels (rows and images split across blocks), each taken 3 pixels at a time (a tile
    continues its sum) or whole; budget 1 would otherwise have chunked the batch.  The bias
    and the ReLU are applied as the forward stores, and ∂L/∂b is summed by ∂L/∂W's kernel."""
    from minicnn.kernels import implicit_gemm
    monkeypatch.setattr(implicit_gemm, "KERNEL_GRAD_PIXELS", 7)
    monkeypatch.setattr(implicit_gemm, "KERNEL_GRAD_SPAN", span)
    from minicnn.kernels import epilogue, sub_pixel
    calls = record_calls(monkeypatch, implicit_gemm, ("conv2d", "conv2d_kernel_grad"))
    phases = record_calls(monkeypatch, sub_pixel, ("conv2d_input_grad",))
    passes = record_calls(monkeypatch, epilogue, ("bias_activation", "bias_grad"))
    cfg = {**cfg, "f": filters or cfg["f"]}
    with mc.use_kernels("numba"), mc.use_conv_algorithm("implicit_gemm"):
        check_conv_equals_loops(np.asarray, cfg, seed, budget, relu)
    strided, kernel_covers_strides = cfg["strides"] != (1, 1), min(np.subtract(cfg["kernel"], cfg["strides"])) >= 0
    input_grad = ["conv2d_input_grad"] if strided and kernel_covers_strides else [] if strided else ["conv2d"]
    assert sorted(calls + phases) == sorted(["conv2d", "conv2d_kernel_grad", *input_grad])
    assert passes == []                  # (no pass of the epilogue's own over y or ∂L/∂y)


def check_conv_equals_loops(kernels, cfg, seed, budget=None, relu=False):
    """Forward (with its bias, and its ReLU when ``relu``: the fused epilogue), ∂L/∂x, ∂L/∂W
    and ∂L/∂b within 1e-10 of the loops, in float64."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["n"], cfg["h"], cfg["w"], cfg["c"]))
    W = rng.standard_normal((*cfg["kernel"], cfg["c"], cfg["f"]))
    b = rng.standard_normal(cfg["f"])
    y, cache = conv2d_forward(kernels(x), kernels(W), kernels(b), cfg["strides"], cfg["padding"], budget=budget,
                              relu=relu)
    y_ref = naive.conv2d_forward(x, W, b, cfg["strides"], cfg["padding"])
    y_ref = np.maximum(y_ref, 0) if relu else y_ref
    np.testing.assert_allclose(host(y), y_ref, rtol=1e-10, atol=1e-10)
    dy = rng.standard_normal(y_ref.shape)
    dx, dW, db = conv2d_backward(kernels(dy), cache)
    dx_ref, dW_ref, db_ref = naive.conv2d_backward(x, W, dy, cfg["strides"], cfg["padding"])
    np.testing.assert_allclose(host(dx), dx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(host(dW), dW_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(host(db), db_ref, rtol=1e-10, atol=1e-10)


@given(cfg=window_configs(max_channels=3), seed=st.integers(0, 2**16))
def test_conv_in_chunks_equals_whole_batch(kernels, cfg, seed):
    """With a tiny im2col budget the batch is processed image by image: same results."""
    rng = np.random.default_rng(seed)
    x = kernels(rng.standard_normal((cfg["n"], cfg["h"], cfg["w"], cfg["c"])))
    W = kernels(rng.standard_normal((*cfg["kernel"], cfg["c"], cfg["f"])))
    y, cache = conv2d_forward(x, W, None, cfg["strides"], cfg["padding"])
    y_c, cache_c = conv2d_forward(x, W, None, cfg["strides"], cfg["padding"], budget=1)
    assert cache_c.chunk == 1 and (cache_c.cols is None) == (cfg["n"] > 1)
    dy = kernels(rng.standard_normal(y.shape))
    for whole, chunked in zip((y, *conv2d_backward(dy, cache)[:2]), (y_c, *conv2d_backward(dy, cache_c)[:2])):
        np.testing.assert_allclose(host(chunked), host(whole), rtol=1e-10, atol=1e-10)


@given(cfg=window_configs(max_kernel=4), seed=st.integers(0, 2**16))
def test_maxpool_forward_and_backward_equal_loops(kernels, cfg, seed):
    rng = np.random.default_rng(seed)
    x = distinct_values(rng, (cfg["n"], cfg["h"], cfg["w"], cfg["c"]))
    y, cache = maxpool_forward(kernels(x), cfg["kernel"], cfg["strides"], cfg["padding"])
    y_ref, _ = naive.maxpool_forward(x, cfg["kernel"], cfg["strides"], cfg["padding"])
    np.testing.assert_array_equal(host(y), y_ref)
    dy = rng.standard_normal(y_ref.shape)
    dx = maxpool_backward(kernels(dy), cache)
    np.testing.assert_allclose(host(dx), naive.maxpool_backward(x, dy, cfg["kernel"], cfg["strides"],
                                                                cfg["padding"]), rtol=1e-12, atol=1e-12)


def test_maxpool_ties_go_to_the_first_maximum(kernels):
    x = np.ones((1, 2, 2, 1))
    y, cache = maxpool_forward(kernels(x), (2, 2))
    dx = host(maxpool_backward(kernels(np.full((1, 1, 1, 1), 3.0)), cache))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[3.0, 0.0], [0.0, 0.0]])


def test_maxpool_same_padding_ignores_padded_cells(kernels):
    x = -np.arange(1.0, 10.0).reshape(1, 3, 3, 1)       # all negative: zero padding would win
    y, _ = maxpool_forward(kernels(x), (2, 2), (2, 2), "same")
    np.testing.assert_array_equal(host(y)[0, :, :, 0], [[-1.0, -3.0], [-7.0, -9.0]])


def test_numba_maxpool_switch_of_an_all_minus_inf_window_lies_inside_the_image():
    """The Numba backward writes at the switch with no bounds check, so a window whose
    pixels are all −inf must still name one inside the image: its first, (max(0, p−1),
    max(0, q−1)) for a 3×3 window with padding 1."""
    from minicnn.kernels import numba_pool
    x = np.full((2, 4, 4, 1), -np.inf)
    y, switches = numba_pool.maxpool_forward(x, (3, 3), (1, 1), (1, 1, 1, 1), (4, 4))
    dx = numba_pool.maxpool_backward(np.ones_like(y), switches, x.shape, (3, 3), (1, 1), (1, 1, 1, 1))
    expected = np.zeros((4, 4))
    for p in range(4):
        for q in range(4):
            expected[max(0, p - 1), max(0, q - 1)] += 1
    np.testing.assert_array_equal(dx[:, :, :, 0], [expected, expected])


@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), k=st.integers(1, 5),
       u=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_dense_layer_equals_loops(shape, k, u, seed):
    from minicnn.layers import Dense
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*shape, k))
    layer = Dense(u, dtype="float64") if len(shape) >= 1 else None
    layer.build((None, *x.shape[1:]))
    y = layer.forward(x)
    W, b = layer.params["kernel"], layer.params["bias"]
    np.testing.assert_allclose(y, naive.dense_forward(x, W, b), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx_ref, dW_ref, db_ref = naive.dense_backward(x, W, dy)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["kernel"], dW_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["bias"], db_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kernels_keep_the_dtype(kernels, dtype):
    rng = np.random.default_rng(0)
    x = kernels(rng.standard_normal((2, 5, 5, 3)).astype(dtype))
    W = kernels(rng.standard_normal((3, 3, 3, 4)).astype(dtype))
    y, cache = conv2d_forward(x, W, None, (1, 1), "same")
    dx, dW, _ = conv2d_backward(y, cache)
    p, pc = maxpool_forward(x, (2, 2))
    assert y.dtype == dx.dtype == dW.dtype == p.dtype == maxpool_backward(p, pc).dtype == np.dtype(dtype)


@given(m=st.integers(1, 200), f=st.integers(1, 40), relu=st.booleans(), seed=st.integers(0, 2**16))
def test_bias_activation_epilogue_equals_the_plain_expressions(kernels, m, f, relu, seed):
    """The fused bias + activation pass, the fused ReLU-backward + bias-gradient pass and the
    linear bias gradient (m rows below, at and above the fixed number of summation blocks)."""
    from minicnn.kernels.epilogue import bias_activation, bias_grad, relu_backward_bias_grad
    rng = np.random.default_rng(seed)
    z, b, da = rng.standard_normal((m, f)), rng.standard_normal(f), rng.standard_normal((m, f))
    expected = np.maximum(z + b, 0) if relu else z + b
    a = bias_activation(kernels(z.copy()), kernels(b), relu=relu)
    np.testing.assert_allclose(host(a), expected, rtol=1e-12, atol=1e-12)
    dz, db = relu_backward_bias_grad(kernels(da), a)
    dz_ref = da * (expected > 0)
    np.testing.assert_allclose(host(dz), dz_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(db), dz_ref.sum(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(host(bias_grad(kernels(da.reshape(m, 1, 1, f)))), da.sum(axis=0), rtol=1e-10, atol=1e-12)


@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), inputs=st.integers(2, 3), relu=st.booleans(),
       into_first=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_a_sum_and_its_activation_equal_the_plain_expressions(kernels, shape, inputs, relu, into_first, dtype, seed):
    """out = act(Σ x_i) (an Add, an Add + ReLU, the executor's gradient sums): on every kernel
    family the same values as NumPy's sum in input order, written into ``out`` — which may
    be the first input (a sum added to in place)."""
    from minicnn.kernels.epilogue import sum_activation
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(shape).astype(dtype) for _ in range(inputs)]
    expected = sum(xs[1:], xs[0])
    expected = np.maximum(expected, 0) if relu else expected
    arrays = [kernels(x) for x in xs]
    out = arrays[0] if into_first else kernels(np.full(shape, np.nan, dtype))
    result = sum_activation(arrays, out, relu)
    assert result is out
    np.testing.assert_array_equal(host(result), expected)


@given(cfg=window_configs(), seed=st.integers(0, 2**16), pixels_from=st.sampled_from([1, 10**9]))
def test_both_numba_im2col_kernels_equal_numpy(cfg, seed, pixels_from, monkeypatch):
    """The Numba im2col picks its per-pixel or its window-row kernel by the channel count;
    each of the two, forced, equals the NumPy im2col (and col2im stays its adjoint)."""
    from minicnn.kernels import numba_copies
    from minicnn.kernels.geometry import window_geometry
    from minicnn.kernels.im2col import im2col_numpy
    monkeypatch.setattr(numba_copies, "IM2COL_PIXELS_FROM_CHANNELS", pixels_from)
    x = np.random.default_rng(seed).standard_normal((cfg["n"], cfg["h"], cfg["w"], cfg["c"]))
    oh, ow, pads = window_geometry(cfg["h"], cfg["w"], cfg["kernel"], cfg["strides"], cfg["padding"], "test")
    args = (cfg["kernel"], cfg["strides"], pads, (oh, ow))
    np.testing.assert_array_equal(numba_copies.im2col(x, *args), im2col_numpy(x, *args))


@given(m=st.integers(1, 40), depth=st.integers(1, 40), n=st.integers(1, 50), dtype=st.sampled_from(["float32", "float64"]),
       transposed_b=st.booleans(), seed=st.integers(0, 2**16))
def test_numba_register_blocked_matmul_equals_numpy(tile_set, m, depth, n, dtype, transposed_b, seed):
    """Row counts around the 4- and 8-row tiles, column counts around the 16- and 32-column panels, a
    left operand that is a strided view, and a transposed right one (as in dY @ W2ᵀ)."""
    from minicnn.kernels import implicit_gemm
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, depth + 3)).astype(dtype)[:, 1:depth + 1]      # rows not contiguous
    b = rng.standard_normal((n, depth) if transposed_b else (depth, n)).astype(dtype)
    b = b.T if transposed_b else b
    out = np.full((m, n), np.nan, dtype=dtype)
    result = implicit_gemm.matmul(a, b, out)
    assert result is out
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(out, a.astype(np.float64) @ b.astype(np.float64), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(implicit_gemm.matmul(a, b), out, rtol=0, atol=0)


def test_conv_layer_backward_twice_after_one_forward(kernels):
    """The layer's backward writes ∂L/∂cols over its cached columns; a second backward on
    the same forward (as the visualizations may run) recomputes them and gets the same."""
    from minicnn import layers
    rng = np.random.default_rng(0)
    layer = layers.Conv2D(4, 3, padding="same", activation="relu")
    x = kernels(rng.standard_normal((2, 6, 5, 3)).astype("float32"))
    y = layer.forward(x)
    dy = kernels(rng.standard_normal(y.shape).astype("float32"))
    first = host(layer.backward(dy)), {k: host(g) for k, g in layer.grads.items()}
    second = host(layer.backward(dy)), {k: host(g) for k, g in layer.grads.items()}
    np.testing.assert_array_equal(first[0], second[0])
    for key in first[1]:
        np.testing.assert_array_equal(first[1][key], second[1][key])


@given(n=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 6), c=st.integers(1, 5),
       pads=st.tuples(*[st.integers(0, 3)] * 4), value=st.sampled_from([0.0, -np.inf]), seed=st.integers(0, 2**16))
def test_numba_padding_equals_the_array_expressions(n, h, w, c, pads, value, seed):
    """The one pad op: its Numba kernel and its array expressions frame x alike."""
    from minicnn.kernels.padding import pad
    x = np.random.default_rng(seed).standard_normal((n, h, w, c)).astype("float32")
    with mc.use_kernels("numba"):
        fast = pad(x, pads, value)
    with mc.use_kernels("numpy"):
        plain = pad(x, pads, value)
    expected = np.pad(x, ((0, 0), pads[:2], pads[2:], (0, 0)), constant_values=value)
    np.testing.assert_array_equal(fast, expected)
    np.testing.assert_array_equal(plain, expected)
