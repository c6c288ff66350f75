"""`.keras` files both ways: Keras 3 writes, minicnn reads (and the reverse), with weights and
optimizer state; save_weights/load_weights; legacy Keras 2 .h5 models; clear errors."""
import os
import zipfile

import numpy as np
import pytest

import minicnn as mc

pytestmark = pytest.mark.tf
import keras  # noqa: E402  (TensorFlow is a test dependency)
L = keras.layers

RNG = np.random.default_rng(0)
X = RNG.random((6, 8, 8, 3)).astype("float32")
Y = np.eye(2, dtype="float32")[[0, 1, 1, 0, 1, 0]]


def keras_functional_with_nested_sequential():
    x = keras.Input((8, 8, 3))
    h = L.MaxPooling2D()(L.Conv2D(4, 3, activation="relu")(x))
    inner = keras.Sequential([keras.Input((3, 3, 4)), L.Flatten(), L.Dense(5, activation="relu")])
    y = L.Dense(2, activation="softmax")(L.Dropout(0.0)(inner(h)))
    return keras.Model(x, y)


def minicnn_models():
    seq = mc.Sequential([mc.layers.Input((8, 8, 3)), mc.layers.Conv2D(4, 3, activation="relu"),
                         mc.layers.MaxPool2D(), mc.layers.Flatten(), mc.layers.Dense(2, activation="softmax")])
    x = mc.Input((8, 8, 3))
    base = mc.Sequential([mc.layers.Input((8, 8, 3)), mc.layers.Conv2D(4, 3, padding="same", activation="relu"),
                          mc.layers.MaxPooling2D()])
    h = mc.layers.GlobalAveragePooling2D()(base(x))
    y = mc.layers.Dense(2, activation="softmax")(mc.layers.Dense(6, activation="relu")(h))
    return [seq, mc.Model(x, y)]


def keras_optimizer_values(model):
    return [np.asarray(v) for v in model.optimizer.variables]


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd_momentum"])
def test_keras_file_loads_in_minicnn_with_optimizer_state(tmp_path, optimizer):
    theirs = keras_functional_with_nested_sequential()
    opt = {"adam": keras.optimizers.Adam(1e-2), "rmsprop": keras.optimizers.RMSprop(1e-2, momentum=0.5),
           "sgd_momentum": keras.optimizers.SGD(1e-2, momentum=0.9)}[optimizer]
    theirs.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
    theirs.fit(X, Y, batch_size=3, epochs=1, shuffle=False, verbose=0)
    path = tmp_path / "k.keras"
    theirs.save(path)
    ours = mc.models.load_model(path)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    assert ours.optimizer.iterations == 2 and list(ours.metric_fns) == ["accuracy"]
    # one more step in each from the same state: the same new weights
    theirs.train_on_batch(X, Y)
    ours.train_on_batch(X, Y)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("which", [0, 1])
