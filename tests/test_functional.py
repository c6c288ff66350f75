"""Functional models against TF-Keras on the same weights (float64): each graph is built
by one function from either library's namespace — the same code, only the import differs."""
import numpy as np
import pytest

from tf_helpers import keras, rel, tf
import minicnn as mc

pytestmark = pytest.mark.tf


class Lib:
    """The names a graph builder needs, from minicnn or from Keras."""

    def __init__(self, module):
        self.Input, self.Model, self.Sequential, self.layers = module.Input, module.Model, module.Sequential, module.layers


MC, KERAS = Lib(mc), Lib(keras)


def branches(lib):
    """Two branches joined by Add, then a Concatenate with the input (x fans out three ways)."""
    L = lib.layers
    x = lib.Input((6, 6, 2), name="x")
    a = L.Conv2D(3, 3, padding="same", activation="relu", name="a")(x)
    b = L.Conv2D(3, 1, name="b")(x)
    s = L.Add(name="sum")([a, b])
    c = L.Concatenate(name="cat")([s, x])
    y = L.Dense(4, activation="softmax", name="out")(L.Flatten(name="flat")(c))
    return lib.Model(x, y)


def residual(lib):
    L = lib.layers
    x = lib.Input((6, 6, 4), name="x")
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    h = L.Conv2D(4, 3, padding="same", name="c2")(h)
    h = L.Activation("relu", name="relu")(L.Add(name="skip")([x, h]))
    h = L.Flatten(name="flat")(L.MaxPooling2D(name="pool")(h))
    return lib.Model(x, L.Dense(3, activation="softmax", name="out")(h))


def shared_dense(lib):
    L = lib.layers
    x1, x2 = lib.Input((5,), name="x1"), lib.Input((5,), name="x2")
    shared = L.Dense(4, activation="relu", name="shared")
    h = L.Concatenate(name="cat")([shared(x1), shared(x2)])
    return lib.Model([x1, x2], L.Dense(3, activation="softmax", name="out")(h))


def merges(lib):
    """Every merge layer once (Maximum/Minimum on distinct values: no ties)."""
    L = lib.layers
    x = lib.Input((7,), name="x")
    a, b = L.Dense(5, name="a")(x), L.Dense(5, name="b")(x)
    parts = [L.Subtract(name="sub")([a, b]), L.Multiply(name="mul")([a, b]), L.Average(name="avg")([a, b]),
             L.Maximum(name="max")([a, b]), L.Minimum(name="min")([a, b])]
    return lib.Model(x, L.Dense(2, activation="softmax", name="out")(L.Concatenate(name="cat")(parts)))


def nested_frozen(lib):
    inner = lib.Sequential([lib.Input((6, 6, 2)), lib.layers.Conv2D(3, 3, activation="relu", name="inner_conv"),
                            lib.layers.Flatten(name="inner_flat")], name="inner")
    inner.trainable = False
    x = lib.Input((6, 6, 2), name="x")
    return lib.Model(x, lib.layers.Dense(3, activation="softmax", name="out")(inner(x)))


BUILDERS = {"branches": branches, "residual": residual, "shared_dense": shared_dense, "merges": merges,
            "nested_frozen": nested_frozen}


@pytest.fixture
def float64_both():
    before_mc, before_keras = mc.backend.floatx(), keras.backend.floatx()
    mc.set_floatx("float64")
    keras.backend.set_floatx("float64")
    yield
    mc.set_floatx(before_mc)
    keras.backend.set_floatx(before_keras)


def twins(build, seed=0):
    mc.set_seed(seed)
    ours, theirs = build(MC), build(KERAS)
    for layer in ours.flat_layers():
        if layer.params:
            theirs_layer = theirs.get_layer(layer.name) if layer.name in [t.name for t in theirs.layers] \
                else next(t for m in theirs.layers if hasattr(m, "layers") for t in m.layers if t.name == layer.name)
            theirs_layer.set_weights(layer.get_weights())
    return ours, theirs


def inputs_for(model, n=6, seed=1):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((n, *t.shape[1:])) for t in model.inputs]
    return arrays if len(arrays) > 1 else arrays[0]


@pytest.mark.parametrize("name", BUILDERS)
def test_forward_and_every_gradient_match_keras(name, float64_both):
    ours, theirs = twins(BUILDERS[name])
    x = inputs_for(ours)
    y = ours.forward(x)
    G = np.random.default_rng(2).standard_normal(y.shape)
    dx = ours.backward(G)
    xs = [tf.constant(a) for a in (x if isinstance(x, list) else [x])]
    with tf.GradientTape() as tape:
        tape.watch(xs)
        y_tf = theirs(xs if len(xs) > 1 else xs[0])
        loss = tf.reduce_sum(y_tf * G)
    grads = tape.gradient(loss, [*xs, *theirs.trainable_weights])
    assert rel(y, y_tf.numpy()) < 1e-9
    for ours_dx, theirs_dx in zip(dx if isinstance(dx, list) else [dx], grads[:len(xs)]):
        assert rel(ours_dx, theirs_dx.numpy()) < 1e-9
    ours_grads = {(layer.name, k): g for layer in ours.flat_layers() for k, g in layer.grads.items()}
    for weight, theirs_g in zip(theirs.trainable_weights, grads[len(xs):]):
        layer_name = weight.path.split("/")[-2]
        assert rel(ours_grads[(layer_name, weight.name)], theirs_g.numpy()) < 1e-9, weight.path


