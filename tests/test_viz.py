"""Interpretability maps are right, not just running: TensorFlow recipes on the same
weights, closed forms, and the defining properties of each backward rule."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import activations, architectures, layers
from minicnn.viz import attribution, maximize, plots, style
from tf_helpers import keras, tf
from minicnn.keras_bridge import to_keras


def trained_convnet(seed=0):
    """The 32/64/64 convnet, briefly trained on embedded digits."""
    from minicnn.datasets import embedded
    x, y = embedded.load_mnist_digits()
    x = x[:600, ..., None].astype("float32") / 255
    mc.set_seed(seed)
    model = architectures.mnist_convnet()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y[:600].astype(np.int64), batch_size=64, epochs=2, verbose=0)
    return model, x[:4]


@pytest.fixture(scope="module")
def convnet():
    return trained_convnet()


def keras_logit_model(model, guided=False):
    """The Keras twin with the softmax removed (the keras-io Grad-CAM recipe), optionally
    with guided-backprop ReLUs (a tf.custom_gradient)."""
    twin = to_keras(model)
    twin.layers[-1].activation = keras.activations.linear

    @tf.custom_gradient
    def guided_relu(z):
        def grad(dy):
            return dy * tf.cast(z > 0, dy.dtype) * tf.cast(dy > 0, dy.dtype)
        return tf.nn.relu(z), grad
    if guided:
        for layer in twin.layers:
            if getattr(layer, "activation", None) is keras.activations.relu:
                layer.activation = guided_relu
    return twin


def test_grad_cam_saliency_and_guided_backprop_equal_tensorflow(convnet):
    """Noise breaks the exact ties of the all-zero background in max-pool windows (TF may
    route a tie to a different cell: a convention gap, not an error)."""
    model, x = convnet
    x = (x + np.random.default_rng(5).uniform(0, 1e-2, x.shape)).astype("float32")
    classes = model.predict(x).argmax(axis=1)
    twin = keras_logit_model(model)
    inputs = keras.Input(x.shape[1:])
    h = inputs
    for layer in twin.layers:                      # the recipe's functional "grad model"
        h = layer(h)
        if layer.name == "conv2d_2":
            conv_output = h
    grad_model = keras.Model(inputs, [conv_output, h])
    xt = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xt)
        A, logits = grad_model(xt)
        score = tf.reduce_sum(tf.gather(logits, classes, axis=1, batch_dims=1))
    G = tape.gradient(score, A).numpy()
    pooled = G.mean(axis=(1, 2))                                            # keras-io recipe
    cam_tf = np.maximum(np.einsum("nijk,nk->nij", A.numpy(), pooled), 0)
    cam_tf /= np.maximum(cam_tf.max(axis=(1, 2), keepdims=True), 1e-12)   # a map may be all zero
    cam = attribution.grad_cam(model, x, classes, layer="conv2d_2", upsample=False)
    assert (cam.max(axis=(1, 2)) == 1).sum() >= 3
    assert np.abs(cam - cam_tf).max() < 1e-4
    sal_tf = np.abs(tape.gradient(score, xt).numpy()).max(axis=-1)
    sal = attribution.saliency(model, x, classes)
    assert np.abs(sal / sal.max() - sal_tf / sal_tf.max()).max() < 1e-4
    guided_twin = keras_logit_model(model, guided=True)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        score = tf.reduce_sum(tf.gather(guided_twin(xt), classes, axis=1, batch_dims=1))
    gb_tf = tape.gradient(score, xt).numpy()
    gb = attribution.guided_backprop(model, x, classes)
    assert np.abs(gb) .max() > 0
    assert np.abs(gb / np.abs(gb).max() - gb_tf / np.abs(gb_tf).max()).max() < 1e-4


def test_grad_cam_weights_equal_dense_weights_over_hw_for_a_gap_head(float64):
    """conv → ReLU → global average pool → dense: α_k = W[k, c] / (h·w)."""
    mc.set_seed(2)
    model = mc.Sequential([layers.Input((9, 7, 2)), layers.Conv2D(5, 3, activation="relu"),
                           layers.GlobalAveragePooling2D(), layers.Dense(4, activation="softmax")])
    x = np.random.default_rng(0).uniform(0, 1, (3, 9, 7, 2))
    cam = attribution.GradCAM()
    cam(model, x, [0, 2, 3], layer="conv2d")
    W = model.get_layer("dense").params["kernel"]
    np.testing.assert_allclose(cam.weights, W[:, [0, 2, 3]].T / (7 * 5), rtol=1e-12)


def test_activation_maximization_rises_monotonically(convnet):
    model, _ = convnet
    images, scores = maximize.maximize(model, "conv2d_1", [0, 5, 9], steps=40, step_size=0.03, seed=0)
    assert (np.diff(scores, axis=0) > 0).all()
    random_inputs = np.random.default_rng(1).uniform(0, 1, (50, 28, 28, 1)).astype("float32")
    random_scores = model.intermediate_outputs(random_inputs, ["conv2d_1"])[0][..., [0, 5, 9]].mean(axis=(1, 2))
    assert (scores[-1] > random_scores.max(axis=0) * 1.4).all()   # above the best of 50 random inputs


def test_class_visualization_raises_the_class_logit(convnet):
    model, _ = convnet
    images, scores = maximize.maximize(model, "dense_1", list(range(10)), steps=20, logits=True,
                                       regularizers=[(1e-3, maximize.TotalVariation())], seed=0)
    assert images.shape == (10, 28, 28, 1)
    assert (scores[-1] > scores[0] + 1.0).all()
    model.forward(images)
    assert (model.layers[-1].activation.logits.argmax(1) == np.arange(10)).mean() >= 0.8


@pytest.mark.parametrize("reg", [maximize.TotalVariation(), maximize.LpNorm(2), maximize.LpNorm(3)])
def test_regularizer_gradients_by_central_differences(reg):
    from minicnn.study.finite_differences import numeric_gradient, relative_error
    x = np.random.default_rng(0).standard_normal((1, 5, 4, 2))
    numeric = numeric_gradient(lambda: float(reg.value(x).sum()), x, np.arange(x.size))
    assert relative_error(reg.grad(x).ravel(), numeric) < 1e-6


def test_deconvnet_differs_from_guided_exactly_where_the_relu_input_was_negative():
    rng = np.random.default_rng(0)
    z, da = rng.standard_normal((4, 30)), rng.standard_normal((4, 30))
    relu = activations.ReLU()
    relu.forward(z)
    out = {}
    for rule in ("deconvnet", "guided"):
        relu.rule = rule
        out[rule] = relu.backward(da)
    differs = out["deconvnet"] != out["guided"]
    np.testing.assert_array_equal(differs, (z <= 0) & (da > 0))


def test_deconvnet_unpools_to_the_recorded_switches(convnet):
    model, x = convnet
    g = attribution.deconvnet(model, x[:1], 3)
    pool = model.get_layer("max_pooling2d")
    switches = pool.cache.switches[0]
    dy = np.random.default_rng(0).standard_normal(switches.shape)
    dx = pool.backward(dy[None].astype("float32"))[0]
    routed = np.zeros_like(dx)
    for p, q, c in np.ndindex(*switches.shape):
        i, j = divmod(int(switches[p, q, c]), 2)
        routed[2 * p + i, 2 * q + j, c] += dy[p, q, c]
    np.testing.assert_allclose(dx, routed, rtol=1e-6)
    assert g.shape == x[:1].shape and np.abs(g).max() > 0


def test_randomized_model_maps_differ(convnet):
    model, x = convnet
    before = model.get_weights()
    results = attribution.randomization_check(model, x[:2], [3, 1])
    assert [name for name, _ in results] == ["dense_1", "dense", "conv2d_2", "conv2d_1", "conv2d"]
    assert all(rho < 0.8 for _, rho in results)          # plain gradients: every stage changes the map
    guided = attribution.randomization_check(model, x[:2], [3, 1], method=attribution.guided_backprop)
    assert guided[0][1] > results[0][1] + 0.1            # Adebayo et al.: guided backprop barely notices
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)     # weights restored


def test_style_and_tv_gradients_by_central_differences():
    from minicnn.study.finite_differences import numeric_gradient, relative_error
    rng = np.random.default_rng(0)
    F = rng.standard_normal((4, 3, 5))
    A = style.gram(rng.standard_normal((4, 3, 5)))
    numeric = numeric_gradient(lambda: style.style_loss_and_grad(F, A)[0], F, np.arange(F.size))
    assert relative_error(style.style_loss_and_grad(F, A)[1].ravel(), numeric) < 1e-6
    x = rng.standard_normal((1, 5, 6, 2))
    numeric = numeric_gradient(lambda: style.tv_loss_and_grad(x)[0], x, np.arange(x.size))
    assert relative_error(style.tv_loss_and_grad(x)[1].ravel(), numeric) < 1e-6


def test_style_transfer_lowers_the_loss(convnet):
    model, x = convnet
    image, losses = style.style_transfer(model, x[:1], x[1:2], "conv2d_1", ["conv2d", "conv2d_1"], steps=15,
                                         content_weight=1e-3)
    assert image.shape == x[:1].shape and losses[-1] < losses[0] * 0.9


def test_vgg16_matches_keras_and_loads_its_weights(tmp_path):
    from minicnn.applications import VGG16
    ours = VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    theirs = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert ours.count_params() == theirs.count_params() == 14714688
    path = str(tmp_path / "vgg16_notop.weights.h5")
    theirs.save_weights(path)
    loaded = VGG16(include_top=False, input_shape=(32, 32, 3), weights=path)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-3)
    with pytest.raises(FileNotFoundError, match="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        VGG16(include_top=False, weights=str(tmp_path / "missing.h5"))


def test_figures_are_closed_after_saving():
    import matplotlib.pyplot as plt
    for _ in range(100):
        plots.save_figure(plots.plot_probabilities(np.full(10, 0.1)))
    assert plt.get_fignums() == []


def test_stitch_images_and_confusion_matrix():
    grid = plots.stitch_images(np.ones((5, 2, 3)), cols=3, margin=1)
    assert grid.shape == (5, 11) and grid.sum() == 30
    cm = plots.confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2], 3)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    maps = plots.normalize_channels(np.random.default_rng(0).standard_normal((8, 8, 3)) * 5 + 3)
    assert maps.dtype == np.uint8 and abs(maps.mean() - 128) < 3


def test_every_visualization_gives_the_same_maps_on_the_functional_twin():
    """The same architecture and weights as a Sequential and as a functional Model: saliency,
    guided backprop, deconvnet, Grad-CAM and activation maximization agree exactly."""
    from minicnn.viz import attribution
    mc.set_seed(0)
    chain = architectures.mnist_convnet((20, 20, 1))
    x_in = mc.Input((20, 20, 1))
    h = x_in
    for layer in chain.layers:
        h = layer(h)
    graph = mc.Model(x_in, h)
    x = np.random.default_rng(0).uniform(0, 1, (2, 20, 20, 1)).astype("float32")
    for method in (attribution.saliency, attribution.guided_backprop, attribution.deconvnet):
        np.testing.assert_array_equal(method(chain, x, [1, 2]), method(graph, x, [1, 2]))
    np.testing.assert_array_equal(attribution.grad_cam(chain, x, [1, 2]), attribution.grad_cam(graph, x, [1, 2]))
    conv = chain.layers[2].name
    a, _ = maximize.maximize(chain, conv, [0, 3], steps=5, seed=0)
    b, _ = maximize.maximize(graph, conv, [0, 3], steps=5, seed=0)
    np.testing.assert_array_equal(a, b)
