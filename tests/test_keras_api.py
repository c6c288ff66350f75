"""Keras 3's module map: what `import minicnn as keras` users type."""
import hashlib
import importlib

import numpy as np
import pytest

import minicnn as mc


@pytest.mark.parametrize("module", ["models", "layers", "optimizers", "losses", "metrics", "activations",
                                    "callbacks", "datasets", "preprocessing.image", "utils", "applications",
                                    "applications.vgg16", "applications.vgg19", "applications.xception",
                                    "applications.inception_v3", "backend", "ops"])
def test_keras_modules_import(module):
    importlib.import_module(f"minicnn.{module}")


def test_module_attributes_after_plain_import():
    assert callable(mc.datasets.mnist.load_data) and callable(mc.utils.to_categorical)
    assert mc.layers.MaxPool2D is mc.layers.MaxPooling2D and mc.layers.Convolution2D is mc.layers.Conv2D
    assert callable(mc.backend.clear_session) and mc.backend.image_data_format() == "channels_last"
    from minicnn.preprocessing.image import ImageDataGenerator, img_to_array, load_img  # noqa: F401


@pytest.mark.parametrize("metrics", ["accuracy", ("accuracy",), ["acc"], {"dense": "accuracy"}])
def test_metrics_in_every_keras_form(metrics):
    model = mc.Sequential([mc.layers.Input((4,)), mc.layers.Dense(2, activation="softmax", name="dense")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=metrics)
    x = np.random.default_rng(0).random((6, 4)).astype("float32")
    history = model.fit(x, np.eye(2, dtype="float32")[[0, 1] * 3], verbose=0)
    assert set(history.history) == {"loss", "acc" if metrics == ["acc"] else "accuracy"}


def test_loss_and_optimizer_objects_classes_and_names():
    for loss in ("categorical_crossentropy", "CategoricalCrossentropy", mc.losses.CategoricalCrossentropy,
                 mc.losses.categorical_crossentropy):
        assert mc.losses.get(loss).name == "categorical_crossentropy"
    for opt in ("adam", "Adam", mc.optimizers.Adam, mc.optimizers.Adam(1e-3)):
        assert isinstance(mc.optimizers.get(opt), mc.optimizers.Adam)
    with pytest.raises(ValueError, match="unknown loss"):
        mc.losses.get("hinge_of_doom")


def test_activation_functions_as_layer_arguments():
    x = np.array([[-1.0, 0.5, 2.0]])
    assert np.array_equal(mc.activations.relu(x), [[0, 0.5, 2]])
    assert np.allclose(mc.activations.softmax(x).sum(-1), 1)
    assert mc.layers.Dense(3, activation=mc.activations.relu).activation.name == "relu"


@pytest.mark.tf
def test_losses_functions_and_ops_match_keras():
    import keras
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4), 5)
    y = np.eye(4)[rng.integers(0, 4, 5)]
    np.testing.assert_allclose(mc.losses.categorical_crossentropy(y, p),
                               keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(y, p)), rtol=1e-6)
    np.testing.assert_allclose(mc.losses.binary_crossentropy(y, p),
                               keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(y, p)), rtol=1e-6)
    x = rng.normal(size=(3, 4))
    for name, args in [("mean", {"axis": 0}), ("sum", {}), ("max", {"axis": -1}), ("argmax", {"axis": -1}),
                       ("expand_dims", {"axis": 1}), ("softmax", {}), ("relu", {}), ("square", {})]:
        ours = getattr(mc.ops, name)(x, **args)
        theirs = keras.ops.convert_to_numpy(getattr(keras.ops, name)(x, **args))
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, err_msg=name)
    assert mc.ops.ones((2, 3)).dtype == np.float32 and mc.ops.convert_to_numpy(mc.ops.zeros((1,))).shape == (1,)


