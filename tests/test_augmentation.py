"""ImageDataGenerator: exact identities, fill modes, reproducibility, and agreement
with Keras's apply_affine_transform."""
import numpy as np
import pytest

from minicnn.preprocessing import ImageDataGenerator, affine_matrix, apply_affine_transform


def batch(n=2, h=9, w=7, c=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, h, w, c)).astype(np.float32)


def warp(x, mode="nearest", cval=0.0, **params):
    m = affine_matrix(**params, h=x.shape[1], w=x.shape[2])
    return apply_affine_transform(x, np.repeat(m[None], len(x), 0), mode, cval)


def test_identity_returns_the_input_exactly():
    x = batch()
    np.testing.assert_array_equal(warp(x), x)
    np.testing.assert_array_equal(ImageDataGenerator().augment(x, np.random.default_rng(0)), x)


def test_integer_shift_moves_pixels_exactly():
    x = batch()
    shifted = warp(x, mode="constant", cval=-1.0, tx=2, ty=-1)   # Keras: out[r, c] = in[r − 1, c + 2]
    np.testing.assert_array_equal(shifted[:, 1:, :-2], x[:, :-1, 2:])
    assert (shifted[:, :, -2:] == -1).all() and (shifted[:, 0] == -1).all()


def test_rotation_by_90_degrees_equals_rot90():
    """Keras's θ = 90° turns the picture counter-clockwise on screen: np.rot90 with k = 1."""
    x = batch(h=8, w=8)
    np.testing.assert_allclose(warp(x, theta=90), np.rot90(x, k=1, axes=(1, 2)), atol=1e-4)
    np.testing.assert_allclose(warp(x, theta=-90), np.rot90(x, k=-1, axes=(1, 2)), atol=1e-4)


def test_horizontal_flip_equals_reversed_columns():
    x = batch(n=64)
    gen = ImageDataGenerator(horizontal_flip=True)
    out = gen.augment(x, np.random.default_rng(3))
    flipped = np.array([not np.array_equal(o, i) for o, i in zip(out, x)])
    assert 10 < flipped.sum() < 54
    np.testing.assert_array_equal(out[flipped], x[flipped][:, :, ::-1])
    np.testing.assert_array_equal(out[~flipped], x[~flipped])


def test_each_fill_mode_fills_as_specified():
    x = np.arange(5, dtype=np.float32).reshape(1, 1, 5, 1) + 1       # one row: 1 2 3 4 5
    def row(mode):   # tx moves columns (Keras's convention)
        return warp(x, mode=mode, cval=9.0, tx=-2)[0, 0, :, 0].tolist()
    assert row("constant") == [9, 9, 1, 2, 3]
    assert row("nearest") == [1, 1, 1, 2, 3]
    assert row("reflect") == [2, 1, 1, 2, 3]        # d c b a | a b c d
    assert row("wrap") == [3, 4, 1, 2, 3]           # first and last pixel overlap: period n − 1


def test_fixed_seed_is_reproducible():
    gen = ImageDataGenerator(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
                             zoom_range=0.2, horizontal_flip=True, rescale=1 / 255)
    x = batch(n=6)
    a = gen.flow(x, np.arange(6), batch_size=3, seed=5)
    b = gen.flow(x, np.arange(6), batch_size=3, seed=5)
    for i in range(2):
        np.testing.assert_array_equal(a[i][0], b[i][0])
        np.testing.assert_array_equal(a[i][1], b[i][1])
    assert a[0][0].max() <= 1.0


@pytest.mark.parametrize("mode", ["nearest", "constant", "reflect", "wrap"])
@pytest.mark.parametrize("params", [dict(theta=30, tx=2.5, ty=-1.5, shear=10, zx=0.8, zy=1.2),
                                    dict(theta=-45, tx=3, ty=3, shear=-20, zx=1.3, zy=0.7),
                                    dict(theta=0, tx=0.5, ty=0.25)])
def test_agrees_with_keras_apply_affine_transform(mode, params):
    from keras.src.legacy.preprocessing.image import apply_affine_transform as keras_apply
    x = batch(n=1, h=13, w=11)
    ours = warp(x, mode=mode, cval=7.0, **params)[0]
    theirs = keras_apply(x[0].astype(np.float64), row_axis=0, col_axis=1, channel_axis=2, fill_mode=mode,
                         cval=7.0, order=1, **params)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_flow_is_usable_in_fit():
    import minicnn as mc
    mc.set_seed(0)
    model = mc.Sequential([mc.layers.Input((9, 7, 3)), mc.layers.Flatten(), mc.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    gen = ImageDataGenerator(rescale=1 / 255, rotation_range=10)
    history = model.fit(gen.flow(batch(n=10), np.arange(10) % 2, batch_size=4, seed=0), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
