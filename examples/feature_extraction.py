"""Feature extraction, CIFAR-style (seed tutorial 5).

The six-conv 16-filter model trained on a large and on a small training set (the
tutorial: 50K vs 10K CIFAR-10 images); the feature maps of the first and last conv
layers for the same held-out image, pixel-value histograms of both models' layers, and
the two softmax distributions.  Uses CIFAR-10 when it is available locally; otherwise
the same experiment on Fashion-MNIST (60K vs 10K), labelled as such.
"""
import numpy as np

from minicnn import Model, architectures, optimizers, seeding
from minicnn.example_support import Figures, check, cifar10_stand_in, example_main
from minicnn.viz import plots


def load(quick):
    name, classes, x, y, xt, yt = cifar10_stand_in()
    sizes = (3000, 600) if quick else (len(x), len(x) // 5 if name == "CIFAR-10" else 10000)
    return name, classes, x, y, xt, yt, sizes


def main(quick=False, out=None):
    figures = Figures(out or "out/feature_extraction")
    name, classes, x, y, xt, yt, (large, small) = load(quick)
    if quick:
        xt, yt = xt[:1000], yt[:1000]
    print(f"data: {name}; large set {large:,}, small set {small:,} training images")
    models, accuracies = {}, {}
    for label, n in (("large", large), ("small", small)):
        seeding.set_seed(0)
        model = architectures.cifar_six_conv(x.shape[1:])
        model.compile(optimizers.Adam(), "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x[:n], y[:n], batch_size=32 if not quick else 64, epochs=1 if quick else 10, verbose=2)
        accuracies[label] = model.evaluate(xt, yt, verbose=0)[1]
        models[label] = model
        print(f"{label} training set ({n:,}): test accuracy {accuracies[label]:.4f}")
    check(min(accuracies.values()) > 0.2, "accuracy above chance (10 classes)")
    image = xt[:1]
    acts, image_acts = {}, {}
    for label, model in models.items():      # the tutorial's recipe: a model whose outputs are every layer's
        layer_outputs = (layer.output for layer in model.layers)
        features = Model(inputs=model.input, outputs=layer_outputs)
        names = [layer.name for layer in model.layers]
        convs = [n for n in names if n.startswith("conv2d")]
        image_acts[label] = dict(zip(names, features.predict(image, verbose=0)))
        acts[label] = {n: a for n, a in zip(names, features.predict(xt[:16], verbose=0)) if n in convs}
    first_last = [convs[0], convs[-1]]
    for label in models:
        for layer in first_last:
            figures.save(plots.plot_feature_maps(image_acts[label][layer], images_per_row=8, title=f"{label}: {layer}"),
                         f"{label}_{layer}")
    figures.save(plots.plot_activation_histograms(acts["large"], acts["small"], ("large set", "small set")),
                 "histograms")
    for label, model in models.items():
        figures.save(plots.plot_probabilities(model.predict(image)[0], list(classes),
                                              title=f"{label} set model (true: {classes[yt[0]]})"),
                     f"softmax_{label}")
    return accuracies


if __name__ == "__main__":
    example_main(main, __doc__)
