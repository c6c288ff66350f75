"""The seed tutorials' cells that differentiate with ``tf.GradientTape`` or keras-vis have a
minicnn equivalent in ``examples/`` built on minicnn's own backward; each equals TensorFlow's
GradientTape on the same weights (float64), and the example runs (small input).

* seed 003, filter patterns: ``vgg16_gradients.generate_pattern`` (VGG16);
* seed 003, Grad-CAM from the class probability: ``vgg16_gradients.make_gradcam_heatmap``;
* seed 001, keras-vis ``visualize_activation`` of filters and of class outputs (softmax
  swapped for linear): ``maximize.maximize`` as ``examples/mnist_deconstructed.py`` runs it.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tf_helpers import keras, tf
import minicnn as mc
from minicnn import architectures
from minicnn.applications import VGG16
from minicnn.keras_bridge import to_keras
from minicnn.viz import maximize

pytestmark = pytest.mark.tf
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name):
    """An example module of this checkout, loaded from its file."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tape_ascent(layer_model, x, filter_index, steps, logits_of=None):
    """Normalized gradient ascent on the mean of one output channel, under tf.GradientTape."""
    x = tf.constant(x)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer_model(x)
            score = tf.reduce_mean(out[..., filter_index])
        grads = tape.gradient(score, x)
        x = x + grads / (tf.sqrt(tf.reduce_mean(tf.square(grads))) + 1e-5)
    return x.numpy()


def test_generate_pattern_equals_gradient_tape(float64):
    cells = example("vgg16_gradients")
    mc.set_seed(0)
    ours = VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    theirs = to_keras(ours)
    layer = "block2_conv1"
    filters = [1, 5]
    images, scores = cells.generate_pattern(ours, layer, filters, 32, steps=3)
    start = np.random.default_rng(0).random((len(filters), 32, 32, 3)) * 20 + 128     # generate_pattern's start
    layer_model = keras.Model(theirs.inputs, theirs.get_layer(layer).output)
    for row, f in enumerate(filters):
        expected = tape_ascent(layer_model, start[row:row + 1], f, steps=3)[0]
        np.testing.assert_allclose(images[row], expected, rtol=1e-9, atol=1e-9)
    assert (scores[-1] > scores[0]).all()


def keras_gradcam(model, x, pred_index):
    """Grad-CAM of the class probability, as the tutorial writes it with tf.GradientTape."""
    last_conv = [layer for layer in model.layers if "conv" in layer.name][-1].name
    grad_model = keras.Model(model.inputs, [model.get_layer(last_conv).output, model.outputs[0]])
    with tf.GradientTape() as tape:
        conv_out, preds = grad_model(x)
        class_channel = preds[:, pred_index]
    grads = tape.gradient(class_channel, conv_out)
    pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = tf.squeeze(conv_out[0] @ pooled[..., tf.newaxis])
    return (tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)).numpy()


def test_make_gradcam_heatmap_equals_gradient_tape(float64):
    cells = example("vgg16_gradients")
    mc.set_seed(0)
    ours = architectures.mnist_convnet((20, 20, 1))
    theirs = to_keras(ours)
    x = np.random.default_rng(1).random((3, 20, 20, 1))
    predicted = ours.predict(x).argmax(axis=1)
    heatmaps = cells.make_gradcam_heatmap(ours, x)
    for i in range(len(x)):
        expected = keras_gradcam(theirs, x[i:i + 1], int(predicted[i]))
        assert expected.max() > 0
        np.testing.assert_allclose(heatmaps[i], expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("target", ["filter", "class logit"])
def test_keras_vis_activation_maximization_equals_gradient_tape(float64, target):
    """seed 001: a conv filter's mean activation, or a class output with its softmax
    replaced by linear (keras-vis's ``apply_modifications``): the same ascent as the tape's."""
    mc.set_seed(0)
    ours = architectures.mnist_convnet((20, 20, 1))
    theirs = to_keras(ours)
    layer = [layer.name for layer in ours.layers if "conv2d" in layer.name][-1] if target == "filter" \
        else ours.layers[-1].name
    start = np.random.default_rng(2).random((1, 20, 20, 1))
    images, _ = maximize.maximize(ours, layer, [3], steps=4, step_size=1.0, seed_input=start, input_range=None,
                                  logits=target == "class logit")
    if target == "class logit":
        theirs.layers[-1].activation = keras.activations.linear
    expected = tape_ascent(keras.Model(theirs.inputs, theirs.get_layer(layer).output), start, 3, steps=4)
    np.testing.assert_allclose(images, expected, rtol=1e-9, atol=1e-9)


def test_vgg16_gradients_example_runs(tmp_path):
    result = example("vgg16_gradients").main(quick=True, out=str(tmp_path))
    assert {p.name for p in tmp_path.glob("*.png")} == {"patterns_block1_conv1.png", "patterns_block2_conv1.png",
                                                         "grad_cam.png"}
    assert result["heatmaps"].shape == (8, 2, 2)
