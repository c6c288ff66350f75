"""TensorFlow parity with the arrays on the GPU, also where TensorFlow is not installed (the
GPU machine): what TensorFlow computes for fixed cases (inputs, weights, upstream
gradients, outputs and every gradient, float64) is stored in ``tests/data/tf_reference.npz``.
Where TensorFlow imports, a test checks that the file still holds what it computes; on every
backend (``kernels`` fixture, the GPU included) minicnn must match the file.

    python tests/test_gpu_tf_reference.py       # rewrite the file from TensorFlow
"""
import io
import pathlib

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, layers

REFERENCE = pathlib.Path(__file__).parent / "data" / "tf_reference.npz"
TOL = 1e-9       # float64: relative to the norms (see ``rel``)

LAYER_CASES = {  # name: (minicnn layer, its Keras twin's constructor arguments, input shape, distinct input values)
    "conv_same_relu": (lambda: layers.Conv2D(5, 3, padding="same", activation="relu", dtype="float64"),
                       ("Conv2D", (5, 3), {"padding": "same", "activation": "relu"}), (3, 7, 6, 4), False),
    "conv_even_strided_same": (lambda: layers.Conv2D(4, (4, 2), (2, 3), "same", dtype="float64"),
                               ("Conv2D", (4, (4, 2), (2, 3), "same"), {}), (2, 9, 8, 3), False),
    "conv_valid_sigmoid": (lambda: layers.Conv2D(3, (2, 3), activation="sigmoid", dtype="float64"),
                           ("Conv2D", (3, (2, 3)), {"activation": "sigmoid"}), (2, 6, 7, 2), False),
    "maxpool_overlapping_same": (lambda: layers.MaxPooling2D(3, 2, "same"),
                                 ("MaxPooling2D", (3, 2, "same"), {}), (2, 7, 7, 3), True),
    "dense_softmax_4d": (lambda: layers.Dense(6, activation="softmax", dtype="float64"),
                         ("Dense", (6,), {"activation": "softmax"}), (2, 3, 3, 5), False),
}


def rel(a, b):
    """‖a − b‖ / max(‖a‖ + ‖b‖, 1) (as tests/tf_helpers.py)."""
    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1.0))


def layer_inputs(name, seed):
    shape, distinct = LAYER_CASES[name][2], LAYER_CASES[name][3]
    rng = np.random.default_rng(seed)
    if distinct:                 # no max-pool ties (tests/conftest.py's distinct_values)
        return rng.permutation(np.linspace(-1, 1, int(np.prod(shape)))).reshape(shape)
    return rng.standard_normal(shape)


def model_case():
    """A small CNN (conv 'same' + ReLU, max-pool, conv 'valid' + ReLU, dense softmax) in
    float64, with a batch and its one-hot labels."""
    previous = backend.floatx()
    mc.set_floatx("float64")
    try:
        mc.set_seed(0)
        model = mc.Sequential([layers.Input((10, 10, 2)), layers.Conv2D(4, 3, padding="same", activation="relu"),
                               layers.MaxPooling2D(2), layers.Conv2D(6, 3, activation="relu"), layers.Flatten(),
                               layers.Dense(10, activation="softmax")], name="small_cnn")
    finally:
        mc.set_floatx(previous)
    model.compile("sgd", "categorical_crossentropy")
    rng = np.random.default_rng(5)
    return model, rng.uniform(0, 1, (4, 10, 10, 2)), np.eye(10)[rng.integers(0, 10, 4)]