@pytest.mark.parametrize("name", BUILDERS)
def test_sgd_steps_and_three_epochs_match_keras(name, float64_both):
    ours, theirs = twins(BUILDERS[name])
    x = inputs_for(ours, n=12)
    labels = np.eye(ours.output_shape[-1])[np.random.default_rng(3).integers(0, ours.output_shape[-1], 12)]
    frozen_before = [w.numpy() for w in ours.non_trainable_weights]
    ours.compile(mc.optimizers.SGD(0.1), "categorical_crossentropy")
    theirs.compile(keras.optimizers.SGD(0.1), "categorical_crossentropy")
    ours.train_on_batch(x, labels)
    theirs.train_on_batch(x, labels)
    for w_ours, w_theirs in zip(ours.get_weights(), theirs.get_weights()):
        assert rel(w_ours, w_theirs) < 1e-8
    h_ours = ours.fit(x, labels, batch_size=4, epochs=3, shuffle=False, verbose=0).history["loss"]
    h_theirs = theirs.fit(x, labels, batch_size=4, epochs=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(h_ours, h_theirs, rtol=1e-8)
    for before, after in zip(frozen_before, [w.numpy() for w in ours.non_trainable_weights]):
        np.testing.assert_array_equal(before, after)


def test_activation_model_recipe_matches_keras(float64_both):
    """Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers]), the way
    the tutorials look inside a model."""
    def build(lib):
        L = lib.layers
        return lib.Sequential([lib.Input((8, 8, 1)), L.Conv2D(4, 3, activation="relu", name="c"),
                               L.MaxPooling2D(name="p"), L.Flatten(name="f"), L.Dense(3, name="d")])
    ours, theirs = twins(build)
    x = inputs_for(ours)
    ours_acts = mc.Model(inputs=ours.inputs, outputs=[layer.output for layer in ours.layers]).predict(x, verbose=0)
    theirs_acts = keras.Model(inputs=theirs.inputs, outputs=[layer.output for layer in theirs.layers]).predict(
        x, verbose=0)
    assert len(ours_acts) == 4
    for a, b in zip(ours_acts, theirs_acts):
        assert rel(a, b) < 1e-9


def two_in_two_out(lib):
    L = lib.layers
    image, extra = lib.Input((6, 6, 1), name="image"), lib.Input((3,), name="extra")
    h = L.Flatten(name="flat")(L.Conv2D(2, 3, activation="relu", name="conv")(image))
    h = L.Concatenate(name="cat")([h, L.Dense(4, activation="relu", name="side")(extra)])
    kind = L.Dense(3, activation="softmax", name="kind")(h)
    score = L.Dense(1, activation="sigmoid", name="score")(h)
    return lib.Model([image, extra], [kind, score])


def test_two_inputs_two_outputs_with_a_loss_list_and_weights_match_keras(float64_both):
    ours, theirs = twins(two_in_two_out)
    rng = np.random.default_rng(4)
    x = [rng.standard_normal((10, 6, 6, 1)), rng.standard_normal((10, 3))]
    y = [rng.integers(0, 3, 10), rng.integers(0, 2, (10, 1)).astype("float64")]
    args = dict(loss=["sparse_categorical_crossentropy", "binary_crossentropy"], loss_weights=[1.0, 0.5])
    ours.compile(mc.optimizers.SGD(0.05), **args)
    theirs.compile(keras.optimizers.SGD(0.05), **args)
    h_ours = ours.fit(x, y, batch_size=5, epochs=3, shuffle=False, verbose=0).history
    h_theirs = theirs.fit(x, y, batch_size=5, epochs=3, shuffle=False, verbose=0).history
    assert set(h_ours) == {"loss", "kind_loss", "score_loss"} <= set(h_theirs)
    for key in h_ours:
        np.testing.assert_allclose(h_ours[key], h_theirs[key], rtol=1e-8, err_msg=key)
    for w_ours, w_theirs in zip(ours.get_weights(), theirs.get_weights()):
        assert rel(w_ours, w_theirs) < 1e-8
    p_ours, p_theirs = ours.predict(x, verbose=0), theirs.predict(x, verbose=0)
    assert isinstance(p_ours, list) and len(p_ours) == 2
    for a, b in zip(p_ours, p_theirs):
        assert rel(a, b) < 1e-9
    named = ours.evaluate({"image": x[0], "extra": x[1]}, {"kind": y[0], "score": y[1]}, verbose=0,
                          return_dict=True)
    assert np.isclose(named["loss"], named["kind_loss"] + 0.5 * named["score_loss"])


def test_nested_models_trainable_and_summary_count_as_keras():
    base = mc.Sequential([mc.Input((8, 8, 3)), mc.layers.Conv2D(4, 3, name="b_conv"), mc.layers.Flatten(name="b_flat")],
                         name="base")
    model = mc.Sequential([base, mc.layers.Dense(2, name="head")])
    assert model.count_params() == 3 * 3 * 3 * 4 + 4 + 144 * 2 + 2
    base.trainable = False
    assert [w.path for w in model.trainable_weights] == ["head/kernel", "head/bias"]
    text = model.summary(print_fn=None)
    assert "Trainable params: 290" in text and "Non-trainable params: 112" in text
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name != "b_conv"
    assert [w.path for w in model.trainable_weights] == ["head/kernel", "head/bias"]
    assert model.get_layer("b_conv") is base.layers[0] and model.layers[0] is base
    popped = model.pop()
    assert popped.name == "head" and model.layers == [base]


def test_layer_calls_on_arrays_run_eagerly_and_names_follow_keras():
    dense = mc.layers.Dense(2)
    assert dense.name == "dense" and mc.layers.Dense(2).name == "dense_1"
    y = dense(np.ones((3, 4), "float32"))
    assert isinstance(y, np.ndarray) and y.shape == (3, 2)
    x = mc.Input((4,))
    assert x.name == "input_layer" and x.shape == (None, 4) and mc.Input((4,)).name == "input_layer_1"
    out = dense(x)
    assert out.shape == (None, 2) and dense.output is out and dense.input is x


@pytest.mark.parametrize("build,match", [
    (lambda: mc.layers.Conv2D(2, 3)(mc.layers.Dense(3)(mc.Input((5,)))), r"expected input of rank 4 .* \(None, 3\)"),
    (lambda: mc.layers.Conv2D(2, 3)(mc.Input((2, 2, 1))), "Conv2D layer 'conv2d'"),
    (lambda: mc.layers.Add()([mc.Input((3,)), mc.Input((4,))]), r"same shape, received \[\(None, 3\), \(None, 4\)\]"),
    (lambda: mc.layers.Concatenate()([mc.Input((3, 2)), mc.Input((4, 3))]), "every axis but the concatenation"),
    (lambda: mc.Model(mc.Input((3,)), mc.layers.Dense(2)(mc.Input((3,), name="other"))), "depend on input 'other'"),
    (lambda: mc.Model(np.ones((2, 3)), mc.Input((3,))), "must be symbolic tensors"),
    (lambda: mc.layers.Add()([mc.Input((3,)), np.ones((2, 3))]), "mix of symbolic tensors and arrays"),
])
def test_graph_errors_name_the_layers_and_shapes(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_duplicate_names_and_wrong_input_counts_are_refused():
    x = mc.Input((3,))
    a, b = mc.layers.Dense(2, name="twin")(x), mc.layers.Dense(2, name="twin")(x)
    with pytest.raises(ValueError, match=r"duplicate layer names \['twin'\]"):
        mc.Model(x, mc.layers.Add()([a, b]))
    model = two_in_two_out(MC)
    with pytest.raises(ValueError, match=r"expected input arrays for 2 \['image', 'extra'\], received 1"):
        model.predict(np.ones((2, 6, 6, 1), "float32"))
    model.compile("sgd", ["sparse_categorical_crossentropy", "binary_crossentropy"])
    with pytest.raises(ValueError, match=r"expected labels for 2 \['kind', 'score'\], received 1"):
        model.fit([np.ones((2, 6, 6, 1), "float32"), np.ones((2, 3), "float32")], np.zeros(2), verbose=0)
    with pytest.raises(ValueError, match="third argument is loss_weights"):
        model.compile("sgd", "mse", ["accuracy"])


def test_backward_to_a_tensor_a_fused_group_never_formed_names_the_group():
    """An Add read only by a ReLU runs fused with it (its sum rectified in place), so a
    backward that stops at the Add's output has nothing to stop at: a ValueError names the
    group and the way out; under the reference kernels the same backward runs."""
    x = mc.Input((4, 4, 2))
    h = mc.layers.Conv2D(2, 3, padding="same", name="conv")(x)
    out = mc.layers.Activation("relu", name="relu")(mc.layers.Add(name="skip")([x, h]))
    model = mc.Model(x, out)
    data = np.random.default_rng(0).standard_normal((2, 4, 4, 2)).astype("float32")
    with mc.use_kernels("numpy"):
        model.forward(data)
        with pytest.raises(ValueError, match="'skip'.*fused group 'skip \\+ relu \\(fused\\)'.*reference"):
            model.backward(np.ones((2, 4, 4, 2), "float32"), stop="skip")
    with mc.use_kernels("reference"):
        y = model.forward(data)
        dy_skip = model.backward(np.ones_like(y), stop="skip")
    np.testing.assert_array_equal(dy_skip, (y > 0).astype("float32"))
