"""Every visualization and study tool on a layer inside a nested model (the seed's VGG16
conv base inside a Sequential): the same numbers as on the flat model built from the same
layer objects, Grad-CAM against TensorFlow, and clear errors for names that are not found
or ambiguous."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import inline, layers
from minicnn.study import finite_differences as gc
from minicnn.study.live import LiveView
from minicnn.study.step_trace import trace
from minicnn.viz import attribution, maximize, style

SHAPE = (12, 12, 3)


def conv_base(name="base"):
    """Two VGG-style blocks, a functional model as ``applications.VGG16`` builds one."""
    x = mc.Input(SHAPE)
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv1")(x)
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv2")(h)
    h = layers.MaxPooling2D(2, name="block1_pool")(h)
    h = layers.Conv2D(6, 3, padding="same", activation="relu", name="block2_conv1")(h)
    h = layers.MaxPooling2D(2, name="block2_pool")(h)
    return mc.Model(x, h, name=name)


def head(final="softmax"):
    return [layers.Flatten(name="flatten"), layers.Dense(8, activation="relu", name="dense"),
            layers.Dense(3, activation=final, name="predictions")]


def nested_and_flat(form, seed=0, final="softmax"):
    """(the model with the base nested, the flat model of the same layer objects)."""
    mc.set_seed(seed)
    base, top = conv_base(), head(final)
    if form == "sequential":                      # the seed: model.add(conv_base), then the head
        model = mc.Sequential([layers.Input(SHAPE), base, *top])
    elif form == "functional":                    # the seed's second form: x = conv_base(img_input)
        x = mc.Input(SHAPE)
        h = base(x)
        for layer in top:
            h = layer(h)
        model = mc.Model(x, h)
    elif form == "nested_head":                   # the classifier a nested model too, the model's last layer
        model = mc.Sequential([layers.Input(SHAPE), base, mc.Sequential([layers.Input((3, 3, 6)), *top])])
    else:                                         # two levels: the base inside a Sequential inside the model
        x = mc.Input(SHAPE)
        h = mc.Sequential([layers.Input(SHAPE), base, top[0]], name="features")(x)
        for layer in top[1:]:
            h = layer(h)
        model = mc.Model(x, h)
    x = mc.Input(SHAPE)
    h = x
    for layer in [*base.layers[1:], *top]:
        h = layer(h)
    return model, mc.Model(x, h, name="flat")


def images(n=2, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (n, *SHAPE))


FORMS = ["sequential", "functional", "two_levels", "nested_head"]


@pytest.mark.parametrize("form", FORMS)
def test_every_map_on_a_nested_layer_equals_the_flat_model(form, float64):
    model, flat = nested_and_flat(form)
    x, classes = images(), [0, 2]
    np.testing.assert_allclose(model.predict(x, verbose=0), flat.predict(x, verbose=0), rtol=1e-13)
    for method in (attribution.saliency, attribution.guided_backprop, attribution.deconvnet,
                   attribution.guided_grad_cam):
        a, b = method(model, x, classes), method(flat, x, classes)
        assert np.abs(b).max() > 0
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    for cam in (attribution.grad_cam, attribution.grad_cam_plus_plus):
        for layer in (None, "block2_conv1", "block1_conv2"):            # None: the last conv, inside the base
            a = cam(model, x, classes, layer=layer, upsample=False)
            b = cam(flat, x, classes, layer=layer, upsample=False)
            assert a.max() > 0
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    a, scores_a = maximize.maximize(model, "block1_conv2", [0, 3], steps=4, seed=0)
    b, scores_b = maximize.maximize(flat, "block1_conv2", [0, 3], steps=4, seed=0)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(scores_a, scores_b, rtol=1e-12)
    assert (np.diff(scores_a, axis=0) > 0).all()


@pytest.mark.parametrize("form", FORMS)
def test_feature_maps_of_nested_layers(form, float64):
    """The activation-model recipe through ``tensor_of``, ``intermediate_outputs``,
    ``layer_outputs`` and ``forward(upto=)``: the flat model's activations."""
    model, flat = nested_and_flat(form)
    x = images(3)
    names = ["block1_conv1", "block1_pool", "block2_conv1", "dense"]
    expected = flat.intermediate_outputs(x, names)
    extractor = mc.Model(model.inputs, [model.tensor_of(n) for n in names])
    for got in (extractor.predict(x, verbose=0), model.intermediate_outputs(x, names)):
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-13)
    np.testing.assert_allclose(model.forward(x, upto="block2_conv1"), expected[2], rtol=1e-13)
    inner = inline.find_layer(model, "block2_conv1")
    with pytest.raises(ValueError, match=r"not among the model's inputs .*tensor_of"):
        mc.Model(model.inputs, inner.output)                 # its first call is in the base's own graph
    seen = {layer.name: a for layer, a in model.layer_outputs(x)}
    assert [n for n in seen if n in names] == names
    np.testing.assert_allclose(seen["base"], seen["block2_pool"], rtol=0)     # a nested model's output is its last layer's
    base = inline.find_layer(model, "base")
    first_call = base.get_layer("block2_conv1").output                  # Keras's layer.output: unchanged
    assert first_call is base.tensor_of("block2_conv1") and first_call is not model.tensor_of("block2_conv1")


