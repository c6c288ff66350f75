"""Buffers that live across training steps.

Allocating a large array is slow on machines whose allocator hands big blocks back
to the OS on every ``free`` (the pages must be faulted in again on the next step).
A ``Workspace`` keeps one buffer per name and re-allocates only when the requested
shape, dtype or device changes.  Two kinds of buffer:

* ``get``: scratch that never leaves the op that asked for it (an im2col matrix);
* ``reusable``: a result that does leave it (a layer's output, an input gradient).
  The buffer handed out last time is reused only when nothing outside the workspace
  still refers to it — no caller, cache or view holds it (CPython's reference count
  says so) — else a new one replaces it.  So a caller who kept an earlier result
  never sees it overwritten, and a training loop that lets go of each step's arrays
  (``Layer.release``) allocates none of them again in steady state.
"""
from __future__ import annotations

import sys

import numpy as np

from .. import backend

_WORKSPACE_REFS = 3     # sys.getrefcount of a buffer only the workspace holds (dict, local, argument)


class Workspace:
    def __init__(self):
        self._buffers = {}

    def get(self, name: str, shape: tuple, dtype, like=None):
        """An uninitialized scratch buffer of this shape and dtype on ``like``'s device."""
        xp = backend.get_array_module(like) if like is not None else np
        buf = self._buffers.get(name)
        if (buf is None or buf.shape != tuple(shape) or buf.dtype != np.dtype(dtype)
                or backend.get_array_module(buf) is not xp):
            buf = self._buffers[name] = xp.empty(shape, dtype=dtype)
        return buf

    def reusable(self, name: str, shape: tuple, dtype, like=None):
        """An uninitialized buffer for a result that leaves the op: last time's, if nothing
        outside this workspace holds it (or a view of it) any more, else a new one."""
        if backend.get_kernels() == "reference":      # the reference path reuses nothing
            xp = backend.get_array_module(like) if like is not None else np
            return xp.empty(shape, dtype=dtype)
        held = self._buffers.get(name)
        if held is not None and sys.getrefcount(held) > _WORKSPACE_REFS:
            del self._buffers[name]          # its holder keeps it; this name gets a new one
        del held
        return self.get(name, shape, dtype, like)

    @property
    def nbytes(self) -> int:
        """Bytes held right now."""
        return sum(b.nbytes for b in self._buffers.values())

    def clear(self) -> None:
        self._buffers.clear()

    def release_larger_than(self, nbytes: int) -> None:
        """Let go of every buffer larger than ``nbytes`` (the memory returns once no caller
        holds it either); the smaller ones stay for the next call."""
        for name in [name for name, buf in self._buffers.items() if buf.nbytes > nbytes]:
            del self._buffers[name]