def test_to_categorical_and_normalize():
    assert np.array_equal(mc.utils.to_categorical([[2], [0]], 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        mc.utils.to_categorical([3], 3)
    np.testing.assert_allclose(np.linalg.norm(mc.utils.normalize(np.array([[3.0, 4.0], [0, 0]])), axis=-1), [1, 0])


def test_get_file_cache_layout_and_hash_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_HOME", str(tmp_path / "home"))
    source = tmp_path / "remote.bin"
    source.write_bytes(b"weights")
    md5, sha = hashlib.md5(b"weights").hexdigest(), hashlib.sha256(b"weights").hexdigest()
    path = mc.utils.get_file("w.bin", source.as_uri(), file_hash=md5, cache_subdir="models")
    assert path == str(tmp_path / "home" / "models" / "w.bin")
    source.write_bytes(b"changed")                            # the cached file is used when its hash matches
    assert mc.utils.get_file("w.bin", source.as_uri(), file_hash=sha, cache_subdir="models") == path
    with pytest.raises(ValueError, match="does not match its hash"):       # stale cache -> download -> bad hash
        mc.utils.get_file("w.bin", source.as_uri(), file_hash=hashlib.md5(b"other").hexdigest(),
                          cache_subdir="models")
    with open(path, "rb") as f:
        assert f.read() == b"weights"                         # a failed download never replaces the file


def test_get_file_offline_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_HOME", str(tmp_path))
    missing = (tmp_path / "nowhere" / "f.h5").as_uri()
    with pytest.raises(FileNotFoundError, match=r"f\.h5.*put it at .*models/f\.h5"):
        mc.utils.get_file("f.h5", missing, cache_subdir="models")
    with pytest.raises(FileNotFoundError, match="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        mc.applications.VGG16(include_top=False, weights="imagenet", input_shape=(32, 32, 3))


def test_image_utils_round_trip(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype("float32")
    mc.utils.save_img(tmp_path / "a.png", x, scale=False)
    img = mc.utils.load_img(tmp_path / "a.png")
    assert np.array_equal(mc.utils.img_to_array(img), x)
    assert mc.utils.img_to_array(mc.utils.load_img(tmp_path / "a.png", color_mode="grayscale",
                                                   target_size=(3, 4))).shape == (3, 4, 1)


def test_vgg16_seed_003_transfer_learning_counts():
    conv_base = mc.applications.VGG16(weights=None, include_top=False, input_shape=(150, 150, 3))
    model = mc.models.Sequential([conv_base, mc.layers.Flatten(), mc.layers.Dense(256, activation="relu"),
                                  mc.layers.Dense(1, activation="sigmoid")])
    conv_base.trainable = False
    text = model.summary(print_fn=None)
    assert "Total params: 16,812,353" in text and "Trainable params: 2,097,665" in text
    assert "Non-trainable params: 14,714,688" in text
    model.compile(optimizer=mc.optimizers.RMSprop(learning_rate=2e-5), loss="binary_crossentropy", metrics=["acc"])
    model.train_on_batch(np.zeros((1, 150, 150, 3), "float32"), np.ones((1, 1), "float32"))
    text = model.summary(print_fn=None)       # the tutorial's table, printed after fit: optimizer variables count
    assert "Total params: 18,910,020" in text and "Optimizer params: 2,097,667" in text
    conv_base.trainable = True
    for layer in conv_base.layers:
        layer.trainable = layer.name.startswith("block5")
    assert sum(w.value.size for w in model.trainable_weights) == 2_097_665 + 7_079_424


def test_vgg_defaults_are_keras():
    top = mc.applications.vgg16.VGG16(weights=None)
    assert top.input_shape == (None, 224, 224, 3) and top.output_shape == (None, 1000)
    assert mc.applications.VGG19(weights=None, include_top=False).input_shape == (None, None, None, 3)
    x = np.arange(12, dtype="float32").reshape(1, 2, 2, 3)
    np.testing.assert_allclose(mc.applications.vgg16.preprocess_input(x)[0, 0, 0], [2 - 103.939, 1 - 116.779, -123.68],
                               rtol=1e-6)


def _small_model():
    model = mc.Sequential([mc.layers.Input((6, 6, 1)), mc.layers.Conv2D(2, 3, activation="relu"),
                           mc.layers.Flatten(), mc.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=12):
    rng = np.random.default_rng(3)
    return rng.random((n, 6, 6, 1)).astype("float32"), np.eye(2, dtype="float32")[rng.integers(0, 2, n)]


def test_fit_takes_generators_and_sequences_for_x_and_validation_data():
    x, y = _data()
    flow = mc.preprocessing.image.ImageDataGenerator().flow(x, y, batch_size=4, shuffle=False)

    def endless():
        while True:
            for i in range(0, 12, 4):
                yield x[i:i + 4], y[i:i + 4]

    model = _small_model()
    history = model.fit(endless(), steps_per_epoch=3, epochs=2, validation_data=flow, validation_steps=2, verbose=0)
    assert len(history.history["val_loss"]) == 2
    history = model.fit(flow, epochs=1, validation_data=endless(), validation_steps=3, verbose=0)
    expected = model.evaluate(x, y, verbose=0, return_dict=True)
    assert history.history["val_loss"][0] == pytest.approx(expected["loss"], rel=1e-6)
    assert model.evaluate(endless(), steps=3, verbose=0)[0] == pytest.approx(expected["loss"], rel=1e-6)


def test_flow_without_y_yields_x_and_loops_forever():
    x, _ = _data(5)
    flow = mc.preprocessing.image.ImageDataGenerator(rescale=2.0).flow(x, batch_size=2, shuffle=False)
    batches = [next(flow) for _ in range(7)]                  # 3 batches per pass; passes repeat
    assert all(isinstance(b, np.ndarray) for b in batches)
    assert [len(b) for b in batches] == [2, 2, 1, 2, 2, 1, 2]
    np.testing.assert_allclose(batches[3], 2 * x[:2])
    assert _small_model().predict(flow).shape == (5, 2)


def test_predict_casts_integer_images_and_takes_a_missing_or_extra_trailing_axis():
    model = _small_model()
    x = np.random.default_rng(0).integers(0, 256, (3, 6, 6, 1)).astype("uint8")
    expected = model.predict(x.astype("float32"))
    np.testing.assert_allclose(model.predict(x), expected)
    np.testing.assert_allclose(model.predict(x[..., 0]), expected)
    dense = mc.Sequential([mc.layers.Input((4,)), mc.layers.Dense(1)])
    z = np.ones((2, 4, 1), "float32")
    np.testing.assert_allclose(dense.predict(z), dense.predict(z[..., 0]))


def test_predict_on_batch_is_predict_on_one_batch_as_in_keras():
    model = _small_model()
    x, _ = _data(5)
    np.testing.assert_allclose(model.predict_on_batch(x), model.predict(x, batch_size=2), rtol=1e-6)
    two = mc.Model(model.inputs, [model.output, model.layers[1].output])
    assert [a.shape[0] for a in two.predict_on_batch(x)] == [5, 5]


def test_callbacks_take_keras_arguments(tmp_path, capsys):
    x, y = _data()
    model = _small_model()
    stop = mc.callbacks.EarlyStopping(monitor="loss", patience=0, verbose=1, baseline=-1.0)
    save = mc.callbacks.ModelCheckpoint(str(tmp_path / "b{epoch}.weights.h5"), save_weights_only=True, save_freq=2)
    model.fit(x, y, batch_size=4, epochs=3, callbacks=[stop, save], verbose=0)
    assert stop.stopped_epoch == 0 and "early stopping" in capsys.readouterr().out   # nothing beats the baseline
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b1.weights.h5"]          # batch 2 of epoch 1
    with pytest.raises(ValueError, match="save_freq"):
        mc.callbacks.ModelCheckpoint("m.keras", save_freq=0)