def test_a_frozen_nested_base_still_gives_input_gradients(float64):
    model, flat = nested_and_flat("sequential")
    x = images()
    before = attribution.saliency(model, x, [0, 2]), attribution.grad_cam(model, x, [0, 2], layer="block2_conv1")
    model.get_layer("base").trainable = False
    assert not model.get_layer("block1_conv1").trainable
    after = attribution.saliency(model, x, [0, 2]), attribution.grad_cam(model, x, [0, 2], layer="block2_conv1")
    for a, b in zip(before, after):
        assert np.abs(a).max() > 0
        np.testing.assert_array_equal(a, b)


def test_grad_cam_on_a_nested_layer_equals_tensorflow(float64):
    """The keras-io Grad-CAM recipe on the Keras twin (its base a nested Keras model), the
    inner conv's output taken by replaying the twin's layers on one input."""
    from tf_helpers import keras, tf
    from minicnn.keras_bridge import to_keras
    model, _ = nested_and_flat("sequential", seed=3)
    x = images(3, seed=4)
    classes = np.array([0, 1, 2])
    twin = to_keras(model)
    twin.layers[-1].activation = keras.activations.linear              # the class logit
    inputs = keras.Input(SHAPE, dtype="float64")
    h = inputs
    for layer in [*twin.layers[0].layers[1:], *twin.layers[1:]]:
        h = layer(h)
        if layer.name == "block2_conv1":
            conv_output = h
    grad_model = keras.Model(inputs, [conv_output, h])
    with tf.GradientTape() as tape:
        A, logits = grad_model(tf.constant(x))
        score = tf.reduce_sum(tf.gather(logits, classes, axis=1, batch_dims=1))
    G = tape.gradient(score, A).numpy()
    cam_tf = np.maximum(np.einsum("nijk,nk->nij", A.numpy(), G.mean(axis=(1, 2))), 0)
    cam_tf /= np.maximum(cam_tf.max(axis=(1, 2), keepdims=True), 1e-12)
    cam = attribution.grad_cam(model, x, classes, layer="block2_conv1", upsample=False)
    assert cam.max() > 0
    np.testing.assert_allclose(cam, cam_tf, rtol=1e-9, atol=1e-12)


