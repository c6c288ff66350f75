"""Every new layer round-trips through model.save / mc.load_model, and takes its weights from a
Keras 3 .weights.h5 file of the same architecture (BatchNormalization's moving statistics too)."""
import numpy as np

import minicnn as mc
from minicnn import layers
from tf_helpers import keras


def architecture(L, **dtype):
    """The same stack in minicnn (L = mc.layers) or Keras (L = keras.layers)."""
    return [L.Conv2D(4, 3, padding="same", dilation_rate=2, **dtype), L.BatchNormalization(momentum=0.5, **dtype),
            L.PReLU(shared_axes=[1, 2], **dtype), L.Conv2D(4, 3, groups=2, activation="elu", **dtype),
            L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", **dtype),
            L.SeparableConv2D(4, 3, padding="same", activation="gelu", **dtype), L.LeakyReLU(**dtype),
            L.Conv2DTranspose(4, 2, strides=2, **dtype), L.AveragePooling2D(2, padding="same", **dtype),
            L.ZeroPadding2D(((1, 0), (2, 1)), **dtype), L.Cropping2D(1, **dtype), L.UpSampling2D(2, **dtype),
            L.ELU(0.5, **dtype), L.GlobalMaxPooling2D(**dtype), L.Reshape((2, 2), **dtype),
            L.Permute((2, 1), **dtype), L.Flatten(**dtype), L.Dense(3, activation="selu", **dtype),
            L.Softmax(**dtype)]


def trained_model():
    rng = np.random.default_rng(0)
    model = mc.Sequential([layers.Input((8, 8, 3)), *architecture(layers)])
    model.compile("adam", "mse")
    x, y = rng.standard_normal((6, 8, 8, 3)), rng.uniform(0, 1, (6, 3))
    model.train_on_batch(x, y)
    return model, x


def test_new_layers_round_trip_through_save_and_load(tmp_path, float64):
    model, x = trained_model()
    model.save(tmp_path / "model.mnc")
    loaded = mc.load_model(tmp_path / "model.mnc")
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert [a.get_config() for a in loaded.layers] == [b.get_config() for b in model.layers]
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    bn = model.get_layer("batch_normalization")
    assert not np.allclose(bn.params["moving_mean"], 0)      # the step moved them, and they were saved


def test_new_layers_take_keras_weight_files(tmp_path, float64):
    model, x = trained_model()
    twin = keras.Sequential([keras.Input((8, 8, 3), dtype="float64"), *architecture(keras.layers, dtype="float64")])
    twin.set_weights(model.get_weights())
    twin.save_weights(tmp_path / "twin.weights.h5")
    fresh = mc.Sequential([layers.Input((8, 8, 3)), *architecture(layers)])
    mc.load_keras_weights(fresh, tmp_path / "twin.weights.h5")
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(fresh.predict(x, verbose=0), twin.predict(x, verbose=0), rtol=1e-8, atol=1e-10)
