"""The README's results table: minicnn vs TF-Keras on the seed tutorials' models, same
data, architecture, optimizer, epochs and — per seed — the same initial weights (copied
from minicnn into the Keras twin) and the same data order.  Mean ± sd over the seeds of
test accuracy (training accuracy for the two-person face task, which has no test set)
and the time per epoch.  The MNIST training images are not available here, so the MNIST
models train on the full Fashion-MNIST (60,000 / 10,000), and so does the CIFAR-style
model; the table says so.  The "tutorial" column quotes the figure the tutorial itself
reports where we have it (on its own data and epochs, so it is context, not a target).

    MINICNN_DATA=../shared/datasets python benchmarks/results_table.py [--epochs 1] [--seeds 3] [--face-seeds 10]

The two face rows take seconds, and their outcome per seed is all-or-nothing (a model
separates the 20 faces or stays at 0.5), so they run over more seeds.
"""
import argparse
import json
import os
import time

import minicnn as mc  # first: thread-pool settings before NumPy loads
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from minicnn import architectures  # noqa: E402
from minicnn.datasets import embedded, fashion_mnist  # noqa: E402
from minicnn.keras_bridge import to_keras  # noqa: E402

NOT_AVAILABLE = "not available here"
ROWS = [  # (label, builder, data, optimizer (name, lr), batch, epochs or None for the default, tutorial's figure)
    ("face FCNN (16,393)", architectures.face_fcnn, "faces", ("adam", 0.003), 5, 20,
     "stalls near 0.5 (training)"),
    ("face CNN (3,405)", architectures.face_cnn, "faces", ("adam", 0.003), 5, 20, "reaches 1.0 (training)"),
    ("MNIST 24/48/64 CNN (113,514)", architectures.mnist_deconstructed, "fashion", ("adam", 0.001), 256, None,
     NOT_AVAILABLE),
    ("MNIST 32/64 CNN (220,234)", architectures.mnist_cnn, "fashion", ("adam", 0.001), 128, None, NOT_AVAILABLE),
    ("MNIST 32/64/64 convnet (93,322)", architectures.mnist_convnet, "fashion", ("rmsprop", 0.001), 64, None,
     "0.991 test, MNIST, 5 epochs (Chollet, Deep Learning with Python, §5.1)"),
    ("CIFAR-style six-conv", lambda: architectures.cifar_six_conv((28, 28, 1)), "fashion", ("adam", 0.001), 32, None,
     NOT_AVAILABLE),
]


def load(kind):
    if kind == "faces":
        faces = embedded.load_olivetti()
        x = faces.images[:20, :, :, None]
        y = (faces.target[:20] == 1).astype(np.float32).reshape(-1, 1)
        return x, y, x, y, "binary_crossentropy"
    (x, y), (xt, yt) = fashion_mnist.load_data(download=False)
    return (x[..., None] / np.float32(255), y.astype(np.int64), xt[..., None] / np.float32(255), yt.astype(np.int64),
            "sparse_categorical_crossentropy")


def optimizer(framework, name, lr):
    import keras
    table = {"adam": (mc.optimizers.Adam, keras.optimizers.Adam), "rmsprop": (mc.optimizers.RMSprop,
                                                                             keras.optimizers.RMSprop)}
    return table[name][0 if framework == "minicnn" else 1](lr)


def accuracy(probs, y):
    return float(((probs[:, 0] > 0.5) == (y[:, 0] > 0.5)).mean()) if probs.shape[1] == 1 else \
        float((probs.argmax(1) == y).mean())


def run_row(row, seeds, epochs):
    label, build, kind, (opt, lr), batch, fixed_epochs, tutorial = row
    epochs = fixed_epochs or epochs
    x, y, xt, yt, loss = load(kind)
    out = {"minicnn": {"acc": [], "epoch_s": []}, "keras": {"acc": [], "epoch_s": []}}
    for seed in seeds:
        mc.set_seed(seed)
        ours = build()
        theirs = to_keras(ours)                                # the same initial weights
        order = np.random.default_rng(seed).permutation(len(x))  # the same data order
        for framework, model in (("minicnn", ours), ("keras", theirs)):
            model.compile(optimizer(framework, opt, lr), loss)
            start = time.perf_counter()
            model.fit(x[order], y[order], batch_size=batch, epochs=epochs, shuffle=False, verbose=0)
            out[framework]["epoch_s"].append((time.perf_counter() - start) / epochs)
            probs = model.predict(xt, verbose=0) if framework == "keras" else model.predict(xt, batch_size=256)
            out[framework]["acc"].append(accuracy(np.asarray(probs), yt))
        print(f"{label} seed {seed}: minicnn {out['minicnn']['acc'][-1]:.4f}, keras {out['keras']['acc'][-1]:.4f}",
              flush=True)
    return {"label": label, "data": "Olivetti, 2 people (training accuracy)" if kind == "faces" else
            "Fashion-MNIST 60k/10k (MNIST stand-in)" if "MNIST" in label else "Fashion-MNIST 60k/10k (CIFAR stand-in)",
            "epochs": epochs, "batch": batch, "optimizer": f"{opt}({lr})", "tutorial": tutorial,
            "seeds": len(seeds), **out}


def markdown(rows):
    lines = ["| model | data | optimizer, batch, epochs, seeds | tutorial reports | minicnn accuracy | Keras accuracy | "
             "Δ (pp) | minicnn s/epoch | Keras s/epoch |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m, k = np.array(r["minicnn"]["acc"]), np.array(r["keras"]["acc"])
        lines.append(f"| {r['label']} | {r['data']} | {r['optimizer']}, {r['batch']}, {r['epochs']}, {r['seeds']} | "
                     f"{r['tutorial']} | {m.mean():.4f} ± {m.std():.4f} | {k.mean():.4f} ± {k.std():.4f} | "
                     f"{(m.mean() - k.mean()) * 100:+.2f} | {np.mean(r['minicnn']['epoch_s']):.1f} | "
                     f"{np.mean(r['keras']['epoch_s']):.1f} |")
    return "\n".join(lines) + "\n\nMean ± sd over the seeds; same initial weights and data order per seed.\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--face-seeds", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    rows = [run_row(row, range(args.face_seeds if row[2] == "faces" else args.seeds), args.epochs) for row in ROWS]
    os.makedirs(args.out, exist_ok=True)
    from minicnn.saving import atomic_write_bytes
    atomic_write_bytes(os.path.join(args.out, "results_table.json"), json.dumps(rows, indent=1).encode())
    table = markdown(rows)
    atomic_write_bytes(os.path.join(args.out, "results_table.md"), table.encode())
    print(table)


if __name__ == "__main__":
    main()
