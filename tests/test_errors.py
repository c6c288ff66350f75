"""Bad input raises a ValueError naming the layer and the expected vs received value."""
import numpy as np
import pytest

from minicnn import layers


def test_wrong_rank_names_the_layer():
    with pytest.raises(ValueError, match=r"Conv2D layer 'c1'.*rank 4.*received shape \(2, 5, 5\)"):
        layers.Conv2D(2, 3, name="c1").forward(np.zeros((2, 5, 5), np.float32))


def test_wrong_channel_count_after_build():
    layer = layers.Conv2D(2, 3, name="c1")
    layer.forward(np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="expected 3 input channels, received 4"):
        layer.forward(np.zeros((1, 5, 5, 4), np.float32))
    dense = layers.Dense(2, name="d")
    dense.forward(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="Dense layer 'd'.*expected 3 input features.*received 5"):
        dense.forward(np.zeros((1, 5), np.float32))


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, bool, object])
def test_non_float_arrays(dtype):
    with pytest.raises(ValueError, match=r"MaxPooling2D layer.*float32 or float64.*received dtype"):
        layers.MaxPooling2D(name="p").forward(np.zeros((1, 4, 4, 1), dtype=dtype))


def test_kernel_larger_than_valid_input():
    with pytest.raises(ValueError, match="window 5 is larger than the 'valid' input size 3"):
        layers.Conv2D(1, 5).forward(np.zeros((1, 3, 8, 1), np.float32))


@pytest.mark.parametrize("make,match", [
    (lambda: layers.Conv2D(0, 3), "filters must be a positive int, received filters=0"),
    (lambda: layers.Conv2D(2, -1), "kernel_size must be positive"),
    (lambda: layers.Conv2D(2, 3, strides=0), "strides must be positive"),
    (lambda: layers.Dense(-3), "units must be a positive int, received units=-3"),
    (lambda: layers.MaxPooling2D(0), "pool_size must be positive"),
    (lambda: layers.Dropout(1.5), r"rate must be a number in \[0, 1\)"),
    (lambda: layers.Conv2D(2, 3, padding="full"), "padding must be 'valid' or 'same', received padding='full'"),
    (lambda: layers.Dense(2, activation="mish"), "unknown activation 'mish'"),
    (lambda: layers.Conv2D(2, 3, kernel_initializer="magic"), "unknown initializer 'magic'"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_zero_sized_input():
    with pytest.raises(ValueError, match="Flatten layer.*empty array"):
        layers.Flatten().forward(np.zeros((0, 3), np.float32))


def test_no_silent_broadcasting_of_the_upstream_gradient():
    layer = layers.Dense(3, name="d")
    layer.forward(np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"Dense layer 'd'.*output's shape \(4, 3\), received \(1, 3\)"):
        layer.backward(np.ones((1, 3), np.float32))


def test_set_weights_checks_shapes():
    layer = layers.Dense(3, name="d")
    layer.build((None, 2))
    with pytest.raises(ValueError, match=r"weight 'kernel' must have shape \(2, 3\), received \(3, 2\)"):
        layer.set_weights([np.zeros((3, 2)), np.zeros(3)])
