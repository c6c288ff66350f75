"""The ``minicnn report`` and ``minicnn gradcheck`` commands."""
from __future__ import annotations

import numpy as np


def report_command(model_path, out):
    from ..datasets import embedded
    from ..saving import load_model
    from ..viz.report import report
    model = load_model(model_path)
    x, y = embedded.load_mnist_digits()
    x, y = x[2500:, ..., None].astype(np.float32) / 255, y[2500:]        # the digits the demo holds out
    if model.input_shape[1:] != x.shape[1:]:
        raise SystemExit(f"minicnn report: the model expects input {model.input_shape[1:]}; the embedded digits "
                         f"are {x.shape[1:]}. Use minicnn.viz.report(model, x, y, path) with your own data.")
    print(f"report on the {len(x)} embedded MNIST digits minicnn demo holds out: {report(model, x, y, out)}")


def gradcheck_command(name, bisect):
    from .. import architectures, seeding
    from .finite_differences import first_wrong_layer, gradcheck
    if name not in architectures.SEED_MODELS:
        raise SystemExit(f"minicnn gradcheck: unknown model {name!r}; choose from {sorted(architectures.SEED_MODELS)}")
    seeding.set_seed(0)
    shape = {"face_fcnn": (16, 16, 1), "face_cnn": (24, 24, 1), "cats_dogs_cnn": (40, 40, 3),
             "cats_dogs_small": (30, 30, 3), "cifar_six_conv": (12, 12, 3)}.get(name, (20, 20, 1))
    model = architectures.SEED_MODELS[name](shape)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2, *shape))
    classes = model.output_shape[-1]
    y = np.eye(classes)[rng.integers(0, classes, 2)] if classes > 1 else rng.integers(0, 2, (2, 1)).astype(float)
    model.compile("sgd", "categorical_crossentropy" if classes > 1 else "binary_crossentropy")
    print(f"finite-difference check of {name} on input {shape} (float64, central differences)")
    results = gradcheck(model, x, y, verbose=True)
    culprit = first_wrong_layer(results)
    if bisect:
        print(f"first layer with a wrong backward: {culprit}" if culprit else "every backward agrees")
    return 1 if culprit else 0