def test_study_tools_walk_the_layers_of_nested_models(monkeypatch, float64):
    model, flat = nested_and_flat("functional")
    rng = np.random.default_rng(0)
    x, y = images(3), np.eye(3)[rng.integers(0, 3, 3)]
    for m in (model, flat):
        m.compile("sgd", "categorical_crossentropy")
    ours, theirs = gc.gradcheck(model, x, y, verbose=False), gc.gradcheck(flat, x, y, verbose=False)
    assert [(r.layer, r.tensor) for r in ours] == [(r.layer, r.tensor) for r in theirs]
    assert "block1_conv1" in {r.layer for r in ours} and max(r.rel_error for r in ours) < 1e-6
    weights = model.get_weights()
    rows = trace(model, x, y, verbose=False)
    stepped = model.get_weights()
    model.set_weights(weights)
    flat_rows = trace(flat, x, y, verbose=False)
    assert [r["layer"] for r in rows] == [r["layer"] for r in flat_rows]
    for a, b in zip(rows, flat_rows):
        np.testing.assert_allclose([a["activation_norm"], a["input_grad_norm"]],
                                   [b["activation_norm"], b["input_grad_norm"]], rtol=1e-12)
        assert a["update_ratio"].keys() == b["update_ratio"].keys()
    for a, b in zip(stepped, model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    original = layers.MaxPooling2D.call_backward
    monkeypatch.setattr(layers.MaxPooling2D, "call_backward",
                        lambda self, dz, input_grad=True: original(self, dz, input_grad) * 1.01)
    assert gc.gradcheck(model, x, y, bisect=True, verbose=False) == "block2_pool"


def test_compare_with_keras_on_a_frozen_nested_base():
    """The seed's transfer model: a frozen conv base in a Sequential, one step against Keras."""
    from minicnn.study.keras_diff import compare_with_keras
    model, _ = nested_and_flat("sequential")
    model.get_layer("base").trainable = False
    model.compile("sgd", "categorical_crossentropy")
    x = images(4).astype("float32")
    y = np.eye(3)[[0, 1, 2, 0]].astype("float32")
    rows, _ = compare_with_keras(model, x=x, y=y, verbose=False)
    assert {r[1] for r in rows if r[0] == "forward"} >= {"block1_conv1", "block2_conv1", "dense"}
    assert {r[1] for r in rows if r[0] == "update"} == {"dense", "predictions"}      # the frozen base is not stepped
    assert max(r[3] for r in rows) < 1e-4


def test_live_view_and_style_transfer_reach_into_nested_models(tmp_path, float64):
    model, flat = nested_and_flat("sequential", final="sigmoid")     # the mean of a softmax has no gradient
    x = images(1)
    views = []
    for m in (model, flat):
        view = LiveView(tmp_path / "live.html", x)
        view.model = m
        views.append((view.activations_and_gradients(), [layer.name for layer in view.plotted]))
    (acts, grads), names = views[0]
    (flat_acts, flat_grads), flat_names = views[1]
    assert [n for n in names if n != "base"] == flat_names
    by_name = dict(zip(flat_names, zip(flat_acts, flat_grads)))
    for name, a, g in zip(names, acts, grads):
        reference = by_name["block2_pool" if name == "base" else name]
        np.testing.assert_allclose(a, reference[0], rtol=1e-13)
        np.testing.assert_allclose(g, reference[1], rtol=1e-12, atol=1e-15)
    assert np.abs(dict(zip(names, grads))["block1_conv1"]).max() > 0
    results = [style.style_transfer(m, x, images(1, seed=7), "block2_conv1", ["block1_conv1", "block2_conv1"],
                                    steps=3) for m in (model, flat)]
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)


def test_layer_names_paths_objects_and_clear_errors():
    mc.set_seed(0)
    x = mc.Input(SHAPE)
    encoder = mc.Sequential([layers.Input(SHAPE), layers.Conv2D(2, 3, name="conv")], name="encoder")
    decoder = mc.Sequential([layers.Input((10, 10, 2)), layers.Conv2D(2, 3, name="conv")], name="decoder")
    out = layers.GlobalAveragePooling2D(name="gap")(decoder(encoder(x)))
    model = mc.Model(x, out)
    data = images(1)
    with pytest.raises(ValueError, match=r"2 different layers are named 'conv', at \['encoder/conv', 'decoder/conv'\]"):
        model.tensor_of("conv")
    with pytest.raises(ValueError, match=r"has no layer 'block5_conv3'; its layers: .*'encoder/conv'"):
        attribution.grad_cam(model, data, 0, layer="block5_conv3")
    with pytest.raises(ValueError, match=r"does not contain 'dense'"):
        model.tensor_of(layers.Dense(2, name="dense"))
    inner = decoder.get_layer("conv")
    by_path = model.intermediate_outputs(data, ["decoder/conv"])[0]
    np.testing.assert_array_equal(by_path, model.intermediate_outputs(data, [inner])[0])
    assert by_path.shape == (1, 8, 8, 2)
    assert inline.find_layer(model, "gap") is model.layers[-1]
    with pytest.raises(ValueError, match="distinct names"):
        gc.gradcheck(model, data, verbose=False)


def test_report_shows_the_convs_inside_a_nested_base(tmp_path):
    from minicnn.viz.report import report_sections
    model, _ = nested_and_flat("sequential")
    x, y = images(4).astype("float32"), np.array([0, 1, 2, 0])
    titles = [title for title, _ in report_sections(model, x, y, figures_dir=str(tmp_path))]
    assert "Filter patterns of block2_conv1 (activation maximization)" in titles
    assert {p.name for p in tmp_path.glob("feature_maps_*.png")} == {
        "feature_maps_block1_conv1.png", "feature_maps_block1_conv2.png", "feature_maps_block2_conv1.png"}
