"""AveragePooling2D, GlobalMaxPooling2D and the reshaping layers: TensorFlow parity (float64),
central differences, and the loop references of kernels/naive.py."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn import layers
from minicnn.kernels import naive
from minicnn.layers.reshaping import edge_amounts
from conftest import distinct_values
from layer_checks import assert_gradients_check, assert_matches_tf
from strategies import window_configs
from tf_helpers import keras

SEEDS = st.integers(0, 2**16)


def image(seed, n, h, w, c):
    return distinct_values(np.random.default_rng(seed), (n, h, w, c))


@given(cfg=window_configs(max_size=9, max_kernel=4, max_channels=3), seed=SEEDS)
def test_average_pooling2d(float64, cfg, seed):
    x = image(seed, cfg["n"], cfg["h"], cfg["w"], cfg["c"])
    args = (cfg["kernel"], cfg["strides"], cfg["padding"])
    assert_matches_tf(layers.AveragePooling2D(*args), keras.layers.AveragePooling2D(*args, dtype="float64"), x, seed)
    assert_gradients_check(layers.AveragePooling2D(*args), x, seed)
    ours = layers.AveragePooling2D(*args)
    np.testing.assert_allclose(ours.forward(x), naive.avgpool_forward(x, *args), rtol=1e-13, atol=1e-15)
    dy = np.random.default_rng(seed).standard_normal(ours.forward(x).shape)
    np.testing.assert_allclose(ours.backward(dy), naive.avgpool_backward(x.shape, dy, *args), rtol=1e-13, atol=1e-15)


@given(n=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5), c=st.integers(1, 3),
       keepdims=st.booleans(), seed=SEEDS)
def test_global_max_pooling2d(float64, n, h, w, c, keepdims, seed):
    x = image(seed, n, h, w, c)
    assert_matches_tf(layers.GlobalMaxPooling2D(keepdims), keras.layers.GlobalMaxPooling2D(keepdims=keepdims,
                      dtype="float64"), x, seed)
    assert_gradients_check(layers.GlobalMaxPooling2D(keepdims), x, seed)


def test_global_max_pooling2d_shares_the_gradient_of_tied_maxima_as_tf(float64):
    x = np.array([1.0, 3, 3, 2, 0.5, 0.5, 0.5, 0.5]).reshape(2, 2, 2, 1)
    assert_matches_tf(layers.GlobalMaxPooling2D(), keras.layers.GlobalMaxPooling2D(dtype="float64"), x)


EDGES = st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
                  st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                            st.tuples(st.integers(0, 2), st.integers(0, 2))))


def as_amounts(value):
    return edge_amounts(value, "edges", "test")


@pytest.mark.parametrize("ours,theirs,reference,size", [
    (layers.ZeroPadding2D, keras.layers.ZeroPadding2D, naive.zero_padding2d, (3, 4)),
    (layers.Cropping2D, keras.layers.Cropping2D, naive.cropping2d, (5, 6))])
@given(amounts=EDGES, seed=SEEDS)
def test_zero_padding2d_and_cropping2d(float64, ours, theirs, reference, size, amounts, seed):
    x = image(seed, 2, *size, 2)
    assert_matches_tf(ours(amounts), theirs(amounts, dtype="float64"), x, seed)
    assert_gradients_check(ours(amounts), x, seed)
    np.testing.assert_array_equal(ours(amounts).forward(x), reference(x, as_amounts(amounts)))


def test_cropping2d_rejects_cropping_everything():
    with pytest.raises(ValueError, match="Cropping2D.*leaves nothing"):
        layers.Cropping2D(((2, 1), (0, 0))).forward(np.zeros((1, 3, 3, 1)))


@given(size=st.tuples(st.integers(1, 3), st.integers(1, 3)), seed=SEEDS)
def test_upsampling2d(float64, size, seed):
    x = image(seed, 2, 3, 2, 2)
    assert_matches_tf(layers.UpSampling2D(size), keras.layers.UpSampling2D(size, dtype="float64"), x, seed)
    assert_gradients_check(layers.UpSampling2D(size), x, seed)
    ours = layers.UpSampling2D(size)
    y = ours.forward(x)
    np.testing.assert_array_equal(y, naive.upsampling2d_forward(x, size))
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    np.testing.assert_allclose(ours.backward(dy), naive.upsampling2d_backward(dy, size), rtol=1e-14)


@given(shape=st.sampled_from([(2, 3, 4), (2, 2, 3, 2), (3, 6)]), minus_one=st.booleans(), seed=SEEDS)
def test_reshape(float64, shape, minus_one, seed):
    x = distinct_values(np.random.default_rng(seed), shape)
    size = int(np.prod(shape[1:]))
    target = (-1, 2) if minus_one and size % 2 == 0 else (size,)
    assert_matches_tf(layers.Reshape(target), keras.layers.Reshape(target, dtype="float64"), x, seed)
    assert_gradients_check(layers.Reshape(target), x, seed)


def test_reshape_rejects_a_wrong_size():
    with pytest.raises(ValueError, match="Reshape.*into target_shape"):
        layers.Reshape((5,)).forward(np.zeros((2, 2, 3)))


@given(dims=st.permutations([1, 2, 3]), seed=SEEDS)
def test_permute(float64, dims, seed):
    x = image(seed, 2, 3, 4, 2)
    dims = tuple(dims)
    assert_matches_tf(layers.Permute(dims), keras.layers.Permute(dims, dtype="float64"), x, seed)
    assert_gradients_check(layers.Permute(dims), x, seed)
    np.testing.assert_array_equal(layers.Permute(dims).forward(x), naive.permute(x, dims))


def test_permute_rejects_a_non_permutation():
    with pytest.raises(ValueError, match="Permute.*permutation"):
        layers.Permute((1, 1))
