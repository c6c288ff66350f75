"""Which array library and which kernels run the math.

Two independent choices live here:

* the **array module** (``numpy`` or ``cupy``) follows the data: every op calls
  ``get_array_module(x)`` and writes its GEMMs and elementwise math once;
* the **CPU kernels** for the copy-heavy ops (im2col, col2im, max-pool) are either
  the readable NumPy versions or the Numba versions.  ``set_kernels('numpy')`` /
  ``set_kernels('numba')`` switches them (tests and benchmarks use both).

Nothing is imported eagerly: CuPy is optional, and "importable" and "a GPU is
usable" are separate checks (``gpu_status``).  This module imports nothing else
from minicnn.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

def check_choice(value, choices, what):
    if value not in choices:
        raise ValueError(f"{what}: expected one of {choices}, received {value!r}")
    return value


_KERNEL_CHOICES = ("reference", "numpy", "numba")
_kernels = check_choice(os.environ.get("MINICNN_KERNELS", "numba"), _KERNEL_CHOICES, "MINICNN_KERNELS")


def get_kernels() -> str:
    """The CPU kernel family in use: 'reference', 'numpy' or 'numba'."""
    return _kernels


def set_kernels(name: str) -> None:
    """Select the CPU kernels: 'reference' (the plain ops, unfused, no buffer reuse: the
    path that reads like docs/backprop.md), 'numpy' (vectorized NumPy, fused groups) or
    'numba' (the fast kernels)."""
    global _kernels
    _kernels = check_choice(name, _KERNEL_CHOICES, "set_kernels")


@contextlib.contextmanager
def use_kernels(name: str):
    """Context manager form of :func:`set_kernels`."""
    previous = get_kernels()
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
        if type(a).__module__.startswith("cupy"):
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
