"""Xception and InceptionV3 against Keras's own builders: parameter counts, layer order and
names, weight shapes, and equal predictions after the Keras weights (random, with random
BatchNormalization statistics) travel through a ``.weights.h5`` file."""
import re

import numpy as np
import pytest

import minicnn as mc

pytestmark = pytest.mark.tf
import keras  # noqa: E402  (TensorFlow is a test dependency)

CASES = {"Xception": (71, "xception"), "InceptionV3": (75, "inception_v3")}


@pytest.mark.parametrize("arch, count", [("Xception", 22_910_480), ("InceptionV3", 23_851_784)])
def test_parameter_counts_with_the_top(arch, count):
    assert getattr(mc.applications, arch)(weights=None).count_params() == count


def auto_name_stem(name):
    return re.sub(r"_\d+$", "", name)


@pytest.mark.parametrize("arch", sorted(CASES))
def test_same_layers_and_predictions_as_keras(arch, tmp_path):
    size, _ = CASES[arch]
    before = keras.backend.floatx()
    keras.backend.set_floatx("float64")
    mc.set_floatx("float64")
    try:
        theirs = getattr(keras.applications, arch)(weights=None, include_top=False, pooling="avg",
                                                   input_shape=(size, size, 3))
        ours = getattr(mc.applications, arch)(weights=None, include_top=False, pooling="avg",
                                              input_shape=(size, size, 3))
        theirs_weighted = [l for l in theirs.layers if l.weights]
        ours_weighted = [l for l in ours.layers if l.params]
        assert [type(l).__name__ for l in ours_weighted] == [type(l).__name__ for l in theirs_weighted]
        for a, b in zip(ours_weighted, theirs_weighted):
            # Keras's explicit names are kept; its automatic ones carry a process-wide counter
            assert a.name == b.name or auto_name_stem(a.name) == auto_name_stem(b.name), (a.name, b.name)
            assert [w.shape for w in a.get_weights()] == [tuple(w.shape) for w in b.get_weights()]
        rng = np.random.default_rng(0)
        for layer in theirs_weighted:
            arrays = [rng.normal(0, 0.1, w.shape) for w in layer.get_weights()]
            if isinstance(layer, keras.layers.BatchNormalization):       # gamma?, beta, mean, variance
                arrays[-1] = rng.uniform(0.5, 1.5, arrays[-1].shape)
                if layer.scale:
                    arrays[0] = rng.uniform(0.5, 1.5, arrays[0].shape)
            layer.set_weights(arrays)
        theirs.save_weights(tmp_path / "k.weights.h5")
        ours.load_weights(tmp_path / "k.weights.h5")
        x = rng.uniform(-1, 1, (2, size, size, 3))
        expected = np.asarray(theirs(x, training=False))
        got = ours.predict(x, verbose=0)
        assert got.shape == expected.shape == (2, theirs.output_shape[-1])
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    finally:
        keras.backend.set_floatx(before)
        mc.set_floatx("float32")


@pytest.mark.parametrize("arch", sorted(CASES))
def test_imagenet_weights_offline_name_the_file(arch, tmp_path, monkeypatch):
    size, kind = CASES[arch]
    monkeypatch.setenv("MINICNN_HOME", str(tmp_path))
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(Exception, match=f"{kind}_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        getattr(mc.applications, arch)(include_top=False, input_shape=(size, size, 3))


@pytest.mark.parametrize("arch", sorted(CASES))
def test_bad_arguments(arch):
    size, _ = CASES[arch]
    build = getattr(mc.applications, arch)
    with pytest.raises(ValueError, match=f"at least {size}"):
        build(weights=None, include_top=False, input_shape=(size - 1, size, 3))
    with pytest.raises(ValueError, match="classes=1000"):
        build(classes=10)
    with pytest.raises(ValueError, match="pooling"):
        build(weights=None, include_top=False, pooling="sum")


def test_preprocess_input_in_tf_mode():
    x = np.array([[[[0, 127.5, 255]]]])
    for module in (mc.applications.xception, mc.applications.inception_v3):
        np.testing.assert_allclose(module.preprocess_input(x), [[[[-1, 0, 1]]]])
        np.testing.assert_allclose(module.preprocess_input(x),
                                   keras.applications.xception.preprocess_input(x.astype("float32")))
