"""A small ResNet: residual blocks, BatchNormalization and global average pooling.

Each block computes ``y = relu(F(x) + shortcut(x))`` with ``F`` two 3×3 convolutions (each
followed by BatchNormalization) and ``shortcut`` the identity, or a strided 1×1 convolution
where the block halves the size and widens the channels.  The same network is trained with
and without BatchNormalization (then the convolutions get biases instead of β) and the two
training curves are drawn side by side.  Uses CIFAR-10 when it is available locally;
otherwise the same experiment on Fashion-MNIST, labelled as such.

Beside Keras (when TensorFlow is importable), two comparisons, each from the same initial
weights (drawn in minicnn, copied layer by layer into Keras) and on the same batches in the
same order (the training set shuffled once, outside both libraries, then ``shuffle=False``):

- float64, on ``--float64_samples`` training images (and as many test images): the two
  trainings follow one trajectory, so the training loss of every epoch
  agrees to 1e-6 (relative) and the test accuracies are equal;
- float32, ``--seeds`` initial weights and batch orders: a float32 training is chaotic (a
  change in the summation order alone moves the test accuracy by more than a point), so one
  run says little; the mean test accuracy of each library over the seeds is compared with
  the spread between seeds.

``--samples``, ``--test_samples``, ``--epochs``, ``--seeds`` and ``--float64_samples``
shorten the full run (all images, 5 epochs, 3 seeds, 2,000 float64 images).  The full run is
hours of training: with ``--runs_dir`` each finished training is kept there, and the same
command run again resumes after the last one kept.
"""
import contextlib
import json
import os
import time

import numpy as np

import minicnn as mc
from minicnn.example_support import Figures, check, cifar10_stand_in, example_main
from minicnn.saving import atomic_write_bytes
from minicnn.viz import plots

BATCH_SIZE, LEARNING_RATE = 64, 0.02
# Keras casts a Python-float momentum to float32 before the variable's dtype, so a float64 Keras
# model steps with float32(0.9) = 0.89999998; minicnn is given that same number
MOMENTUM = float(np.float32(0.9))
LOSS_TOLERANCE = 1e-6       # float64: relative difference of the two libraries' epoch losses


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


def keras_twin(model, build):
    """The Keras model of the same graph, with ``model``'s weights copied layer by layer."""
    twin = build()
    ours = [layer for layer in model.layers if layer.get_weights()]
    theirs = [layer for layer in twin.layers if layer.get_weights()]
    for a, b in zip(ours, theirs, strict=True):
        b.set_weights(a.get_weights())
    return twin


def one_order(x, y, seed):
    """The training set in one random order drawn outside both libraries, which then train on it
    with ``shuffle=False``: the same batches in the same order for both."""
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order], y[order]


def train(model, lib, x, y, xt, yt, epochs):
    """(history, test accuracy, seconds)."""
    model.compile(lib.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, shuffle=False, validation_data=(xt, yt),
                        verbose=0)
    return history.history, model.evaluate(xt, yt, verbose=0)[1], time.perf_counter() - start


def kept_or_trained(model, lib, x, y, xt, yt, epochs, record):
    """``train(...)``, or what an earlier training of the same settings kept in the JSON file
    ``record`` (None: keep nothing).  The record is written whole or not at all."""
    if record is not None and os.path.exists(record):
        with open(record) as f:
            kept = json.load(f)
        return kept["history"], kept["accuracy"], kept["seconds"]
    history, accuracy, seconds = train(model, lib, x, y, xt, yt, epochs)
    history = {key: [float(v) for v in values] for key, values in history.items()}
    if record is not None:
        kept = {"history": history, "accuracy": float(accuracy), "seconds": seconds,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "minicnn": mc.__version__}
        atomic_write_bytes(record, json.dumps(kept, indent=1).encode())
    return history, accuracy, seconds


def side_by_side(keras, x, y, xt, yt, epochs, batch_norm, seed, runs_dir=None):
    """{"minicnn": (history, test accuracy, seconds), "Keras": (...)} (Keras only when importable),
    both trained from the initial weights ``seed`` draws, on the batches ``one_order(.., seed)``;
    with ``runs_dir``, each training is kept there (see ``kept_or_trained``)."""
    mc.set_seed(seed)
    model = small_resnet(mc, x.shape[1:], batch_norm)
    x, y = one_order(x, y, seed)
    twin = None if keras is None else keras_twin(model, lambda: small_resnet(keras, x.shape[1:], batch_norm))
    if twin is not None:
        gap = np.abs(model.predict(xt[:64], verbose=0) - twin.predict(xt[:64], verbose=0)).max()
        check(gap <= 1e3 * np.finfo(x.dtype).eps, f"minicnn and Keras start from the same function, {gap:.1e}")
    settings = (f"{'bn' if batch_norm else 'plain'}-seed{seed}-{x.dtype}-{len(x)}x{epochs}-test{len(xt)}"
                f"-{x.shape[1]}x{x.shape[2]}x{x.shape[3]}")
    runs = {}
    for name, lib, net in (("minicnn", mc, model), ("Keras", keras, twin)):
        if net is not None:
            record = None if runs_dir is None else os.path.join(runs_dir, f"{name}-{settings}.json")
            runs[name] = kept_or_trained(net, lib, x, y, xt, yt, epochs, record)
    return runs


@contextlib.contextmanager
def float64(keras):
    """Both libraries in float64, minicnn on the kernels in use (in float64 no convolution runs
    on Winograd, whose rounding would open, on images with zero borders, ReLUs that TensorFlow
    keeps closed: ``kernels/conv_plan.choose``)."""
    before = mc.backend.floatx(), keras.backend.floatx(), keras.config.dtype_policy()
    mc.set_floatx("float64")
    keras.backend.set_floatx("float64")      # Keras's inputs
    keras.config.set_dtype_policy("float64")  # its layers: the policy, once made, no longer follows floatx
    try:
        yield
    finally:
        mc.set_floatx(before[0])
        keras.backend.set_floatx(before[1])
        keras.config.set_dtype_policy(before[2])


