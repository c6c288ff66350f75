"""Losses, optimizers and whole models on every backend (``kernels`` fixture: NumPy, Numba
and, on a GPU, CuPy) against the NumPy path on the host, the reference the other suites
check against TensorFlow and the loop references."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn import architectures, backend, layers, losses, optimizers

LOSSES = [losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy, losses.BinaryCrossentropy]


def loss_inputs(loss_cls, n, k, from_logits, rng):
    """Predictions (logits, or probabilities of the loss's kind) and labels."""
    z = rng.standard_normal((n, k)) * 3
    if loss_cls is losses.SparseCategoricalCrossentropy:
        y = rng.integers(0, k, n)
    elif loss_cls is losses.BinaryCrossentropy:
        y = rng.integers(0, 2, (n, k)).astype(np.float64)
    else:
        y = np.eye(k)[rng.integers(0, k, n)]
    if from_logits:
        return z, y
    probs = 1 / (1 + np.exp(-z)) if loss_cls is losses.BinaryCrossentropy else \
        np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    return probs, y


@pytest.mark.parametrize("loss_cls", LOSSES)
@pytest.mark.parametrize("from_logits", [False, True])
@given(n=st.integers(1, 17), k=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_losses_equal_the_host_numpy_path(kernels, loss_cls, from_logits, n, k, seed):
    pred, y = loss_inputs(loss_cls, n, k, from_logits, np.random.default_rng(seed))
    loss = loss_cls(from_logits=from_logits)
    value, grad = loss.forward(kernels(pred), kernels(y)), loss.backward()
    assert type(grad) is type(kernels(pred))                    # the gradient stays on the device
    with mc.use_kernels("numpy"):
        expected_value, expected_grad = loss.forward(pred, y), loss.backward()
    np.testing.assert_allclose(float(value), float(expected_value), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(backend.to_numpy(grad), expected_grad, rtol=1e-10, atol=1e-14)


OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(0.05),
    "sgd-momentum": lambda: optimizers.SGD(0.05, momentum=0.9),
    "sgd-nesterov": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: optimizers.RMSprop(0.01),
    "rmsprop-momentum": lambda: optimizers.RMSprop(0.01, momentum=0.5),
    "adam": lambda: optimizers.Adam(0.01),
}


def three_steps(make, move, shape, dtype, seed):
    """(the parameter after three updates, its optimizer) with gradients drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    params = {"kernel": move(rng.standard_normal(shape).astype(dtype))}
    optimizer = make()
    for _ in range(3):
        optimizer.apply([(("layer", "kernel"), params, "kernel", move(rng.standard_normal(shape).astype(dtype)))])
    return params["kernel"], optimizer


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=3).map(tuple),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**16))
def test_optimizers_equal_the_host_numpy_path(kernels, name, shape, dtype, seed):
    updated, optimizer = three_steps(OPTIMIZERS[name], kernels, shape, dtype, seed)
    with mc.use_kernels("numpy"):
        expected, _ = three_steps(OPTIMIZERS[name], np.asarray, shape, dtype, seed)
    assert updated.dtype == np.dtype(dtype) and type(updated) is type(kernels(expected))
    for slots in optimizer.slots.values():                      # the state lives beside the parameter
        assert all(type(s) is type(updated) for s in slots.values())
    np.testing.assert_allclose(backend.to_numpy(updated), expected, rtol=1e-5 if dtype == "float32" else 1e-12)


# The seed architectures at input sizes small enough for a test (each still reaches its Dense layers).
SMALL_INPUTS = {"face_fcnn": (12, 12, 1), "face_cnn": (16, 16, 1), "mnist_deconstructed": (16, 16, 1),
                "mnist_cnn": (12, 12, 1), "mnist_convnet": (20, 20, 1), "cifar_six_conv": (12, 12, 3),
                "cats_dogs_cnn": (46, 46, 3), "cats_dogs_small": (30, 30, 3)}


def seed_model(name, device, seed=0):
    """The architecture with seeded weights, its dropout off (masks are drawn per device),
    compiled with its tutorial's loss, on ``device``."""
    mc.set_seed(seed)
    model = architectures.SEED_MODELS[name](SMALL_INPUTS[name])
    for layer in model.layers:
        if isinstance(layer, layers.Dropout):
            layer.rate = 0.0
    binary = model.output_shape[-1] == 1
    model.compile(optimizers.Adam(1e-3), "binary_crossentropy" if binary else "categorical_crossentropy")
    return model.to(device)


def batch(model, n=6, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, *model.input_shape[1:])).astype("float32")
    k = model.output_shape[-1]
    y = rng.integers(0, 2, (n, 1)).astype("float32") if k == 1 else np.eye(k, dtype="float32")[rng.integers(0, k, n)]
    return x, y


@pytest.mark.parametrize("name", sorted(SMALL_INPUTS))
def test_seed_models_train_as_on_the_host(kernels, name):
    """Two training steps (forward, loss, backward, Adam) and a prediction on the backend
    equal those of the NumPy path on the host, weight for weight."""
    model = seed_model(name, kernels.device)
    x, y = batch(model)
    losses_seen = [model.train_on_batch(x, y) for _ in range(2)]
    predicted = model.predict(x)
    assert isinstance(predicted, np.ndarray)                   # Keras: predictions come back to the host
    with mc.use_kernels("numpy"):
        reference = seed_model(name, "cpu")
        expected_losses = [reference.train_on_batch(x, y) for _ in range(2)]
        np.testing.assert_allclose(losses_seen, expected_losses, rtol=1e-4)
        for ours, theirs in zip(model.get_weights(), reference.get_weights()):
            np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(predicted, reference.predict(x), rtol=1e-4, atol=1e-6)


def test_fit_evaluate_and_save_from_the_backend(kernels, tmp_path):
    """fit (shuffled, with validation), evaluate and save/load run end to end on the
    backend; the saved model predicts on the host as it did there."""
    model = seed_model("mnist_deconstructed", kernels.device)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (40, 16, 16, 1)).astype("float32")
    y = rng.integers(0, 10, 40)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, verbose=0)
    assert all(np.isfinite(v).all() for v in history.history.values())
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert np.isfinite(loss) and 0 <= accuracy <= 1
    model.save(tmp_path / "m.keras")
    with mc.use_kernels("numpy"):
        np.testing.assert_allclose(mc.load_model(tmp_path / "m.keras").predict(x), model.predict(x),
                                   rtol=1e-4, atol=1e-6)


def test_dropout_keeps_one_mask_for_forward_and_backward(kernels):
    """On any device: inverted dropout scales the kept units by 1/(1 − rate), drops about
    ``rate`` of them, and its backward applies the same mask."""
    layer = layers.Dropout(0.25, seed=3)
    x = kernels(np.ones((64, 32), np.float32))
    y = backend.to_numpy(layer.forward(x, training=True))
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert 0.2 < 1 - kept.mean() < 0.3
    dx = backend.to_numpy(layer.backward(kernels(np.full((64, 32), 2.0, np.float32))))
    np.testing.assert_allclose(dx, 2 * y, rtol=1e-6)
