"""The one place that picks which body runs an op::

    a CuPy array                         → its CUDA kernel   (``cuda_kernels``)
    a host array, ``set_kernels('numba')`` → its Numba kernel  (the ``numba_*`` modules)
    otherwise                            → the NumPy expressions (the readable path)

An op names its Numba and CUDA bodies as ``'module.function'`` within ``minicnn.kernels``,
imported on first use: Numba compiles, and CuPy loads, only when a body is asked for.
An op without a CUDA body runs its NumPy expressions on CuPy arrays too (through the
array module, ``backend.get_array_module``).
"""
from __future__ import annotations

import functools
import importlib

from .. import backend


def family(x) -> str:
    """Which kernels run ops on x: 'cuda', 'numba' or 'numpy'."""
    if backend.is_gpu_array(x):
        return "cuda"
    return "numba" if backend.get_kernels() == "numba" else "numpy"


def pick(x, numpy, numba=None, cuda=None):
    """The body of an op for x: ``cuda`` for a CuPy array, ``numba`` on the Numba kernels,
    else ``numpy`` (a function); ``numba`` and ``cuda`` are 'module.function' names, or
    functions, or None (then ``numpy`` runs)."""
    name = {"cuda": cuda, "numba": numba}.get(family(x))
    if name is None:
        return numpy
    return name if callable(name) else _body(name)


@functools.cache
def _body(name):
    """The function ``name`` ('module.function' in this package), imported once."""
    module, function = name.rsplit(".", 1)
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)