def float64_trajectories(keras, x, y, xt, yt, epochs, batch_norm, runs_dir=None, seed=0):
    """The float64 trainings of both libraries; checks they follow one trajectory and returns
    (minicnn's run, Keras's run, largest relative difference of their epoch losses)."""
    with float64(keras):
        runs = side_by_side(keras, x.astype("float64"), y, xt.astype("float64"), yt, epochs, batch_norm, seed,
                            runs_dir)
    ours, theirs = runs["minicnn"], runs["Keras"]
    a, b = np.array(ours[0]["loss"]), np.array(theirs[0]["loss"])
    worst = float(np.max(np.abs(a - b) / np.abs(b)))
    check(worst <= LOSS_TOLERANCE, f"float64: epoch losses within {LOSS_TOLERANCE:.0e} relative, worst {worst:.1e}")
    check(abs(ours[1] - theirs[1]) < 0.5 / len(xt), f"float64: the same test accuracy, {ours[1]} against {theirs[1]}")
    return ours, theirs, worst


def report_float64(label, ours, theirs, worst):
    print(f"float64, {label}: largest relative difference of the epoch losses {worst:.1e}")
    for epoch, values in enumerate(zip(*(run[0][key] for key in ("loss", "accuracy") for run in (ours, theirs))), 1):
        print("  epoch {}: training loss minicnn {:.10f}, Keras {:.10f}; accuracy {:.4f}, {:.4f}"
              .format(epoch, *values))
    print(f"  test accuracy minicnn {ours[1]:.4f}, Keras {theirs[1]:.4f} "
          f"(gap {100 * abs(ours[1] - theirs[1]):.2f} pp); {ours[2]:.0f} / {theirs[2]:.0f} s")


def report_seeds(label, accuracies):
    """Mean ± standard deviation of each library's test accuracy over the seeds, and the gap of
    the means; with two seeds or more, checks the gap lies within the seeds' spread."""
    stats = {lib: (100 * np.mean(a), 100 * np.std(a, ddof=1) if len(a) > 1 else None, 100 * np.ptp(a))
             for lib, a in accuracies.items()}
    for lib, (mean, std, spread) in stats.items():
        if std is not None:
            print(f"float32, {label}, {lib}: test accuracy {mean:.2f} ± {std:.2f} % (seeds: "
                  f"{', '.join(f'{100 * a:.2f}' for a in accuracies[lib])}; range {spread:.2f} pp)")
    if len(stats) == 2:
        gap = stats["minicnn"][0] - stats["Keras"][0]
        paired = 100 * (np.array(accuracies["minicnn"]) - np.array(accuracies["Keras"]))
        print(f"float32, {label}: gap of the means {gap:+.2f} pp; per seed minicnn − Keras: "
              f"{', '.join(f'{d:+.2f}' for d in paired)} pp")
        if len(paired) > 1:
            spread = max(s[2] for s in stats.values())
            check(abs(gap) <= spread,
                  f"{label}: the gap of the means ({gap:.2f} pp) within the seeds' range ({spread:.2f} pp)")


def main(quick=False, out=None, samples=None, test_samples=None, epochs=None, seeds=None, float64_samples=None,
         runs_dir=None):
    figures = Figures(out or "out/resnet")
    name, _, x, y, xt, yt = cifar10_stand_in()
    defaults = (2000, 1000, 2, 1, 128) if quick else (len(x), len(xt), 5, 3, 2000)
    n, n_test, n_epochs, n_seeds, n64 = (int(given) if given else default for given, default in
                                         zip((samples, test_samples, epochs, seeds, float64_samples), defaults))
    x, y, xt, yt = x[:n], y[:n], xt[:n_test], yt[:n_test]
    print(f"data: {name}; {len(x):,} training and {len(xt):,} test images, {n_epochs} epochs, {n_seeds} seed(s)")
    try:
        import keras
    except ImportError:
        keras = None
        print("TensorFlow/Keras is not importable: minicnn's results only")
    histories = {}
    for batch_norm in (True, False):
        label = "with BatchNormalization" if batch_norm else "without BatchNormalization"
        accuracies = {}
        for seed in range(n_seeds):
            runs = side_by_side(keras, x, y, xt, yt, n_epochs, batch_norm, seed, runs_dir)
            for lib, (history, accuracy, seconds) in runs.items():
                accuracies.setdefault(lib, []).append(accuracy)
                histories.setdefault(label, history)
                print(f"float32, {label}, seed {seed}, {lib}: test accuracy {accuracy:.4f} ({seconds:.0f} s)")
        report_seeds(label, accuracies)
        check(np.mean(accuracies["minicnn"]) > 0.2, "accuracy above chance (10 classes)")
        if keras is not None and n64:
            report_float64(label, *float64_trajectories(keras, x[:n64], y[:n64], xt[:n64], yt[:n64], n_epochs,
                                                            batch_norm, runs_dir))
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
    return histories


if __name__ == "__main__":
    example_main(main, __doc__, samples="training images (default: all; 2,000 with --quick)",
                 test_samples="test images (default: all; 1,000 with --quick)",
                 epochs="epochs (default 5; 2 with --quick)",
                 seeds="float32 runs per library, each from its own initial weights and batch order "
                       "(default 3; 1 with --quick)",
                 float64_samples="training images of the float64 comparison (default 2,000; 128 with --quick; 0: none)",
                 runs_dir="folder that keeps each finished training (JSON); the same command run again reads "
                          "those instead of training them again (default: keep nothing)")
