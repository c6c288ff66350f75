"""How the Numba kernels are compiled: ``kernel`` is ``numba.njit(parallel=True, cache=True)``
with LLVM's SLP vectorizer on while the kernel compiles.

Numba's loop vectorizer turns a loop into SIMD code; the SLP ("superword-level
parallelism") vectorizer packs independent scalar operations of straight-line code into
SIMD instructions.  The Winograd transforms are such code: each tile's 4 × 4 sums and
differences, per channel, in loops that LLVM unrolls, or whose 16 output streams are too
many for the loop vectorizer's alias checks.  Numba leaves SLP off by default
(``NUMBA_SLP_VECTORIZE=0``, read by each compilation), so it is switched on around each of
these kernels' compilations only, and nobody else's code compiled in the same process is
affected.  (Measured, one thread, the conv layer case: 70.5 → 62.4 ms.)

The parallel loops' bodies are compiled within the kernel's compilation, and the
``inline="always"`` helpers are inlined into it: both are covered.  Compiled kernels are
cached on disk (``cache=True``); the cache is keyed on the source file, so a kernel is
compiled again, with SLP, whenever its module changes.
"""
from __future__ import annotations

import threading

import numba
from numba import njit

_COMPILING = threading.RLock()      # numba.config is global: one compilation sets it at a time


def kernel(**options):
    """``njit(parallel=True, cache=True, **options)`` whose compilations run with the SLP
    vectorizer on."""
    def decorate(function):
        dispatcher = njit(parallel=True, cache=True, **options)(function)
        compile_plainly = dispatcher.compile

        def compile_vectorized(signature):
            with _COMPILING:
                before, numba.config.SLP_VECTORIZE = numba.config.SLP_VECTORIZE, 1
                try:
                    return compile_plainly(signature)
                finally:
                    numba.config.SLP_VECTORIZE = before
        dispatcher.compile = compile_vectorized
        return dispatcher
    return decorate
