"""Sequential + fit reproduce TF-Keras training step for step: the same initial weights,
data and shuffle=False, 3 epochs; per-epoch losses and final weights match."""
import numpy as np
import pytest

from tf_helpers import keras
import minicnn as mc
from minicnn import architectures
from minicnn.keras_bridge import to_keras

pytestmark = pytest.mark.tf

OPTIMIZERS = {
    "sgd_momentum": (lambda: mc.optimizers.SGD(0.05, momentum=0.9), lambda: keras.optimizers.SGD(0.05, momentum=0.9)),
    "rmsprop": (lambda: mc.optimizers.RMSprop(0.001), lambda: keras.optimizers.RMSprop(0.001)),
    "adam": (lambda: mc.optimizers.Adam(0.002), lambda: keras.optimizers.Adam(0.002)),
}
ARCHITECTURES = {   # scaled-down inputs; no dropout (its random masks cannot be shared)
    "face_cnn": (lambda: architectures.face_cnn((32, 32, 1)), "binary_crossentropy", 1),
    "mnist_convnet": (lambda: architectures.mnist_convnet((20, 20, 1)), "categorical_crossentropy", 10),
    "cifar_six_conv": (lambda: architectures.cifar_six_conv((16, 16, 3), dropout=0.0),
                       "sparse_categorical_crossentropy", 10),
}


def make_data(shape, loss, classes, n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, *shape)).astype("float32")
    labels = rng.integers(0, max(classes, 2), n)
    x[np.arange(n), 0, 0, 0] += labels                          # make the labels learnable
    if loss == "binary_crossentropy":
        return x, labels.reshape(-1, 1).astype("float32")
    if loss == "categorical_crossentropy":
        return x, np.eye(classes, dtype="float32")[labels]
    return x, labels


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_three_epochs_match_keras(arch, opt):
    build, loss, classes = ARCHITECTURES[arch]
    mc.set_seed(1)
    ours = build()
    theirs = to_keras(ours)
    x, y = make_data(ours.input_shape[1:], loss, classes)
    ours.compile(OPTIMIZERS[opt][0](), loss, metrics=["accuracy"])
    theirs.compile(OPTIMIZERS[opt][1](), loss)   # Keras 3.15's accuracy metric fails on TF 2.21 here
    h_ours = ours.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    h_theirs = theirs.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(h_ours.history["loss"], h_theirs.history["loss"], rtol=1e-3)
    assert h_ours.history["loss"][-1] != h_ours.history["loss"][0]          # it did train
    for w_ours, w_theirs in zip(ours.get_weights(), theirs.get_weights()):
        assert np.abs(w_ours - w_theirs).max() < 1e-3
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0)[0], theirs.evaluate(x, y, verbose=0), rtol=1e-3)


@pytest.mark.parametrize("name", sorted(architectures.SEED_MODELS))
def test_summary_parameter_counts_equal_keras(name):
    ours = architectures.SEED_MODELS[name]()
    text = ours.summary(print_fn=None)
    theirs = to_keras(ours, copy_weights=False)
    assert ours.count_params() == theirs.count_params()
    assert f"Total params: {theirs.count_params():,}" in text
    for ours_layer, their_layer in zip(ours.layers, theirs.layers):
        assert ours_layer.output_shape == tuple(their_layer.output.shape)
        assert ours_layer.count_params() == their_layer.count_params()


def test_quoted_counts():
    counts = {n: f().count_params() for n, f in architectures.SEED_MODELS.items()}
    assert counts == {"face_fcnn": 16393, "face_cnn": 3405, "mnist_deconstructed": 113514, "mnist_cnn": 220234,
                      "mnist_convnet": 93322, "cifar_six_conv": 54106, "cats_dogs_cnn": 3453121,
                      "cats_dogs_small": 4894913}


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras", ".h5"])
def test_keras_files_load_into_minicnn(tmp_path, suffix):
    mc.set_seed(3)
    template = architectures.mnist_convnet((20, 20, 1))
    theirs = to_keras(template, copy_weights=False)     # Keras's own initial weights
    path = str(tmp_path / f"model{suffix}")
    if suffix == ".weights.h5":
        theirs.save_weights(path)
    else:
        theirs.save(path)
    ours = architectures.mnist_convnet((20, 20, 1))
    mc.load_keras_weights(ours, path)
    x = np.random.default_rng(0).uniform(0, 1, (8, 20, 20, 1)).astype("float32")
    assert np.abs(ours.predict(x) - theirs.predict(x, verbose=0)).max() < 1e-5


def test_keras_weights_with_the_wrong_architecture_list_the_mismatch(tmp_path):
    theirs = to_keras(architectures.mnist_convnet((20, 20, 1)), copy_weights=False)
    path = str(tmp_path / "m.weights.h5")
    theirs.save_weights(path)
    with pytest.raises(ValueError, match=r"m.weights.h5: layer '.*' needs weights of shapes \[\(\d+, 64\), \(64,\)\], "
                                         r"the file has \[\(\d+, 64\), \(64,\)\]"):
        mc.load_keras_weights(architectures.mnist_cnn((20, 20, 1)), path)


@pytest.mark.parametrize("batch_norm", [True, False], ids=["bn", "no_bn"])
def test_resnet_example_follows_keras_trajectory_in_float64(batch_norm):
    """examples/resnet.py's float64 claim: from the same weights, on the same batches (a partial last
    batch included), minicnn and Keras train the small ResNet along one trajectory; MNIST digits,
    whose zero borders make many ReLU inputs tie, so a small difference would show."""
    from examples.resnet import LOSS_TOLERANCE, float64_trajectories
    from minicnn.datasets import embedded
    keras.layers.Dense(1)            # a Keras layer made before: Keras's dtype policy is now fixed
    before = mc.backend.floatx(), keras.backend.floatx(), keras.config.dtype_policy().name
    x, y = embedded.load_mnist_digits()
    x = x[..., None] / 255.0
    ours, theirs, worst = float64_trajectories(keras, x[:96], y[:96], x[96:160], y[96:160], 2, batch_norm)
    np.testing.assert_allclose(ours[0]["loss"], theirs[0]["loss"], rtol=LOSS_TOLERANCE, atol=0)
    np.testing.assert_allclose(ours[0]["val_loss"], theirs[0]["val_loss"], rtol=LOSS_TOLERANCE, atol=0)
    assert worst <= LOSS_TOLERANCE and ours[0]["loss"][1] != ours[0]["loss"][0]      # it did train
    assert (mc.backend.floatx(), keras.backend.floatx(), keras.config.dtype_policy().name) == before   # restored
