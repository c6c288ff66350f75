"""Which array library and which kernels run the math.

Two independent choices live here:

* the **array module** (``numpy`` or ``cupy``) follows the data: every op calls
  ``get_array_module(x)`` and writes its GEMMs and elementwise math once;
* the **CPU kernels**: ``'reference'`` (the plain ops, unfused), ``'numpy'`` (vectorized
  NumPy, fused groups) or ``'numba'`` (the fast kernels), chosen by ``set_kernels``.  The
  default, ``'auto'``, is ``'numba'`` once the Numba kernels are in the disk cache, and
  ``'numpy'`` until then while a background process compiles them (``warmup.py``): a first
  ``fit`` does not wait minutes for the compiler, and its GEMMs run on one BLAS thread
  meanwhile (the compile holds the other core; ``threads.set_openblas_threads``).

Nothing is imported eagerly: CuPy is optional, and "importable" and "a GPU is
usable" are separate checks (``gpu_status``).  From minicnn this module imports only
``threads``.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time

import numpy as np

from . import threads

def check_choice(value, choices, what):
    if value not in choices:
        raise ValueError(f"{what}: expected one of {choices}, received {value!r}")
    return value


_KERNEL_CHOICES = ("auto", "reference", "numpy", "numba")
_kernels = check_choice(os.environ.get("MINICNN_KERNELS", "auto"), _KERNEL_CHOICES, "MINICNN_KERNELS")
_auto = {"family": None, "checked": -1e9}
AUTO_RECHECK_SECONDS = 2.0


def get_kernels() -> str:
    """The CPU kernel family in use: 'reference', 'numpy' or 'numba' ('auto' resolved)."""
    return _kernels if _kernels != "auto" else _auto_family()


def _auto_family() -> str:
    """'numba' once the Numba kernels are compiled into the cache (for good: a cache does not
    go cold within a run); until then 'numpy', with a background compile started once and a
    check for its end at most every ``AUTO_RECHECK_SECONDS``."""
    if _auto["family"] == "numba":
        return "numba"
    now = time.monotonic()
    if now - _auto["checked"] >= AUTO_RECHECK_SECONDS:
        from . import warmup
        first = _auto["family"] is None
        _auto["checked"] = now
        _auto["family"] = "numba" if warmup.is_warm() else "numpy"
        if _auto["family"] == "numpy" and first:
            warmup.start_in_background()
            _auto["blas_threads"] = threads.set_openblas_threads(1)     # the compile holds a core meanwhile
            print("minicnn: the Numba CPU kernels are not compiled yet (first run only); running on the NumPy "
                  "kernels while a background process compiles them (`minicnn warmup` does it in the "
                  "foreground, set_kernels('numba') compiles as it goes)", file=sys.stderr)
        elif _auto["family"] == "numba":
            _give_back_blas_threads()
    return _auto["family"]


def _give_back_blas_threads() -> None:
    """The BLAS threads 'auto' took while the background compile ran, given back."""
    if _auto.get("blas_threads"):
        threads.set_openblas_threads(max(_auto.pop("blas_threads")))


def set_kernels(name: str) -> None:
    """Select the CPU kernels: 'reference' (the plain ops, unfused, no buffer reuse: the
    path that reads like docs/backprop.md), 'numpy' (vectorized NumPy, fused groups),
    'numba' (the fast kernels, compiled on first use) or 'auto' (see the module docstring)."""
    global _kernels
    _kernels = check_choice(name, _KERNEL_CHOICES, "set_kernels")
    if _kernels != "auto":
        _give_back_blas_threads()       # (one thread was for the NumPy kernels beside the compile)


@contextlib.contextmanager
def use_kernels(name: str):
    """Context manager form of :func:`set_kernels`."""
    previous = _kernels
    set_kernels(name)
    try:
        yield
    finally:
        set_kernels(previous)


def cupy_or_none():
    """The cupy module if it imports, else None (never raises)."""
    try:
        import cupy
    except Exception:  # ImportError, or a CUDA runtime that fails to load
        return None
    return cupy


def gpu_status() -> tuple[bool, str]:
    """(usable, reason): whether a CUDA GPU can run minicnn, and why not if not."""
    cupy = cupy_or_none()
    if cupy is None:
        return False, "CuPy is not installed (pip install 'minicnn[gpu]' installs cupy-cuda12x)"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        return False, f"CuPy is installed but no CUDA GPU is usable: {exc}"
    if count == 0:
        return False, "CuPy is installed but no CUDA GPU is present"
    return True, f"{count} CUDA device(s)"


def require_gpu():
    """Return cupy, or raise a RuntimeError that says what is missing."""
    usable, reason = gpu_status()
    if not usable:
        raise RuntimeError(f"GPU requested but unavailable: {reason}")
    return cupy_or_none()


def get_array_module(*arrays):
    """numpy, or cupy when any argument is a cupy array (Chainer's idiom)."""
    for a in arrays:
        if type(a) is not np.ndarray and type(a).__module__.startswith("cupy"):
            return cupy_or_none()
    return np


def is_gpu_array(x) -> bool:
    return get_array_module(x) is not np


def on_numba_kernels(x) -> bool:
    """True when ``x`` is a host array and the Numba kernels are selected."""
    return not is_gpu_array(x) and get_kernels() == "numba"


def to_numpy(x) -> np.ndarray:
    """A host copy (or the array itself when it already is on the host)."""
    return x.get() if is_gpu_array(x) else np.asarray(x)


_names_taken: dict[str, int] = {}


def unique_name(base: str) -> str:
    """Keras's automatic names, counted per session: conv2d, conv2d_1, conv2d_2, ..."""
    count = _names_taken.get(base, 0)
    _names_taken[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def clear_session() -> None:
    """Start the automatic layer names afresh (Keras's ``clear_session``)."""
    _names_taken.clear()


def image_data_format() -> str:
    """Always 'channels_last' (NHWC, Keras's default)."""
    return "channels_last"


_FLOAT_TYPES = ("float32", "float64")
_floatx = "float32"


def floatx() -> str:
    """The default dtype of new parameters: 'float32' (Keras's) unless set."""
    return _floatx


def set_floatx(name: str) -> None:
    """Set the default parameter dtype: 'float32' or 'float64' (gradient checks)."""
    global _floatx
    _floatx = check_choice(name, _FLOAT_TYPES, "set_floatx")


def function(inputs, outputs):
    """Keras 2's ``backend.function([inputs], [outputs])``: a callable from a list of input
    arrays to the list of output arrays (a ``Model`` between those tensors, in inference)."""
    from .model import Model
    model = Model(list(inputs), list(outputs))
    return lambda arrays: [model.predict(arrays[0] if len(arrays) == 1 else list(arrays), verbose=0)] \
        if len(model.outputs) == 1 else model.predict(arrays[0] if len(arrays) == 1 else list(arrays), verbose=0)
