"""The GradientTape cells of the Keras chapter (seed tutorial 003), on minicnn's own backward.

Two cells there differentiate with ``tf.GradientTape``, which no import change can map:

* filter patterns — gradient ascent in input space on the mean activation of one filter
  of a VGG16 layer, from a noisy grey image, each step ``x ← x + g / (rms(g) + 1e-5)``:
  ``generate_pattern`` below, with ``maximize.maximize`` (``model.gradient``);
* Grad-CAM — the gradient of the predicted class's *probability* with respect to the last
  conv layer's output, pooled per channel, weighting that output:
  ``make_gradcam_heatmap`` below, with ``attribution.grad_cam(..., logits=False)``.

(The keras-vis cells of seed tutorial 001 — ``visualize_activation`` for filters and class
outputs — are ``examples/mnist_deconstructed.py``.)  ImageNet weights cannot be downloaded
here: VGG16 is randomly initialized unless ``--vgg16 PATH`` names Keras's VGG16 ``notop``
weights file, and the Grad-CAM model is that conv base under a small softmax head,
trained for a few steps to tell a bright square from a bright disc.
"""
import numpy as np

from minicnn import Model, layers, optimizers, seeding
from minicnn.applications import VGG16
from minicnn.example_support import Figures, check, example_main
from minicnn.viz import attribution, maximize, plots


def generate_pattern(model, layer_name, filter_indices, size, steps=20, seed=0):
    """The tutorial's ``generate_pattern``, for several filters at once (one per batch row):
    ``steps`` normalized gradient-ascent steps of size 1 on the filter's mean activation,
    from ``uniform(0, 1)·20 + 128`` noise, unclipped.  Returns (images, scores per step)."""
    rng = np.random.default_rng(seed)
    start = (rng.random((len(filter_indices), size, size, 3)) * 20 + 128).astype(model.layers[0].dtype or "float32")
    return maximize.maximize(model, layer_name, list(filter_indices), steps=steps, step_size=1.0,
                             seed_input=start, input_range=None, seed=seed)


def make_gradcam_heatmap(model, img_array, pred_index=None):
    """The tutorial's ``make_gradcam_heatmap``: the last layer with 'conv' in its name, the
    gradient of ``preds[:, pred_index]`` (the predicted class by default) with respect to
    its output, ``ReLU(Σ_k mean_ij(G_k) · A_k) / max`` at the conv layer's resolution."""
    last_conv_layer_name = [layer for layer in model.layers if "conv" in layer.name][-1].name
    if pred_index is None:
        pred_index = model.predict(img_array, verbose=0).argmax(axis=-1)
    return attribution.grad_cam(model, img_array, pred_index, layer=last_conv_layer_name, upsample=False,
                                logits=False)


def shapes(n, size, seed=0):
    """Grey images with a bright square (class 0) or a bright disc (class 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 40, (n, size, size, 3)).astype("float32")
    labels = rng.integers(0, 2, n)
    r, c = np.mgrid[:size, :size]
    for image, label in zip(x, labels):
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        half = size // 6
        inside = (np.abs(r - cy) <= half) & (np.abs(c - cx) <= half) if label == 0 else \
            (r - cy) ** 2 + (c - cx) ** 2 <= half ** 2
        image[inside] += 200
    return x, labels


def main(quick=False, out=None, vgg16=None):
    figures = Figures(out or "out/vgg16_gradients")
    if vgg16 is None:
        print("No VGG16 weights given (--vgg16 PATH): VGG16 is randomly initialized.")
    seeding.set_seed(0)
    size = 32 if quick else 64
    conv_base = VGG16(weights=vgg16, include_top=False, input_shape=(size, size, 3))
    layer_names = ["block1_conv1", "block2_conv1"] if quick else ["block1_conv1", "block2_conv1", "block3_conv1",
                                                                  "block4_conv1"]
    filters = list(range(4 if quick else 16))
    for name in layer_names:
        images, scores = generate_pattern(conv_base, name, filters, size, steps=8 if quick else 20)
        print(f"{name}: mean filter activation {scores[0].mean():.4g} → {scores[-1].mean():.4g}")
        # a filter silent on the whole start image (ReLU at 0 everywhere) has no gradient and stays
        check((scores[-1] >= scores[0]).all() and scores[-1].mean() > scores[0].mean(),
              f"gradient ascent should raise the {name} filters' activations")
        figures.save(plots.plot_image_grid([maximize.deprocess_image(i) for i in images], cmap=None,
                                           suptitle=f"{name} patterns"), f"patterns_{name}")

    x, y = shapes(64 if quick else 256, size)
    features = layers.Dense(2, activation="softmax", name="predictions")(
        layers.GlobalAveragePooling2D(name="avg_pool")(conv_base.outputs[0]))
    classifier = Model(conv_base.inputs, features, name="vgg16_shapes")
    for layer in conv_base.layers:
        layer.trainable = layer.name.startswith("block5")        # fine-tune block5 and the head only
    classifier.compile(optimizers.Adam(1e-4), "sparse_categorical_crossentropy", metrics=["accuracy"])
    classifier.fit(x, y, batch_size=16, epochs=1 if quick else 3, verbose=0)
    heatmaps = make_gradcam_heatmap(classifier, x[:8])
    check(heatmaps.shape == (8, size // 16, size // 16) and heatmaps.min() >= 0 and heatmaps.max() <= 1,
          "Grad-CAM heatmaps lie in [0, 1] at block5_conv3's resolution")
    upsampled = attribution.resize_bilinear(heatmaps, (size, size))
    figures.save(plots.plot_image_grid([attribution.overlay(x[i] / 255, upsampled[i]) for i in range(8)], cmap=None,
                                       titles=[("square", "disc")[label] for label in y[:8]]), "grad_cam")
    return {"heatmaps": heatmaps}


if __name__ == "__main__":
    example_main(main, __doc__, vgg16="Keras VGG16 notop weights file")
