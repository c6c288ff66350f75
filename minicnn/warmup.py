"""Compiling the Numba kernels ahead of use: ``minicnn warmup``, and the same in the
background while a first run trains on the NumPy kernels.

A Numba kernel is compiled on its first call with a new type signature (float32 or
float64 arrays, the register tile a layer's filter count selects) and then kept in the
disk cache (``kernels/jit.py``).  A cold cache costs minutes on a small machine, most of
it in the Winograd kernels, so a first run should not wait for it.  ``warm_up`` runs
training steps, predictions and input gradients of each seed model (and, for ``minicnn
warmup``, of a model of the BN, residual and separable blocks) on random data with the
Numba kernels, which compiles what they use, and then leaves a marker per model in the cache folder;
``is_warm`` reads those markers.  The marker names the kernels' sources (their size and time stamp)
and the Numba and Python versions, the things Numba's own cache entries are checked
against, so an edited kernel or an upgrade makes the cache cold again.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import numba
import numpy as np

# the seed models with the batch sizes their tutorials train with: what a first run's
# background warm-up compiles (and ``is_warm`` checks by default)
SEED_BATCHES = {"face_fcnn": 5, "face_cnn": 5, "mnist_deconstructed": 128, "mnist_cnn": 128, "mnist_convnet": 64,
                "cifar_six_conv": 64, "cats_dogs_small": 16, "cats_dogs_cnn": 16}
# the next chapter's layers (BN, the residual sum, depthwise and separable convolutions):
# ``minicnn warmup`` compiles them too, the background warm-up does not (a first run of the
# seed tutorials needs none of them)
BLOCK_BATCHES = {"residual_separable_blocks": 64}
MODEL_BATCHES = {**SEED_BATCHES, **BLOCK_BATCHES}
PREDICT_BATCH = 32          # predict's and evaluate's default
VIZ_BATCH = 8               # the images of a Grad-CAM or activation-maximization figure


def _marker_path(model) -> str:
    from .kernels import jit
    kernels = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels")
    stamp = hashlib.sha1(repr((kernels, numba.__version__, sys.version, jit.cpu_features())).encode())
    for name in sorted(os.listdir(kernels)):
        if name.endswith(".py"):
            info = os.stat(os.path.join(kernels, name))
            stamp.update(f"{name} {info.st_mtime_ns} {info.st_size}".encode())
    return os.path.join(jit.cache_dir(), f"warm-{stamp.hexdigest()[:16]}-{model}")


def is_warm(models=tuple(SEED_BATCHES)) -> bool:
    """True when ``warm_up`` has compiled the current kernels of ``models`` into the cache."""
    return all(os.path.exists(_marker_path(name)) for name in models)


def warm_up(models=tuple(SEED_BATCHES), verbose=True) -> float:
    """Compile (or load from the cache) the float32 Numba kernels that ``models`` train and
    predict with; returns the seconds it took."""
    from . import architectures, backend, optimizers, seeding
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    with backend.use_kernels("numba"):
        for name in models:
            if verbose:
                print(f"warm-up: {name}", file=sys.stderr, flush=True)
            seeding.set_seed(0)
            model = architectures.SEED_MODELS[name]() if name in SEED_BATCHES else getattr(architectures, name)()
            classes = model.output_shape[-1]
            loss = "sparse_categorical_crossentropy" if classes > 1 else "binary_crossentropy"
            for optimizer in (optimizers.Adam(), optimizers.RMSprop()):
                model.compile(optimizer, loss, metrics=["accuracy"])
                x = rng.uniform(0, 1, (MODEL_BATCHES[name], *model.input_shape[1:])).astype(np.float32)
                y = rng.integers(0, 2, (len(x), 1)).astype(np.float32) if classes == 1 else \
                    rng.integers(0, classes, len(x))
                model.train_on_batch(x, y)
            for batch in (PREDICT_BATCH, VIZ_BATCH, 1):
                model.predict(x[:batch], batch_size=batch)
                model.gradient(x[:batch], np.ones_like)        # the input gradients of the figures
            os.makedirs(os.path.dirname(_marker_path(name)), exist_ok=True)
            with open(_marker_path(name), "w") as marker:
                marker.write(f"{name} warmed up\n")
    return time.perf_counter() - start


def _running_pid(pid_file):
    """The pid in ``pid_file`` if that process still runs, else None."""
    try:
        with open(pid_file) as f:
            pid = int(f.read())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start_in_background():
    """``python -m minicnn.warmup`` in a separate, low-priority process that outlives this
    one (its output in ``warmup.log`` in the cache folder); None when one already runs."""
    from .kernels import jit
    os.makedirs(jit.cache_dir(), exist_ok=True)
    pid_file = os.path.join(jit.cache_dir(), "warmup.pid")
    if _running_pid(pid_file) is not None:
        return None
    with open(os.path.join(jit.cache_dir(), "warmup.log"), "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "minicnn.warmup", *SEED_BATCHES], stdout=log, stderr=log,
                                   stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=lambda: os.nice(10))
    with open(pid_file, "w") as f:
        f.write(str(process.pid))
    return process


def check_models(names):
    """The models to warm up: ``names``, or every one (the seed models and the blocks)."""
    unknown = [name for name in names if name not in MODEL_BATCHES]
    if unknown:
        raise ValueError(f"warmup: unknown model(s) {unknown}; choose from {sorted(MODEL_BATCHES)}")
    return tuple(names) or tuple(MODEL_BATCHES)


def main(models=()):
    from .kernels import jit
    seconds = warm_up(check_models(models))
    print(f"Numba kernels ready in {jit.cache_dir()} ({seconds:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])