def test_minicnn_keras_file_loads_in_keras_and_training_continues(tmp_path, which):
    ours = minicnn_models()[which]
    ours.compile(optimizer=mc.optimizers.Adam(1e-2), loss="categorical_crossentropy", metrics="accuracy")
    ours.fit(X, Y, batch_size=3, epochs=1, shuffle=False, verbose=0)
    path = tmp_path / "m.keras"
    ours.save(path, include_optimizer=True)
    theirs = keras.models.load_model(path)
    assert [layer.name for layer in theirs.layers] == [layer.name for layer in ours.layers]
    np.testing.assert_allclose(theirs.predict(X, verbose=0), ours.predict(X), rtol=1e-5, atol=1e-6)
    assert int(theirs.optimizer.iterations) == 2
    theirs.train_on_batch(X, Y)
    ours.train_on_batch(X, Y)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_hand_off_minicnn_keras_fit_minicnn(tmp_path):
    """The README's hand-off: minicnn -> .keras -> Keras fit -> .keras -> minicnn."""
    ours = minicnn_models()[1]
    ours.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    ours.save(tmp_path / "start.keras")
    theirs = keras.models.load_model(tmp_path / "start.keras")
    theirs.fit(X, Y, epochs=1, verbose=0)
    theirs.save(tmp_path / "trained.keras")
    back = mc.models.load_model(tmp_path / "trained.keras")
    np.testing.assert_allclose(back.predict(X), theirs.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    assert back.optimizer.iterations == int(theirs.optimizer.iterations) == 1
    assert not np.allclose(back.get_weights()[0], ours.get_weights()[0])      # Keras's training came back


def test_weights_h5_both_ways(tmp_path):
    ours = minicnn_models()[1]
    twin = keras.models.load_model(_saved(ours, tmp_path / "a.keras"))
    twin.set_weights([w + 0.5 for w in twin.get_weights()])
    twin.save_weights(tmp_path / "k.weights.h5")
    ours.load_weights(tmp_path / "k.weights.h5")
    np.testing.assert_allclose(ours.predict(X), twin.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    ours.set_weights([w * 0.9 for w in ours.get_weights()])
    ours.save_weights(tmp_path / "m.weights.h5")
    twin.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_allclose(twin.predict(X, verbose=0), ours.predict(X), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        ours.save_weights(tmp_path / "w.h5")


def _saved(model, path):
    model.save(path)
    return path


def test_legacy_keras2_h5_model_loads(tmp_path):
    theirs = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(3, 3, activation="relu"), L.MaxPooling2D(),
                               L.Flatten(), L.Dense(2, activation="softmax")])
    theirs.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    path = str(tmp_path / "legacy.h5")
    theirs.save(path)
    ours = mc.models.load_model(path)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    assert ours.loss.name == "categorical_crossentropy" and ours.optimizer.name == "rmsprop"


def test_unknown_layers_are_listed_by_class_and_name(tmp_path):
    x = keras.Input((8, 8, 3))
    h = L.LayerNormalization(name="ln")(L.Conv2D(2, 3)(x))
    y = L.Dense(1)(L.Flatten()(L.Conv3DTranspose(2, 3, name="up")(L.Reshape((6, 6, 2, 1))(h))))
    path = tmp_path / "ln.keras"
    keras.Model(x, y).save(path)
    with pytest.raises(ValueError, match=r"LayerNormalization \(ln\), Conv3DTranspose \(up\)"):
        mc.models.load_model(path)


def test_corrupt_files_name_the_file(tmp_path):
    bad_zip = tmp_path / "bad.keras"
    bad_zip.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="bad.keras"):
        mc.models.load_model(bad_zip)
    broken_h5 = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken_h5, "w") as z:
        z.writestr("config.json", mc.Sequential([mc.layers.Input((2,)), mc.layers.Dense(1)]).to_json())
        z.writestr("model.weights.h5", b"\x89HDF\r\n garbage")
    with pytest.raises(ValueError, match="broken.keras.*HDF5"):
        mc.models.load_model(broken_h5)
    bad_h5 = tmp_path / "bad.h5"
    bad_h5.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="bad.h5"):
        mc.models.load_model(bad_h5)


def test_to_json_and_from_config_round_trip():
    for model in minicnn_models():
        again = mc.models.model_from_json(model.to_json())
        assert [type(a) for a in again.layers] == [type(b) for b in model.layers]
        assert again.count_params() == model.count_params()
        keras_twin = keras.models.model_from_json(model.to_json())
        assert keras_twin.count_params() == model.count_params()


def test_mnc_files_still_load(tmp_path):
    model = minicnn_models()[0]
    model.save(tmp_path / "m.mnc")
    np.testing.assert_array_equal(mc.models.load_model(tmp_path / "m.mnc").predict(X), model.predict(X))
    assert os.path.getsize(tmp_path / "m.mnc") > 0


def keras2_names(path, old_name, new_name):
    """Rewrite the model config stored in ``path`` (.h5 or .keras) with ``new_name`` in place of ``old_name``."""
    if path.suffix == ".h5":
        import h5py
        with h5py.File(path, "r+") as f:
            f.attrs["model_config"] = f.attrs["model_config"].replace(f'"{old_name}"', f'"{new_name}"')
        return
    with zipfile.ZipFile(path) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    entries["config.json"] = entries["config.json"].replace(f'"{old_name}"'.encode(), f'"{new_name}"'.encode())
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)


@pytest.mark.parametrize("suffix", ["h5", "keras"])
def test_keras2_leaky_relu_alpha_is_read_as_negative_slope(tmp_path, suffix):
    """Keras 2 wrote LeakyReLU's slope as ``alpha``: Keras 3 reads it as negative_slope, and so does minicnn."""
    made = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(3, 3), L.LeakyReLU(negative_slope=0.1), L.Flatten(),
                             L.Dense(2)])
    path = tmp_path / f"keras2.{suffix}"
    made.save(path)
    keras2_names(path, "negative_slope", "alpha")
    with pytest.warns(UserWarning, match="alpha"):
        theirs = keras.models.load_model(path)
    with pytest.warns(UserWarning, match="alpha"):
        ours = mc.models.load_model(path)
    assert [layer.negative_slope for layer in ours.layers if isinstance(layer, mc.layers.LeakyReLU)] == [0.1]
    x = X - 0.5                                                 # negative inputs: the slope matters
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
