"""How the Numba kernels are compiled, where the compiled code is kept, and what the
console says meanwhile.

``kernel`` is ``numba.njit(parallel=True)`` with three additions:

* **LLVM's SLP vectorizer on while the kernel compiles.**  Numba's loop vectorizer turns
  a loop into SIMD code; the SLP ("superword-level parallelism") vectorizer packs
  independent scalar operations of straight-line code into SIMD instructions.  The
  Winograd transforms are such code: each tile's 4 × 4 sums and differences, per channel,
  in loops that LLVM unrolls, or whose 16 output streams are too many for the loop
  vectorizer's alias checks.  Numba leaves SLP off by default (``NUMBA_SLP_VECTORIZE=0``,
  read by each compilation), so it is switched on around these kernels' compilations only,
  and nobody else's code compiled in the same process is affected.  (Measured, one thread,
  the conv layer case: 70.5 → 62.4 ms.)  The parallel loops' bodies are compiled within
  the kernel's compilation, and the ``inline="always"`` helpers are inlined into it: both
  are covered.

* **A disk cache in the user's cache folder**, never inside the installed package: pip
  does not know files written there, so they would outlive ``pip uninstall`` and shadow a
  later editable install.  The folder is, first match wins::

      $NUMBA_CACHE_DIR                      (Numba's own setting, for every Numba user)
      $MINICNN_CACHE_DIR/numba
      $XDG_CACHE_HOME/minicnn/numba
      ~/.cache/minicnn/numba

  Inside it Numba keeps one sub-folder per source folder (so an installed copy and a
  checkout never share entries) and checks each entry against Numba's stamp of the kernel's
  own file and the time stamps and sizes of every module of ``minicnn.kernels`` (a kernel
  inlines helpers from other modules), so an edited kernel, or an edited helper, compiles
  again.  Where no folder is writable, the kernels
  compile in every process instead.

* **Progress on the console**: a kernel that is not in the cache takes seconds to tens of
  seconds to compile, so each compilation is announced on stderr ("compiling CPU kernels
  (first run only) …") with its name, its specialization and its time.

**512-bit vectors on every AVX-512 CPU.**  The matrix products' register tiles are sized for
the CPU's vector registers (``register_tiles.py``: 32 float32 columns a row on AVX-512).  But
LLVM's tuning for Intel's AVX-512 CPUs (not AMD's Zen 4 or 5) prefers 256-bit vectors, so
there every vectorized loop, the tiles' too, would compile to ymm registers: half the width
the tiles were sized for.  So where the features Numba compiles with include AVX-512F and say
nothing of ``prefer-256-bit``, this module adds ``-prefer-256-bit`` to them when it is
imported (by minicnn's first Numba kernel, or ``minicnn warmup``).  Numba reads its features
once, when its code generator is made, at the first Numba function defined in the process:
where one was defined before, nothing changes and minicnn warns.  The code generator is one
for the process, so the setting holds for every Numba function, minicnn's or not.  A user who
wants 256-bit vectors sets ``NUMBA_CPU_FEATURES`` with ``+prefer-256-bit``; minicnn then runs
its AVX2 tiles.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import warnings

import numba
from numba import njit
from numba.core import caching, codegen, event, registry

_COMPILING = threading.RLock()      # numba.config is global: one compilation sets it at a time


def with_wide_vectors(features: str) -> str:
    """``features`` ('+avx2,+fma,…') with ``-prefer-256-bit`` added when they include
    AVX-512F and do not set ``prefer-256-bit`` either way (see the module docstring)."""
    listed = features.split(",")
    if "+avx512f" not in listed or {"+prefer-256-bit", "-prefer-256-bit"} & set(listed):
        return features
    return features + ",-prefer-256-bit"


def cpu_features() -> str:
    """The CPU features Numba's code generator compiles for, as '+avx2,+fma,…' (making the
    code generator, if no Numba function has yet)."""
    return registry.cpu_target.target_context.codegen().magic_tuple()[2]


def _prefer_wide_vectors():
    """Numba's CPU features made ``with_wide_vectors``', or a warning where its code generator
    was made before with other features."""
    requested = numba.config.CPU_FEATURES or codegen.get_host_cpu_features()
    wide = with_wide_vectors(requested)
    if wide == requested:
        return
    before, numba.config.CPU_FEATURES = numba.config.CPU_FEATURES, wide
    if cpu_features() != wide:
        numba.config.CPU_FEATURES = before
        warnings.warn("minicnn: a Numba function was defined before minicnn's kernels were loaded, so Numba "
                      "compiles without '-prefer-256-bit': on Intel's AVX-512 CPUs minicnn's kernels then use "
                      "256-bit vectors, half their width (load them first: `import minicnn.kernels.jit`, or set "
                      "NUMBA_CPU_FEATURES)", RuntimeWarning, stacklevel=2)


_prefer_wide_vectors()


def cache_dir() -> str:
    """The folder minicnn's compiled kernels are kept in (see the module docstring)."""
    if numba.config.CACHE_DIR:
        return numba.config.CACHE_DIR
    if os.environ.get("MINICNN_CACHE_DIR"):
        return os.path.join(os.environ["MINICNN_CACHE_DIR"], "numba")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minicnn", "numba")


