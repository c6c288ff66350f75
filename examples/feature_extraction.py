"""Feature extraction, CIFAR-style (seed tutorial 5).

The six-conv 16-filter model trained on a large and on a small training set (the
tutorial: 50K vs 10K CIFAR-10 images); the feature maps of the first and last conv
layers for the same held-out image, pixel-value histograms of both models' layers, and
the two softmax distributions.  Uses CIFAR-10 when it is available locally; otherwise
the same experiment on Fashion-MNIST (60K vs 10K), labelled as such.
"""
import numpy as np

from minicnn import architectures, optimizers, seeding
from minicnn.datasets import cifar10, fashion_mnist
from minicnn.example_support import Figures, check, example_main
from minicnn.viz import plots


def load(quick):
    try:
        (x, y), (xt, yt) = cifar10.load_data(download=False)
        name, classes = "CIFAR-10", cifar10.CLASS_NAMES
        x, xt, y, yt = x / 255.0, xt / 255.0, y[:, 0], yt[:, 0]
    except FileNotFoundError:
        (x, y), (xt, yt) = fashion_mnist.load_data(download=False)
        name, classes = "Fashion-MNIST (CIFAR-10 is not available here)", fashion_mnist.CLASS_NAMES
        x, xt = x[..., None] / 255.0, xt[..., None] / 255.0
    sizes = (3000, 600) if quick else (len(x), len(x) // 5 if name == "CIFAR-10" else 10000)
    return name, classes, x.astype(np.float32), y.astype(np.int64), xt.astype(np.float32), yt.astype(np.int64), sizes


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
    convs = [layer.name for layer in models["large"].layers if layer.name.startswith("conv2d")]
    first_last = [convs[0], convs[-1]]
    for label, model in models.items():
        for layer, act in zip(first_last, model.intermediate_outputs(image, first_last)):
            figures.save(plots.plot_feature_maps(act, images_per_row=8, title=f"{label}: {layer}"),
                         f"{label}_{layer}")
    acts = {label: dict(zip(convs, m.intermediate_outputs(xt[:16], convs))) for label, m in models.items()}
    figures.save(plots.plot_activation_histograms(acts["large"], acts["small"], ("large set", "small set")),
                 "histograms")
    for label, model in models.items():
        figures.save(plots.plot_probabilities(model.predict(image)[0], list(classes),
                                              title=f"{label} set model (true: {classes[yt[0]]})"),
                     f"softmax_{label}")
    return accuracies


if __name__ == "__main__":
    example_main(main, __doc__)
