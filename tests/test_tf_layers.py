"""Every layer and loss equals tf.keras on the same weights: forward outputs and the
gradients w.r.t. input, kernel and bias (float64: rel < 1e-9; float32: rel < 1e-4)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tf_helpers import TOL, keras, rel, tf, tf_layer_gradients
from minicnn import layers, losses
from minicnn.backend import to_numpy
from conftest import distinct_values
from strategies import window_configs

pytestmark = pytest.mark.tf
DTYPES = st.sampled_from(["float32", "float64"])
ACTIVATIONS = st.sampled_from([None, "relu", "sigmoid", "softmax"])


def compare_layer(ours, theirs, x, dtype, seed, device=np.asarray):
    """Same weights in both; minicnn runs on ``device`` (the host, or the GPU through the
    ``kernels`` fixture); results come back to the host for the comparison."""
    x = x.astype(dtype)
    ours.build((None, *x.shape[1:]))
    theirs.build((None, *x.shape[1:]))
    theirs.set_weights(ours.get_weights())
    ours.params = {k: device(v) for k, v in ours.params.items()}
    G = np.random.default_rng(seed + 1).standard_normal(ours.compute_output_shape(x.shape)).astype(dtype)
    y_tf, dx_tf, dparams_tf = tf_layer_gradients(theirs, x, G)
    y = ours.forward(device(x))
    dx = ours.backward(device(G))
    tol = TOL[dtype]
    assert y.dtype == np.dtype(dtype) and type(y) is type(device(x))
    assert rel(to_numpy(y), y_tf) < tol
    assert rel(to_numpy(dx), dx_tf) < tol
    for key, d_tf in zip(ours.params, dparams_tf):
        assert rel(to_numpy(ours.grads[key]), d_tf) < tol, key


@given(cfg=window_configs(max_size=10, max_channels=4), seed=st.integers(0, 2**16), dtype=DTYPES,
       activation=ACTIVATIONS, use_bias=st.booleans())
def test_conv2d_matches_tf(kernels, cfg, seed, dtype, activation, use_bias):
    args = (cfg["f"], cfg["kernel"], cfg["strides"], cfg["padding"])
    ours = layers.Conv2D(*args, activation=activation, use_bias=use_bias, dtype=dtype)
    theirs = keras.layers.Conv2D(*args, activation=activation, use_bias=use_bias, dtype=dtype)
    x = np.random.default_rng(seed).standard_normal((cfg["n"], cfg["h"], cfg["w"], cfg["c"]))
    compare_layer(ours, theirs, x, dtype, seed, kernels)


@pytest.mark.parametrize("kernel,strides,size", [((2, 2), (2, 2), (7, 9)), ((4, 2), (3, 3), (10, 8)),
                                                 ((2, 4), (2, 3), (5, 11)), ((3, 3), (2, 2), (6, 6))])
def test_conv2d_same_even_kernels_and_strides_match_tf(kernels, kernel, strides, size):
    """TF's 'same' puts the odd padding pixel at the bottom/right."""
    ours = layers.Conv2D(3, kernel, strides, "same", dtype="float64")
    theirs = keras.layers.Conv2D(3, kernel, strides, "same", dtype="float64")
    compare_layer(ours, theirs, np.random.default_rng(0).standard_normal((2, *size, 2)), "float64", 0, kernels)


@given(cfg=window_configs(max_size=10, max_kernel=4, max_channels=4), seed=st.integers(0, 2**16), dtype=DTYPES)
def test_max_pooling2d_matches_tf_including_overlap(kernels, cfg, seed, dtype):
    ours = layers.MaxPooling2D(cfg["kernel"], cfg["strides"], cfg["padding"])
    theirs = keras.layers.MaxPooling2D(cfg["kernel"], cfg["strides"], cfg["padding"], dtype=dtype)
    x = distinct_values(np.random.default_rng(seed), (cfg["n"], cfg["h"], cfg["w"], cfg["c"]))
    compare_layer(ours, theirs, x, dtype, seed, kernels)


@given(lead=st.lists(st.integers(1, 5), min_size=1, max_size=3), k=st.integers(1, 8), u=st.integers(1, 8),
       activation=ACTIVATIONS, seed=st.integers(0, 2**16), dtype=DTYPES)
def test_dense_matches_tf_on_any_rank(lead, k, u, activation, seed, dtype):
    ours = layers.Dense(u, activation=activation, dtype=dtype)
    theirs = keras.layers.Dense(u, activation=activation, dtype=dtype)
    compare_layer(ours, theirs, np.random.default_rng(seed).standard_normal((*lead, k)), dtype, seed)