def tensorflow_reference():
    """Every case computed by TensorFlow, as the arrays stored in the reference file."""
    from tf_helpers import keras, tf, tf_layer_gradients
    from minicnn.keras_bridge import to_keras
    stored = {}
    for i, (name, (make, (kind, args, kwargs), _, _)) in enumerate(LAYER_CASES.items()):
        mc.set_seed(i)
        ours = make()
        x = layer_inputs(name, i)
        ours.build((None, *x.shape[1:]))
        theirs = getattr(keras.layers, kind)(*args, **kwargs, dtype="float64")
        theirs.build((None, *x.shape[1:]))
        weights = ours.get_weights()
        theirs.set_weights(weights)
        upstream = np.random.default_rng(100 + i).standard_normal(ours.compute_output_shape(x.shape))
        y, dx, dparams = tf_layer_gradients(theirs, x, upstream)
        stored.update({f"{name}/x": x, f"{name}/upstream": upstream, f"{name}/y": y, f"{name}/dx": dx})
        stored.update({f"{name}/w{j}": w for j, w in enumerate(weights)})
        stored.update({f"{name}/d{j}": d for j, d in enumerate(dparams)})
    model, x, y = model_case()
    twin = to_keras(model)
    with tf.GradientTape() as tape:
        probabilities = twin(tf.constant(x), training=True)
        loss = keras.losses.CategoricalCrossentropy(dtype="float64")(tf.constant(y), probabilities)
    grads = tape.gradient(loss, twin.trainable_weights)
    stored.update({"model/x": x, "model/y": y, "model/probabilities": probabilities.numpy(),
                   "model/loss": np.asarray(float(loss))})
    stored.update({f"model/w{j}": w for j, w in enumerate(model.get_weights())})
    stored.update({f"model/d{j}": g.numpy() for j, g in enumerate(grads)})
    return stored


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as f:
        return dict(f)


@pytest.mark.tf
def test_the_stored_reference_is_what_tensorflow_computes(reference):
    pytest.importorskip("tensorflow")
    fresh = tensorflow_reference()
    assert sorted(fresh) == sorted(reference)
    for key, value in fresh.items():
        assert rel(value, reference[key]) < 1e-12, key


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layers_match_the_tensorflow_reference(kernels, reference, name):
    layer = LAYER_CASES[name][0]()
    x = reference[f"{name}/x"]
    layer.build((None, *x.shape[1:]))
    layer.set_weights([reference[f"{name}/w{j}"] for j in range(len(layer.params))])
    layer.params = {k: kernels(v) for k, v in layer.params.items()}
    y = layer.forward(kernels(x), training=True)
    dx = layer.backward(kernels(reference[f"{name}/upstream"]))
    assert type(y) is type(kernels(x))
    assert rel(backend.to_numpy(y), reference[f"{name}/y"]) < TOL
    assert rel(backend.to_numpy(dx), reference[f"{name}/dx"]) < TOL
    for j, key in enumerate(layer.params):
        assert rel(backend.to_numpy(layer.grads[key]), reference[f"{name}/d{j}"]) < TOL, key


def test_a_model_step_matches_the_tensorflow_reference(kernels, reference):
    """Forward, fused softmax cross-entropy and backward of a small CNN: the probabilities,
    the loss and every weight's gradient."""
    model, _, _ = model_case()
    model.set_weights([reference[f"model/w{j}"] for j in range(len(model.get_weights()))])
    model.to(kernels.device)
    probabilities = model.forward(kernels(reference["model/x"]), training=True)
    loss, fused = model._loss_and_seed(probabilities, kernels(reference["model/y"]))
    model.backward(model.loss.backward(), from_logits=fused, input_grad=False)
    assert rel(backend.to_numpy(probabilities), reference["model/probabilities"]) < TOL
    assert abs(loss - float(reference["model/loss"])) < TOL * max(abs(loss), 1)
    grads = [g for layer in model.layers for g in layer.grads.values()]
    assert len(grads) == len([k for k in reference if k.startswith("model/d")])
    for j, grad in enumerate(grads):
        assert rel(backend.to_numpy(grad), reference[f"model/d{j}"]) < TOL, j


if __name__ == "__main__":
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from minicnn.saving import atomic_write_bytes
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **tensorflow_reference())
    REFERENCE.parent.mkdir(exist_ok=True)
    atomic_write_bytes(REFERENCE, buffer.getvalue())
    print(f"wrote {REFERENCE} ({len(buffer.getvalue())} bytes)")