class _UserCacheLocator(caching.UserProvidedCacheLocator):
    """Numba's locator for ``NUMBA_CACHE_DIR``, pointed at ``cache_dir()``; None (no
    locator) where that folder cannot be written."""

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        self._cache_path = os.path.join(cache_dir(), self.get_suitable_cache_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.path.exists(py_file):
            return None
        locator = cls(py_func, py_file)
        try:
            locator.ensure_cache_path()
        except OSError:
            return None
        return locator

    def get_source_stamp(self):
        """Numba's stamp of the kernel's own file, and (name, mtime, size) of every module
        of ``minicnn.kernels``: a kernel inlines functions of other modules (the register
        tiles' products, Winograd's transforms), and a change to one of them must compile it
        afresh, not load the old code."""
        folder = os.path.dirname(os.path.abspath(__file__))
        stats = ((name, os.stat(os.path.join(folder, name))) for name in sorted(os.listdir(folder)) if name.endswith(".py"))
        return super().get_source_stamp(), tuple((name, stat.st_mtime, stat.st_size) for name, stat in stats)


class _KernelCacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = [_UserCacheLocator]


class _KernelCache(caching.FunctionCache):
    _impl_class = _KernelCacheImpl


def _attach_cache(dispatcher) -> bool:
    """Cache ``dispatcher``'s compilations in ``cache_dir()`` (what ``cache=True`` does
    with Numba's own locators, which would write next to the source file); False where no
    folder is writable (it then compiles in every process)."""
    try:
        dispatcher._cache = _KernelCache(dispatcher.py_func)
    except RuntimeError:
        return False
    return True


class _Announcer(event.Listener):
    """Prints each compilation of a minicnn kernel on stderr, the first with a header."""

    def __init__(self):
        self.kernels = set()        # ids of minicnn's dispatchers (Numba's own are not announced)
        self.uncached = set()       # ... of those with no disk cache
        self.count = 0
        self.started = {}

    def on_start(self, ev):
        dispatcher = ev.data["dispatcher"]
        if id(dispatcher) not in self.kernels:
            return
        if self.count == 0:
            where = (f"first run only; kept in {cache_dir()}" if id(dispatcher) not in self.uncached else
                     f"in every run: {cache_dir()} cannot be written")
            print(f"compiling CPU kernels ({where}) …", file=sys.stderr, flush=True)
        self.count += 1
        self.started[id(dispatcher)] = time.perf_counter()
        print(f"  [{self.count}] {describe(dispatcher, ev.data['args'])} …", end="", file=sys.stderr, flush=True)

    def on_end(self, ev):
        started = self.started.pop(id(ev.data["dispatcher"]), None)
        if started is not None:
            print(f" {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def describe(dispatcher, args) -> str:
    """``winograd_forward float32 ROWS=4 PANEL=16``: a kernel's name, the element types of
    its float arrays, and the integers its function closes over (a register tile's shape)."""
    function = dispatcher.py_func
    dtypes = sorted({str(a.dtype) for a in args if isinstance(a, numba.types.Array)
                     and isinstance(a.dtype, numba.types.Float)})
    constants = [f"{name}={cell.cell_contents}" for name, cell in zip(function.__code__.co_freevars,
                                                                     function.__closure__ or ())
                 if isinstance(cell.cell_contents, int)]
    return " ".join([function.__name__, *dtypes, *constants])


_ANNOUNCER = _Announcer()
event.register("numba:compile", _ANNOUNCER)


def kernel(**options):
    """``njit(parallel=True, **options)`` whose compilations run with the SLP vectorizer
    on, are cached in ``cache_dir()`` and are announced on stderr."""
    def decorate(function):
        dispatcher = njit(parallel=True, **options)(function)
        _ANNOUNCER.kernels.add(id(dispatcher))
        if not _attach_cache(dispatcher):
            _ANNOUNCER.uncached.add(id(dispatcher))
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
