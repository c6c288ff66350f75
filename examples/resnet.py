"""A small ResNet: residual blocks, BatchNormalization and global average pooling.

Each block computes ``y = relu(F(x) + shortcut(x))`` with ``F`` two 3×3 convolutions (each
followed by BatchNormalization) and ``shortcut`` the identity, or a strided 1×1 convolution
where the block halves the size and widens the channels.  The same network is trained with
and without BatchNormalization (then the convolutions get biases instead of β) and the two
training curves are drawn side by side.  When TensorFlow is importable, the same graph is
built in Keras with the same initial weights (copied layer by layer) and trained on the same
batches in the same order; the test accuracies, and the training loss of each epoch, are
printed beside each other.  Uses CIFAR-10 when it is available locally; otherwise the same
experiment on Fashion-MNIST, labelled as such.  ``--samples``, ``--test_samples`` and
``--epochs`` shorten the full run (all images, 10 epochs).
"""
import time

import numpy as np

import minicnn as mc
from minicnn.example_support import Figures, check, cifar10_stand_in, example_main
from minicnn.viz import plots


def small_resnet(lib, input_shape, batch_norm=True, widths=(16, 32, 64), classes=10):
    """The network in either library: ``lib`` is ``minicnn`` or ``keras`` (the same calls)."""
    L = lib.layers

    def conv(x, filters, kernel_size=3, strides=1, relu=True):
        x = L.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=not batch_norm)(x)
        if batch_norm:     # momentum 0.9: the moving statistics settle within a short run
            x = L.BatchNormalization(momentum=0.9)(x)
        return L.Activation("relu")(x) if relu else x

    inputs = lib.Input(input_shape)
    x = conv(inputs, widths[0])
    for stage, filters in enumerate(widths):
        strides = 1 if stage == 0 else 2
        shortcut = x if strides == 1 else conv(x, filters, 1, strides, relu=False)
        branch = conv(conv(x, filters, strides=strides), filters, relu=False)
        x = L.Activation("relu")(L.Add()([branch, shortcut]))
    x = L.GlobalAveragePooling2D()(x)
    return lib.Model(inputs, L.Dense(classes, activation="softmax")(x))


def train(model, lib, x, y, xt, yt, epochs):
    model.compile(lib.optimizers.SGD(0.02, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=64, epochs=epochs, shuffle=False, validation_data=(xt, yt), verbose=0)
    return history.history, model.evaluate(xt, yt, verbose=0)[1], time.perf_counter() - start


def keras_twin(model, build):
    """The Keras model of the same graph, with ``model``'s weights copied layer by layer."""
    twin = build()
    ours = [layer for layer in model.layers if layer.get_weights()]
    theirs = [layer for layer in twin.layers if layer.get_weights()]
    for a, b in zip(ours, theirs, strict=True):
        b.set_weights(a.get_weights())
    return twin


def main(quick=False, out=None, samples=None, test_samples=None, epochs=None):
    figures = Figures(out or "out/resnet")
    name, _, x, y, xt, yt = cifar10_stand_in()
    n, n_test, n_epochs = (2000, 1000, 2) if quick else (len(x), len(xt), 10)
    n, n_test, n_epochs = (int(given) if given else default
                           for given, default in ((samples, n), (test_samples, n_test), (epochs, n_epochs)))
    x, y, xt, yt = x[:n], y[:n], xt[:n_test], yt[:n_test]
    print(f"data: {name}; {len(x):,} training and {len(xt):,} test images, {n_epochs} epochs")
    try:
        import keras
    except ImportError:
        keras = None
        print("TensorFlow/Keras is not importable: minicnn's results only")
    histories, accuracies, gaps = {}, {}, {}
    for batch_norm in (True, False):
        label = "with BatchNormalization" if batch_norm else "without BatchNormalization"
        mc.set_seed(0)
        model = small_resnet(mc, x.shape[1:], batch_norm)
        twin = keras and keras_twin(model, lambda: small_resnet(keras, x.shape[1:], batch_norm))
        if twin is not None:
            gap = np.abs(model.predict(xt[:64], verbose=0) - twin.predict(xt[:64], verbose=0)).max()
            print(f"before training, largest difference of the two libraries' predictions: {gap:.1e}")
            check(gap < 1e-4, f"{label}: minicnn and Keras start from the same function")
        histories[label], accuracies[label], seconds = train(model, mc, x, y, xt, yt, n_epochs)
        print(f"minicnn, {label}: test accuracy {accuracies[label]:.4f} ({seconds:.1f} s)")
        if twin is not None:
            keras_history, keras_accuracy, seconds = train(twin, keras, x, y, xt, yt, n_epochs)
            gaps[label] = 100 * abs(keras_accuracy - accuracies[label])
            print(f"Keras,   {label}: test accuracy {keras_accuracy:.4f} ({seconds:.1f} s); "
                  f"gap {gaps[label]:.2f} percentage points")
            for epoch, (ours, theirs) in enumerate(zip(histories[label]["loss"], keras_history["loss"]), 1):
                print(f"  epoch {epoch}: training loss minicnn {ours:.5f}, Keras {theirs:.5f}")
    check(min(accuracies.values()) > 0.2, "accuracy above chance (10 classes)")
    for key in ("loss", "accuracy"):
        fig = plots.plt.figure(figsize=(5, 3.5))
        for label, h in histories.items():
            epochs_axis = np.arange(1, len(h[key]) + 1)
            plots.plt.plot(epochs_axis, h[key], "o-", label=f"training, {label}")
            plots.plt.plot(epochs_axis, h[f"val_{key}"], "s--", label=f"validation, {label}")
        plots.plt.xlabel("epoch")
        plots.plt.title(f"small ResNet on {name.split(' (')[0]}: {key}")
        plots.plt.legend(fontsize=7)
        figures.save(fig, f"curves_{key}")
    # float32 rounding differs between the libraries, so the trajectories drift apart; on the quick
    # run's 1,000 test images one image is 0.1 pp, hence the looser bound there
    tolerance = 3.0 if quick else 0.3
    for label, gap in gaps.items():
        check(gap <= tolerance, f"{label}: minicnn and Keras accuracies within {tolerance} pp, gap {gap:.2f}")
    return accuracies


if __name__ == "__main__":
    example_main(main, __doc__, samples="training images (default: all; 2,000 with --quick)",
                 test_samples="test images (default: all; 1,000 with --quick)",
                 epochs="epochs (default 10; 2 with --quick)")
