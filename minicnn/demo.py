"""The main job: train the seed CNNs on the embedded data and write the HTML report.

1. The MNIST "deconstructed" CNN (24/48/64 convs, 113,514 params, Adam, batch 128) on
   2,500 embedded MNIST digits, tested on 500 others.
2. The Olivetti comparison: FCNN (16,393 params) vs CNN (3,405 params) on two people's
   20 faces, 20 epochs at batch 5 with Adam(0.003), over five seeds.

Everything runs offline from data shipped in the package.  On a first run the Numba
kernels are not compiled yet (minutes, once): the default kernel choice ('auto',
``backend.py``) then runs the demo on the NumPy kernels while a background process compiles
the Numba ones for later runs (``minicnn.warmup``).
"""
from __future__ import annotations

import os
import time

import numpy as np

from . import architectures, optimizers, seeding
from .datasets import embedded
from .viz import plots
from .viz.report import png_tag, report as write_report


def olivetti_comparison(seeds=(0, 1, 2, 3, 4), epochs=20, verbose=0):
    """Final training accuracy of the face FCNN and CNN per seed (two people, 20 images)."""
    faces = embedded.load_olivetti()
    x = faces.images[:20, :, :, None]
    y = (faces.target[:20] == 1).astype(np.float32)
    results = {"face_fcnn": [], "face_cnn": []}
    models = {}
    for seed in seeds:
        for name in results:
            seeding.set_seed(seed)
            model = architectures.SEED_MODELS[name]()
            model.compile(optimizers.Adam(0.003), "binary_crossentropy", metrics=["accuracy"])
            history = model.fit(x, y, batch_size=5, epochs=epochs, verbose=verbose)
            results[name].append(history.history["accuracy"][-1])
            models[name] = model
    return results, models, x


def run(out_dir="minicnn-demo", epochs=6, quick=False):
    """The demo, on the kernels ``set_kernels`` chose: by default ('auto') the NumPy kernels
    while the Numba ones are not compiled yet, which a background process then does."""
    return _run(out_dir, epochs, quick)


def _run(out_dir, epochs, quick):
    t0 = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    x, y = embedded.load_mnist_digits()
    x = x[..., None].astype(np.float32) / 255
    y = y.astype(np.int64)
    n_train = 600 if quick else 2500
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[2500:], y[2500:]
    print(f"MNIST digits shipped with minicnn (from the MNIST test split): {len(x_train)} to train, "
          f"{len(x_test)} to test")
    seeding.set_seed(0)
    model = architectures.mnist_deconstructed()
    model.summary()
    model.compile(optimizers.Adam(0.002), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=128, epochs=2 if quick else epochs,
                        validation_data=(x_test, y_test))
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"MNIST CNN test accuracy: {accuracy:.4f} (loss {loss:.4f}) on {len(x_test)} held-out digits")
    model.save(os.path.join(out_dir, "mnist_cnn.mnc"))

    print("Olivetti faces, two people: FCNN vs CNN, 20 epochs at batch 5")
    seeds = (0, 4) if quick else (0, 1, 2, 3, 4)
    faces, face_models, face_x = olivetti_comparison(seeds)
    rows = []
    for name, accs in faces.items():
        params = face_models[name].count_params()
        print(f"  {name}: {params:,} params, final training accuracy per seed {[round(a, 3) for a in accs]}")
        rows.append(f"<tr><td>{name}</td><td>{params:,}</td><td>{', '.join(f'{a:.3f}' for a in accs)}</td></tr>")
    cnn = face_models["face_cnn"]
    conv_out, pool_out = cnn.intermediate_outputs(face_x[:1], [cnn.layers[0].name, cnn.layers[1].name])
    figures = os.path.join(out_dir, "figures")
    os.makedirs(figures, exist_ok=True)
    face_section = ("Olivetti faces: FCNN vs CNN",
                    "<table border=1 cellpadding=4><tr><th>model</th><th>params</th><th>final training "
                    f"accuracy per seed</th></tr>{''.join(rows)}</table>"
                    + png_tag(plots.plot_filters(cnn.layers[0].params["kernel"],
                                                               title="face CNN: the four 8×8 filters"),
                                            "face_filters", os.path.join(figures, "face_filters.png"))
                    + png_tag(plots.plot_feature_maps(conv_out, title="57×57 conv outputs", image=face_x[0]),
                                            "face_conv", os.path.join(figures, "face_conv_outputs.png"))
                    + png_tag(plots.plot_feature_maps(pool_out, title="14×14 pool outputs", image=face_x[0]),
                                            "face_pool", os.path.join(figures, "face_pool_outputs.png")))
    path = write_report(model, x_test, y_test, os.path.join(out_dir, "report.html"),
                                history=history, title="minicnn demo: MNIST CNN and Olivetti faces",
                                figures_dir=figures, extra_sections=[face_section])
    print(f"Done in {time.perf_counter() - t0:.0f} s. Report: {os.path.abspath(path)}; "
          f"figures in {os.path.abspath(figures)}; model in {os.path.abspath(os.path.join(out_dir, 'mnist_cnn.mnc'))}")
    return {"accuracy": accuracy, "faces": faces, "report": path}
