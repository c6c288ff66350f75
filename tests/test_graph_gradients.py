"""Central differences in float64 through every merge layer and through fan-outs, on
hypothesis-drawn shapes; and the fast kernels against the reference path on whole models."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn import architectures, layers
from minicnn.study.finite_differences import numeric_gradient, relative_error

MERGES = [layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum, layers.Minimum,
          lambda: layers.Concatenate(axis=-1), lambda: layers.Concatenate(axis=1)]


def loss_and_input_gradients(model, xs, G):
    """(L(xs) = Σ y·G as a function, [∂L/∂x_i] from the model's backward)."""
    def loss():
        return float((model.forward(xs if len(xs) > 1 else xs[0]) * G).sum())
    model.forward(xs if len(xs) > 1 else xs[0])
    grads = model.backward(G)
    return loss, grads if isinstance(grads, list) else [grads]


@given(merge=st.sampled_from(range(len(MERGES))), n_inputs=st.integers(2, 3), shape=st.lists(
    st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_merge_layers_by_central_differences(float64, merge, n_inputs, shape, seed):
    make = MERGES[merge]
    if make is layers.Subtract:
        n_inputs = 2
    if merge == len(MERGES) - 1 and len(shape) < 2:
        shape = [*shape, 2]
    rng = np.random.default_rng(seed)
    inputs = [mc.Input(tuple(shape)) for _ in range(n_inputs)]
    model = mc.Model(inputs, make()(inputs))
    xs = [rng.permutation(np.linspace(-1, 1, 2 * int(np.prod(shape)))).reshape(2, *shape) + 0.01 * i
          for i in range(n_inputs)]                                  # distinct values: no Max/Min ties
    G = rng.standard_normal(model.forward(xs).shape)
    loss, grads = loss_and_input_gradients(model, xs, G)
    for x, g in zip(xs, grads):
        idx = np.arange(x.size)
        assert relative_error(g.reshape(-1), numeric_gradient(loss, x, idx)) < 1e-7


def test_maximum_sends_a_tie_to_the_first_input(float64):
    a, b = mc.Input((3,)), mc.Input((3,))
    model = mc.Model([a, b], layers.Maximum()([a, b]))
    x = np.array([[1.0, 2.0, 3.0]])
    model.forward([x, x.copy()])
    ga, gb = model.backward(np.ones((1, 3)))
    np.testing.assert_array_equal(ga, [[1, 1, 1]])
    np.testing.assert_array_equal(gb, [[0, 0, 0]])


@given(units=st.integers(1, 4), seed=st.integers(0, 2**16), shared=st.booleans())
def test_fan_out_and_shared_layers_by_central_differences(cpu_kernels, float64, units, seed, shared):
    """x feeds three consumers (two Dense layers — one layer twice when ``shared`` — and the
    skip of an Add): ∂L/∂x and ∂L/∂W are sums over the paths."""
    mc.set_seed(seed)                                   # the layers' initial weights too
    rng = np.random.default_rng(seed)
    x_in = mc.Input((units,))
    first = layers.Dense(units, activation="sigmoid", name="first")
    second = first if shared else layers.Dense(units, activation="sigmoid", name="second")
    y = layers.Add()([x_in, first(x_in), second(x_in)])
    model = mc.Model(x_in, layers.Dense(2, name="head")(y))
    x = rng.standard_normal((3, units))
    G = rng.standard_normal((3, 2))
    loss, (dx,) = loss_and_input_gradients(model, [x], G)
    assert relative_error(dx.reshape(-1), numeric_gradient(loss, x, np.arange(x.size))) < 1e-7
    for layer in model.flat_layers():
        for key, value in layer.params.items():
            analytic = layer.grads[key].copy()
            numeric = numeric_gradient(loss, value, np.arange(value.size))
            np.testing.assert_allclose(analytic.reshape(-1), numeric, rtol=1e-6, atol=1e-8,   # central differences
                                       err_msg=f"{layer.name}/{key}")          # at eps 1e-6 round off ~|L|·1e-10


def residual_network(input_shape=(32, 32, 3), blocks=2, channels=32):
    """The benchmark's small ResNet: a stem conv, residual blocks of two 3x3 convs, pooling."""
    x = mc.Input(input_shape)
    h = layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
    for _ in range(blocks):
        branch = layers.Conv2D(channels, 3, padding="same", activation="relu")(h)
        branch = layers.Conv2D(channels, 3, padding="same")(branch)
        h = layers.Activation("relu")(layers.Add()([h, branch]))
    h = layers.MaxPooling2D()(h)
    return mc.Model(x, layers.Dense(10, activation="softmax")(layers.Flatten()(h)))


WHOLE_MODELS = {
    "mnist_deconstructed": lambda: architectures.mnist_deconstructed((16, 16, 1)),
    "mnist_convnet": lambda: architectures.mnist_convnet((20, 20, 1)),
    "cifar_six_conv": lambda: architectures.cifar_six_conv((16, 16, 3), dropout=0.0),
    "face_cnn": lambda: architectures.face_cnn((32, 32, 1)),
    "residual": lambda: residual_network((12, 12, 3), channels=16),
}


def one_step(build, kernels, x, labels, loss):
    """(output, ∂L/∂x, every weight gradient, the weights after one SGD step, the number of
    fused groups) on ``kernels``."""
    mc.set_seed(0)
    with mc.use_kernels(kernels):
        model = build()
        model.compile(mc.optimizers.SGD(0.1), loss)
        y = model.forward(x, training=True)
        model._losses(y, labels)
        seeds, fused = model.compiled_loss.seeds()
        dx = model.backward(seeds[0], from_logits=fused[0])
        grads = [layer.grads[k].copy() for layer in model.flat_layers() for k in layer.params]
        groups = len(model.plan().groups)
        model.train_on_batch(x, labels)
        return y.copy(), dx.copy(), grads, model.get_weights(), groups


@pytest.mark.parametrize("name", WHOLE_MODELS)
@pytest.mark.parametrize("fast", ["numpy", "numba"])
def test_fast_kernels_equal_the_reference_on_whole_models(name, fast, float64):
    build = WHOLE_MODELS[name]
    shape = build().input_shape[1:]
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4, *shape))
    binary = build().output_shape[-1] == 1
    labels = rng.integers(0, 2, (4, 1)).astype("float64") if binary else rng.integers(0, 10, 4)
    loss = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
    reference, fast_run = one_step(build, "reference", x, labels, loss), one_step(build, fast, x, labels, loss)
    assert reference[4] == 0 and fast_run[4] > 0           # the reference path runs no fused group
    for a, b in zip(reference[:2], fast_run[:2]):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    for a, b in zip(reference[2], fast_run[2]):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    for a, b in zip(reference[3], fast_run[3]):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


@given(kind=st.sampled_from(["depthwise", "separable"]), channels=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_a_depthwise_window_layer_used_twice_by_central_differences(cpu_kernels, float64, kind, channels, seed):
    """One DepthwiseConv2D / SeparableConv2D applied twice in a row: each call's backward must
    read that call's input (the layer's cache is saved per node), and its weight gradients
    are the sums over both calls."""
    mc.set_seed(seed)
    rng = np.random.default_rng(seed)
    layer = (layers.DepthwiseConv2D(3, padding="same", activation="tanh") if kind == "depthwise" else
             layers.SeparableConv2D(channels, 3, padding="same", activation="tanh"))
    x_in = mc.Input((5, 4, channels))
    model = mc.Model(x_in, layer(layer(x_in)))
    x = rng.standard_normal((2, 5, 4, channels))
    G = rng.standard_normal((2, 5, 4, channels))
    loss, (dx,) = loss_and_input_gradients(model, [x], G)
    assert relative_error(dx.reshape(-1), numeric_gradient(loss, x, np.arange(x.size))) < 1e-7
    for key, value in layer.params.items():
        numeric = numeric_gradient(loss, value, np.arange(value.size))
        np.testing.assert_allclose(layer.grads[key].reshape(-1), numeric, rtol=1e-6, atol=1e-8, err_msg=key)


@pytest.mark.parametrize("kernels, algorithm", [("numpy", "im2col"), ("numba", "im2col"),
                                                ("numba", "implicit_gemm"), ("numba", "winograd")])
@given(channels=st.integers(1, 3), seed=st.integers(0, 2**16))
@settings(max_examples=10, deadline=None)
def test_a_conv_layer_used_twice_by_central_differences(float64, kernels, algorithm, channels, seed):
    """One Conv2D applied twice in a row, on each algorithm of each CPU kernel family (the
    implicit GEMM and Winograd run on the Numba kernels only): each call's backward reads that
    call's own columns / padded input (kept in buffers lent to its cache, never a scratch
    buffer the next call writes over), and ∂L/∂W is the sum over both calls."""
    mc.set_seed(seed)
    rng = np.random.default_rng(seed)
    layer = layers.Conv2D(channels, 3, padding="same", activation="tanh")
    x_in = mc.Input((6, 5, channels))
    model = mc.Model(x_in, layer(layer(x_in)))
    x = rng.standard_normal((2, 6, 5, channels))
    G = rng.standard_normal((2, 6, 5, channels))
    with mc.use_kernels(kernels), mc.use_conv_algorithm(algorithm):
        loss, (dx,) = loss_and_input_gradients(model, [x], G)
        assert relative_error(dx.reshape(-1), numeric_gradient(loss, x, np.arange(x.size))) < 1e-7
        for key, value in layer.params.items():
            numeric = numeric_gradient(loss, value, np.arange(value.size))
            np.testing.assert_allclose(layer.grads[key].reshape(-1), numeric, rtol=1e-6, atol=1e-8, err_msg=key)
