"""Winograd F(4×4, 3×3) (``kernels/winograd.py``): its three matrices against the direct sum;
Conv2D's forward, ∂L/∂x and ∂L/∂W on the Numba Winograd kernels against the loop-based
references and central differences, on outputs of any size; nothing stored past the
output by the tiles that reach past its edge; the thread count changing no bit; and the
register tile taken on a tie."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import layers
from minicnn.kernels import conv, epilogue, winograd, winograd_transforms
from minicnn.kernels.conv import conv2d_backward, conv2d_forward
from minicnn.study.finite_differences import check_layer
from conftest import distinct_values, record_calls
from test_ops_reference import check_conv_equals_loops


@given(seed=st.integers(0, 2**16))
def test_the_three_matrices_give_the_4x4_correlation(seed):
    """Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A = the 'valid' correlation of the 6×6 d with the 3×3 g."""
    rng = np.random.default_rng(seed)
    d, g = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
    direct = np.array([[(d[p:p + 3, q:q + 3] * g).sum() for q in range(4)] for p in range(4)])
    t = winograd_transforms
    U, V = t.G @ g @ t.G.T, t.B_T @ d @ t.B_T.T
    np.testing.assert_allclose(t.A_T @ (U * V) @ t.A_T.T, direct, rtol=1e-12, atol=1e-12)


@st.composite
def winograd_configs(draw):
    """3×3 stride-1 convs with outputs of 1 to 10 rows and columns (whole 4×4 tiles and tiles
    that reach past the edge), both paddings, channel counts below, at and past one panel of
    the 4 × 16 and 3 × 24 register tiles."""
    padding = draw(st.sampled_from(["valid", "same"]))
    sizes = st.integers(1, 10)
    extra = 2 if padding == "valid" else 0
    return dict(n=draw(st.integers(1, 3)), h=draw(sizes) + extra, w=draw(sizes) + extra,
                c=draw(st.sampled_from([1, 2, 16, 17])), f=draw(st.sampled_from([1, 5, 16, 20, 24, 40, 50])),
                kernel=(3, 3), strides=(1, 1), padding=padding)


@pytest.fixture
def winograd_everywhere(monkeypatch):
    """Every conv on the Winograd kernels, forced (by default only 3×3 stride-1 ones with
    ≥ 24 channels and ≥ 10⁶ multiply-adds), ∂L/∂x of a 'valid' one too; records their calls."""
    calls = record_calls(monkeypatch, winograd, ("conv2d", "conv2d_kernel_grad"))
    with mc.use_kernels("numba"), mc.use_conv_algorithm("winograd"):
        yield calls


@given(cfg=winograd_configs(), seed=st.integers(0, 2**16), relu=st.booleans())
def test_conv_on_winograd_equals_loops(tile_set, winograd_everywhere, cfg, seed, relu):
    """Forward (the bias and ReLU added as it stores), ∂L/∂x, ∂L/∂W and ∂L/∂b (summed by
    ∂L/∂W's kernel) in float64 within 1e-10 of the loops."""
    winograd_everywhere.clear()
    check_conv_equals_loops(np.asarray, cfg, seed, relu=relu)
    assert sorted(winograd_everywhere) == ["conv2d", "conv2d", "conv2d_kernel_grad"]


@given(cfg=winograd_configs(), seed=st.integers(0, 2**16))
def test_float32_winograd_stays_close_to_the_float64_sums(winograd_everywhere, cfg, seed):
    """In float32 the transforms' extra additions cost a few units in the last place of
    the sums' size: within 1e-5 of the largest value."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["n"], cfg["h"], cfg["w"], cfg["c"]))
    W = rng.standard_normal((3, 3, cfg["c"], cfg["f"]))
    y64, cache64 = conv2d_forward(x, W, None, (1, 1), cfg["padding"])
    y32, cache32 = conv2d_forward(x.astype(np.float32), W.astype(np.float32), None, (1, 1), cfg["padding"])
    dy = rng.standard_normal(y64.shape)
    results64 = (y64, *conv2d_backward(dy, cache64, bias_grad=False)[:2])
    results32 = (y32, *conv2d_backward(dy.astype(np.float32), cache32, bias_grad=False)[:2])
    for r32, r64 in zip(results32, results64):
        assert r32.dtype == np.float32
        np.testing.assert_allclose(r32, r64, rtol=0, atol=1e-5 * np.abs(r64).max())


def test_the_padding_is_read_in_place_not_copied(winograd_everywhere, monkeypatch):
    """A 'same' conv's forward, ∂L/∂x and ∂L/∂W on Winograd make no padded copy of x or ∂L/∂y
    (tiles at the border copy their patch into the small scratch P instead)."""
    pad_calls = record_calls(monkeypatch, conv, ("padded",))
    rng = np.random.default_rng(0)
    x, W = rng.standard_normal((2, 6, 8, 3)), rng.standard_normal((3, 3, 3, 4))
    y, cache = conv2d_forward(x, W, None, (1, 1), "same")
    conv2d_backward(rng.standard_normal(y.shape), cache, bias_grad=False)
    assert sorted(winograd_everywhere) == ["conv2d", "conv2d", "conv2d_kernel_grad"]
    assert pad_calls == []


@given(oh=st.integers(1, 9), ow=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_tiles_past_the_edge_store_nothing_outside_the_output(oh, ow, seed):
    """y is a view of the front of a larger buffer: the forward fills y with the direct sums
    and leaves the values after it as they were."""
    rng = np.random.default_rng(seed)
    x, W = rng.standard_normal((2, oh, ow, 3)), rng.standard_normal((3, 3, 3, 5))
    buffer = np.full(2 * (2 * oh * ow * 5), 7.0)                   # y, then as much again
    y = buffer[:2 * oh * ow * 5].reshape(2, oh, ow, 5)
    winograd.conv2d(x, (1, 1, 1, 1), W, y)
    np.testing.assert_allclose(y, conv2d_forward(x, W, None, (1, 1), "same")[0], rtol=1e-10, atol=1e-10)
    assert (buffer[y.size:] == 7.0).all()


@given(cfg=winograd_configs(), seed=st.integers(0, 2**16), use_bias=st.booleans())
def test_conv_layer_on_winograd_against_central_differences(winograd_everywhere, float64, cfg, seed, use_bias):
    """No activation: a ReLU's kink within the differences' step would fail the check
    without any fault in the conv (its backward is checked in test_gradcheck_layers)."""
    mc.set_seed(seed)
    rng = np.random.default_rng(seed)
    layer = layers.Conv2D(cfg["f"], 3, padding=cfg["padding"], use_bias=use_bias, name="conv")
    x = distinct_values(rng, (cfg["n"], cfg["h"], cfg["w"], cfg["c"]))
    for result in check_layer(layer, x, seed=seed):
        assert result.rel_error < 1e-6, result
    assert "conv2d_kernel_grad" in winograd_everywhere


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_the_layer_epilogue_runs_inside_the_winograd_kernels(winograd_everywhere, float64, monkeypatch, activation):
    """A Conv2D on Winograd adds its bias (and applies its ReLU) as the forward stores y, and
    with a linear activation ∂L/∂b is summed by ∂L/∂W's kernel: no pass of the epilogue's own
    over y or ∂L/∂y.  (A ReLU's backward sums ∂L/∂b in its own pass, which it needs for dz.)"""
    passes = record_calls(monkeypatch, epilogue, ("bias_activation", "bias_grad"))
    rng = np.random.default_rng(0)
    layer = layers.Conv2D(4, 3, padding="same", activation=activation)
    x = rng.standard_normal((2, 6, 8, 3))
    y = layer.forward(x, training=True)
    layer.backward(rng.standard_normal(y.shape))
    assert sorted(winograd_everywhere) == ["conv2d", "conv2d", "conv2d_kernel_grad"]
    assert passes == [] and sorted(layer.grads) == ["bias", "kernel"]
    z = conv2d_forward(x, layer.params["kernel"], layer.params["bias"], (1, 1), "same")[0]
    np.testing.assert_allclose(y, np.maximum(z, 0) if activation == "relu" else z, rtol=1e-12, atol=1e-12)


_ONE_STEP = """
import sys, numpy as np
from minicnn.kernels import conv
rng = np.random.default_rng(0)
x = rng.standard_normal((5, 40, 40, 24)).astype(np.float32)
W = rng.standard_normal((3, 3, 24, 32)).astype(np.float32)
b = rng.standard_normal(32).astype(np.float32)
dy = rng.standard_normal((5, 40, 40, 32)).astype(np.float32)
y, cache = conv.conv2d_forward(x, W, b, (1, 1), "same", relu=True)
assert cache.plan == ("winograd",) * 3, f"expected this conv on the Winograd kernels, chosen: {cache.plan}"
dx, dW, db = conv.conv2d_backward(dy, cache)
np.savez(sys.argv[1], y=y, dx=dx, dW=dW, db=db)
"""


def test_results_do_not_depend_on_the_thread_count(tmp_path):
    """∂L/∂U's blocks are split among a number of parts that follows from the shape (here
    500 tiles: 4 parts of 3 or 4 blocks), each with its own partial sums of ∂L/∂U and ∂L/∂b:
    a conv's forward, ∂L/∂x, ∂L/∂W and ∂L/∂b on one, two and three threads give the same bits
    (each in a fresh process, Numba's thread count fixed by NUMBA_NUM_THREADS)."""
    results = []
    for threads in (1, 2, 3):
        path = tmp_path / f"threads_{threads}.npz"
        env = {**os.environ, "NUMBA_NUM_THREADS": str(threads), "MINICNN_KERNELS": "numba"}
        subprocess.run([sys.executable, "-c", _ONE_STEP, str(path)], env=env, check=True)
        results.append(np.load(path))
    for name in ("y", "dx", "dW", "db"):
        for other in results[1:]:
            np.testing.assert_array_equal(results[0][name], other[name])


@given(seed=st.integers(0, 2**16), min_parts=st.sampled_from([1, 2, 4]))
def test_each_part_adds_up_its_blocks(seed, min_parts):
    """∂L/∂W and ∂L/∂b with the tiles (147, in 4 or 5 blocks, as the tile set's ∂L/∂W tile
    has 8 rows or not) split into 1, 2 or 4 parts: a part's first block starts its partial
    sum, its later blocks add to it, the parts' sums are added up; each within 1e-10 of the
    direct sums Σ x·dy and Σ dy (float64).  Every scratch starts as NaN, so a value read
    before it was written shows."""
    from unittest import mock
    rng = np.random.default_rng(seed)
    x, dy = rng.standard_normal((3, 28, 28, 3)), rng.standard_normal((3, 26, 26, 5))
    direct = np.stack([np.stack([np.einsum("nhwc,nhwf->cf", x[:, i:i + 26, j:j + 26], dy) for j in range(3)])
                       for i in range(3)])
    block_parts, chosen = winograd.block_parts, []

    def spied_parts(tiles, sub):
        chosen.append(block_parts(tiles, sub))
        return chosen[-1]
    with mock.patch.object(winograd, "MIN_PARTS", min_parts), mock.patch.object(winograd, "block_parts", spied_parts), \
            mock.patch.object(winograd, "_scratch", lambda workspace, name, shape, dtype: np.full(shape, np.nan, dtype)):
        dW, db = winograd.conv2d_kernel_grad(x, (0, 0, 0, 0), dy)
    assert chosen == [min_parts]
    np.testing.assert_allclose(dW, direct, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 1, 2)), rtol=1e-10, atol=1e-10)


