"""minicnn — a from-scratch CNN engine whose every backward pass you can read.

    import minicnn as mc
    model = mc.Sequential([mc.layers.Input((28, 28, 1)),
                           mc.layers.Conv2D(32, 3, activation="relu"), ...])
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=3)

Importing minicnn has one side effect: where they are unset, it sets
``OPENBLAS_THREAD_TIMEOUT=4``, ``OMP_WAIT_POLICY=PASSIVE`` and ``GOMP_SPINCOUNT=30000`` and
restarts an already loaded OpenBLAS's threads, so that the BLAS and Numba thread pools do not
starve each other and Numba's threads stay awake between one kernel and the next
(``threads.py``).  ``MINICNN_SHARE_CORES=0`` in the environment turns it off.  (Its Numba
kernels, loaded on first use, have Numba compile 512-bit vectors on Intel's AVX-512 CPUs:
``kernels/jit.py``.)
"""
import os as _os

from . import threads as _threads

if _os.environ.get("MINICNN_SHARE_CORES", "1") != "0":
    _threads.share_cores()

from . import activations, backend, callbacks, initializers, layers, losses, metrics, optimizers  # noqa: E402
from .backend import get_kernels, set_floatx, set_kernels, use_kernels  # noqa: E402
from .kernels.conv_plan import use_conv_algorithm  # noqa: E402
from .layers import Input  # noqa: E402
from .model import Model  # noqa: E402
from .sequential import Sequential  # noqa: E402
from . import models  # noqa: E402
from . import applications, datasets, ops, preprocessing, utils  # noqa: E402
from .saving import load_keras_weights, load_model  # noqa: E402
from .seeding import set_seed  # noqa: E402

# Imported on first use (PEP 562): training does not pay for matplotlib's import and memory.
_LAZY = {"viz": "viz", "study": "study", "gradcheck": "study", "compare_with_keras": "study", "trace": "study"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return module if name == _LAZY[name] else getattr(module, name)
    raise AttributeError(f"module 'minicnn' has no attribute {name!r}")

__version__ = "0.1.0"

__all__ = ["Model", "Sequential", "Input", "models", "applications", "datasets", "ops", "preprocessing", "utils",
           "layers", "losses", "optimizers", "metrics", "callbacks", "activations",
           "initializers", "backend", "set_seed", "set_floatx", "set_kernels", "get_kernels",
           "use_kernels", "use_conv_algorithm", "load_model", "load_keras_weights", "viz", "study", "gradcheck",
           "compare_with_keras", "trace"]
