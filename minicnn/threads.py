"""How the two thread pools share the cores: OpenBLAS's (the GEMMs) and Numba's OpenMP
pool (the kernels).

By default each pool's idle threads spin for a while after their work (OpenBLAS's for
2²⁸ cycles, OpenMP's for about 3 ms) and so starve the other pool's next kernel
(docs/performance.md).  Sleeping at once costs too: a training step launches a parallel
kernel every few tens of microseconds, and each launch then first wakes the sleeping thread
(a futex wake, slow on a virtual machine).  :func:`share_cores` asks OpenBLAS's threads to
sleep promptly (``OPENBLAS_THREAD_TIMEOUT=4``) and OpenMP's to spin briefly, then sleep
(``OMP_WAIT_POLICY=PASSIVE`` with ``GOMP_SPINCOUNT=30000``: libgomp reads the spin count
over the policy, about 0.3 ms at its rough 100 spins a microsecond), long enough to span the
gap between one kernel and the next of a step, short enough that a GEMM after a kernel loses
at most that much of a core.  A variable the user set is kept; a user's own
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` keeps both OpenMP variables theirs.
``import minicnn`` calls it unless ``MINICNN_SHARE_CORES=0``.

The pools read these variables when they start: Numba's on its first parallel kernel
(after ``import minicnn``), OpenBLAS's when NumPy loads it.  When NumPy was imported
first — the usual ``import numpy as np`` — OpenBLAS's threads are already spinning with
the default timeout, so they are restarted through OpenBLAS's own fork handlers
(``openblas_read_env``, ``blas_thread_shutdown_``, ``blas_thread_init``: the three calls
it makes in a forked child).  This module must not import NumPy.
"""
from __future__ import annotations

import ctypes
import os
import sys

PROMPT_SLEEP = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "30000"}
OPENMP_WAIT = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")      # one choice: set together or not at all
_RESTART_CALLS = ("openblas_read_env", "blas_thread_shutdown_", "blas_thread_init")

restarted_openblas: list[str] = []      # the OpenBLAS libraries whose threads were restarted
set_by_minicnn: dict[str, str] = {}     # the variables share_cores set (the user had not): for a
                                        # benchmark's peers, which run without them


def share_cores() -> None:
    """Set the prompt-sleep variables (where unset; OpenMP's only where the user set neither
    of ``OPENMP_WAIT``) and make them take effect in any OpenBLAS that is already loaded.
    Called once, by ``minicnn/__init__.py``."""
    users_openmp_wait = any(name in os.environ for name in OPENMP_WAIT)
    for name, value in PROMPT_SLEEP.items():
        if name not in os.environ and not (name in OPENMP_WAIT and users_openmp_wait):
            os.environ[name] = set_by_minicnn[name] = value
    if "numpy" in sys.modules:
        restarted_openblas.extend(restart_openblas_threads())


def loaded_openblas_libraries() -> list[str]:
    """Paths of the OpenBLAS shared libraries mapped into this process (Linux; else [])."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1]}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/") and ".so" in p)


def restart_openblas_threads() -> list[str]:
    """Restart the worker threads of every loaded OpenBLAS that exports the fork-handler
    calls, so that they re-read ``OPENBLAS_THREAD_TIMEOUT``; returns the libraries done."""
    done = []
    for path in loaded_openblas_libraries():
        try:
            lib = ctypes.CDLL(path)          # already loaded: the same handle, not a second copy
            calls = [getattr(lib, name) for name in _RESTART_CALLS]
        except (OSError, AttributeError):
            continue
        for call in calls:
            call()
        done.append(path)
    return done


_THREAD_COUNT_CALLS = [(prefix + "openblas_set_num_threads" + suffix, prefix + "openblas_get_num_threads" + suffix)
                       for prefix in ("", "scipy_") for suffix in ("", "64_")]


def set_openblas_threads(count: int) -> list[int]:
    """Run every loaded OpenBLAS's GEMMs on ``count`` threads; returns the counts they had
    (in ``loaded_openblas_libraries`` order; libraries without the calls are skipped).
    Used while a background compile holds a core: a GEMM split over two threads, one of them
    sharing its core with that process, waits at each step for the slower thread."""
    previous = []
    for path in loaded_openblas_libraries():
        lib = ctypes.CDLL(path)
        calls = next(((getattr(lib, set_name), getattr(lib, get_name)) for set_name, get_name in _THREAD_COUNT_CALLS
                      if hasattr(lib, set_name) and hasattr(lib, get_name)), None)
        if calls is not None:
            previous.append(calls[1]())
            calls[0](count)
    return previous


def thread_settings() -> dict:
    """The thread-pool settings in force, for benchmark reports."""
    import numba
    return {"numba_threads": numba.get_num_threads(),
            "openblas_threads_restarted": [os.path.basename(p) for p in restarted_openblas],
            **{name: os.environ.get(name) for name in (*PROMPT_SLEEP, "OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}}