def test_the_parts_follow_from_the_tiles():
    """About 1,024 tiles a part, at least 4 parts, at most 16, never more than the blocks,
    each part at least one block: from the shape alone."""
    sub = winograd.block_tiles(4)
    parts = winograd.block_parts
    assert parts(2 * sub, sub) == 2                 # fewer blocks than parts wanted
    assert parts(3 * 1024, sub) == 4 and parts(8 * 1024, sub) == 8 and parts(10 ** 7, sub) == 16
    for tiles in range(1, 20000, 37):
        count, blocks = parts(tiles, sub), -(-tiles // sub)
        assert 1 <= count <= blocks
        assert all((p + 1) * blocks // count > p * blocks // count for p in range(count))


def test_the_winograd_forward_runs_on_whole_register_tiles(monkeypatch):
    """24 filters on AVX-512's tiles: the forward's products run on 4 × 32, not on 3 × 24,
    whose rows are 1½ registers there (``register_tiles.tile_for``); AVX2's keep 3 × 24."""
    from minicnn.kernels.register_tiles import use_tile_set
    chosen = []
    monkeypatch.setattr(winograd, "_forward_kernel", lambda *tile: chosen.append(tile) or (lambda *args: None))
    x, W = np.zeros((1, 6, 6, 16), np.float32), np.zeros((3, 3, 16, 24), np.float32)
    for isa in ("avx512", "avx2"):
        with use_tile_set(isa):
            winograd.conv2d(x, (1, 1, 1, 1), W, np.empty((1, 6, 6, 24), np.float32))
    assert chosen == [(4, 32), (3, 24)]


def test_a_tie_between_the_register_tiles_goes_to_the_one_asked_for(tile_set):
    """f = 48 pads alike on 4 × 16 and 3 × 24 (AVX-512: f = 192 on 4 × 64 and 3 × 48): the
    implicit GEMM keeps the 4-row tile, Winograd takes the 3-row one; where one pads less it
    wins either way (on AVX-512, 24 columns go to AVX2's 3 × 24, except in the Winograd forward:
    ``test_the_winograd_forward_runs_on_whole_register_tiles``)."""
    import math
    from minicnn.kernels.register_tiles import TILE_SETS, three_row_tile, tile_for
    four, three = TILE_SETS[tile_set][:2]
    tie = math.lcm(four[1], three[1])
    assert tile_for(tie) == four and tile_for(tie, three_row_tile()) == three
    assert tile_for(2 * four[1], three_row_tile()) == four and tile_for(three[1]) == three
    assert tile_for(24) == (3, 24)