@pytest.mark.parametrize("name", ["flatten", "relu", "sigmoid", "softmax", "dropout", "gap"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_parameter_free_layers_match_tf(name, dtype):
    ours, theirs = {
        "flatten": (layers.Flatten(), keras.layers.Flatten(dtype=dtype)),
        "relu": (layers.ReLU(), keras.layers.ReLU(dtype=dtype)),
        "sigmoid": (layers.Activation("sigmoid"), keras.layers.Activation("sigmoid", dtype=dtype)),
        "softmax": (layers.Activation("softmax"), keras.layers.Activation("softmax", dtype=dtype)),
        "dropout": (layers.Dropout(0.5), keras.layers.Dropout(0.5, dtype=dtype)),   # inference: identity
        "gap": (layers.GlobalAveragePooling2D(), keras.layers.GlobalAveragePooling2D(dtype=dtype)),
    }[name]
    compare_layer(ours, theirs, np.random.default_rng(3).standard_normal((3, 4, 5, 2)), dtype, 3)


LOSS_PAIRS = [(losses.CategoricalCrossentropy, keras.losses.CategoricalCrossentropy),
              (losses.SparseCategoricalCrossentropy, keras.losses.SparseCategoricalCrossentropy),
              (losses.BinaryCrossentropy, keras.losses.BinaryCrossentropy)]


@pytest.mark.parametrize("ours_cls,theirs_cls", LOSS_PAIRS)
@given(n=st.integers(1, 6), k=st.integers(2, 6), from_logits=st.booleans(), seed=st.integers(0, 2**16),
       dtype=DTYPES)
def test_losses_match_tf(ours_cls, theirs_cls, n, k, from_logits, seed, dtype):
    rng = np.random.default_rng(seed)
    if ours_cls is losses.SparseCategoricalCrossentropy:
        y = rng.integers(0, k, n)
    elif ours_cls is losses.CategoricalCrossentropy:
        y = np.eye(k)[rng.integers(0, k, n)].astype(dtype)
    else:
        y = rng.integers(0, 2, (n, k)).astype(dtype)
    pred = (rng.standard_normal((n, k)) * 2 if from_logits else rng.uniform(0.01, 1.0, (n, k))).astype(dtype)
    if not from_logits and ours_cls is not losses.BinaryCrossentropy:
        pred = pred / pred.sum(axis=1, keepdims=True)
    ours = ours_cls(from_logits=from_logits)
    value = ours.forward(pred, y)
    p = tf.constant(pred)
    with tf.GradientTape() as tape:
        tape.watch(p)
        value_tf = theirs_cls(from_logits=from_logits, dtype=dtype)(tf.constant(y), p)
    grad_tf = tape.gradient(value_tf, p).numpy()
    assert rel(value, value_tf.numpy()) < TOL[dtype]
    assert rel(ours.backward(), grad_tf) < TOL[dtype]


@pytest.mark.parametrize("act,ours_cls,theirs_cls", [
    ("softmax", losses.CategoricalCrossentropy, keras.losses.CategoricalCrossentropy),
    ("sigmoid", losses.BinaryCrossentropy, keras.losses.BinaryCrossentropy)])
def test_fused_output_matches_keras_logits_path(act, ours_cls, theirs_cls):
    """Keras 3 takes softmax/sigmoid outputs' logits into the cross-entropy (no clipping):
    at logits of ±30 the clipped probability path would differ; the fused one must not."""
    z = np.array([[30.0, -30.0, 0.5], [-30.0, 30.0, 2.0]])
    y = np.array([[0.0, 1, 0], [1, 0, 0]])
    ours = ours_cls()
    value = ours.forward_logits(z, y)
    activation, loss = keras.layers.Activation(act, dtype="float64"), theirs_cls(dtype="float64")

    @tf.function   # as inside Keras's fit: graph tensors carry their logits
    def value_and_grad(zt):
        with tf.GradientTape() as tape:
            tape.watch(zt)
            value_tf = loss(tf.constant(y), activation(zt))
        return value_tf, tape.gradient(value_tf, zt)

    value_tf, grad_tf = value_and_grad(tf.constant(z))
    assert value > 20                       # the clipped path would give −log(1e−7) ≈ 16.1
    assert rel(value, value_tf.numpy()) < 1e-9
    assert rel(ours.backward(), grad_tf.numpy()) < 1e-9
