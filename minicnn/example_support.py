"""What every example shares: its command line, figure saving with a non-blank check,
and checks that fail loudly (``--quick`` runs assert what they show)."""
from __future__ import annotations

import argparse
import os

import numpy as np


class ExampleCheckFailed(AssertionError):
    pass


def check(condition, message):
    if not condition:
        raise ExampleCheckFailed(message)


class Figures:
    """Saves figures as PNG under ``out``, checks each is not blank and says where it went."""

    def __init__(self, out):
        self.out = out
        self.paths = []
        os.makedirs(out, exist_ok=True)

    def save(self, fig, name):
        from PIL import Image
        from .viz.plots import save_figure
        path = os.path.join(self.out, f"{name}.png")
        save_figure(fig, path)
        with Image.open(path) as img:
            check(np.asarray(img.convert("L"), dtype=np.float64).std() > 1.0, f"figure {path} is blank")
        self.paths.append(path)
        print(f"figure: {os.path.abspath(path)}")
        return path


def cifar10_stand_in():
    """``(name, class_names, x, y, x_test, y_test)``: CIFAR-10 when it is available locally,
    else Fashion-MNIST (its name says so); images float32 in [0, 1], labels int64."""
    from .datasets import cifar10, fashion_mnist
    try:
        (x, y), (xt, yt) = cifar10.load_data(download=False)
        name, classes = "CIFAR-10", cifar10.CLASS_NAMES
        y, yt = y[:, 0], yt[:, 0]
    except FileNotFoundError:
        (x, y), (xt, yt) = fashion_mnist.load_data(download=False)
        name, classes = "Fashion-MNIST (CIFAR-10 is not available here)", fashion_mnist.CLASS_NAMES
        x, xt = x[..., None], xt[..., None]
    return (name, classes, (x / 255.0).astype(np.float32), y.astype(np.int64), (xt / 255.0).astype(np.float32),
            yt.astype(np.int64))


def photo_grayscale(size=None):
    """Grace Hopper's portrait shipped with matplotlib, grey, float32 in [0, 1]."""
    from matplotlib import cbook
    from PIL import Image
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        img = img.convert("L")
        if size is not None:
            img = img.resize((size[1], size[0]), Image.BILINEAR)
        return np.asarray(img, dtype=np.float32) / 255


def mnist_split(quick, seed=0):
    """(x_train, y_train, x_test, y_test, description): MNIST when its training images are
    available, else the 10,000-image test split divided 8,000 / 2,000 (said plainly);
    quick runs use the embedded digits."""
    from .datasets import embedded, mnist
    if quick:
        x, y = embedded.load_mnist_digits()
        return (x[:1500], y[:1500], x[2500:], y[2500:],
                "embedded MNIST digits (1,500 train / 500 test, from the MNIST test split)")
    try:
        (x_train, y_train), (x_test, y_test) = mnist.load_data(download=False)
        return x_train, y_train, x_test, y_test, "MNIST (60,000 / 10,000)"
    except mnist.MNISTTrainingImagesMissing:
        x, y = mnist.load_test(download=False)
        return (x[:8000], y[:8000], x[8000:], y[8000:],
                "MNIST training images unavailable: the 10,000-image MNIST TEST split, 8,000 to train / 2,000 "
                "to test")


def prepare(x, y):
    return x[..., None].astype(np.float32) / 255, np.asarray(y).astype(np.int64)


def train_mnist_model(build, params, optimizer, batch_size, epochs, quick):
    """Build a seed model (checking its parameter count), train it on MNIST (or the stand-in
    ``mnist_split`` says), check its test accuracy is above chance.
    Returns (model, history, x_test, y_test, accuracy)."""
    from . import seeding
    x_train, y_train, x_test, y_test, description = mnist_split(quick)
    print("data:", description)
    (x_train, y_train), (x_test, y_test) = prepare(x_train, y_train), prepare(x_test, y_test)
    seeding.set_seed(0)
    model = build()
    model.summary()
    check(model.count_params() == params, f"parameter count: expected {params:,}, found {model.count_params():,}")
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_data=(x_test, y_test),
                        verbose=2)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    print(f"test accuracy {accuracy:.4f}")
    check(accuracy > 0.5, "accuracy above chance")
    return model, history, x_test, y_test, accuracy


def example_main(main, description, **extra):
    """The command line of ``python examples/NAME.py``: --quick, --out, and ``extra``
    options given as ``name=help`` (passed to ``main`` as keyword arguments)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small data and few epochs (< 1 minute)")
    parser.add_argument("--out", default=None, help="output folder")
    for name, help_text in extra.items():
        parser.add_argument(f"--{name}", default=None, help=help_text)
    main(**vars(parser.parse_args()))
