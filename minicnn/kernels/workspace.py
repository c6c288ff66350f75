"""Buffers that live across training steps, lent out and taken back by the executor.

Allocating a large array is slow on machines whose allocator hands big blocks back
to the OS on every ``free`` (the pages must be faulted in again on the next step).
A ``Workspace`` keeps one buffer per name and re-allocates only when the requested
shape, dtype or device changes.  Two kinds of buffer:

* ``get``: scratch that never leaves the op that asked for it (an im2col matrix);
* ``reusable``: a result that does leave it (a layer's output, an input gradient).  It is
  *lent*: until it is given back, a new request for the name gets a new buffer, so a
  result is never overwritten while someone may read it.

Who gives buffers back is the executor (``Model.run_forward``), which knows from the
graph when a buffer is free: once its tensor's last reader has run.  The readers of a
pass's tensors include the backward sweep that may follow it (the layers' caches hold
their inputs), so a pass's buffers are given back when the next pass begins and every
layer drops its cache (``reclaim``) — except the arrays handed to the caller (a model's
outputs, ``layer_outputs``, the gradient ``backward`` returns), which the workspace lets
go of for good (``hand_over``).  A layer called by itself, outside a model, has no
executor: each of its results stays lent, and its next call writes into new buffers.
"""
from __future__ import annotations

import numpy as np

from .. import backend


CACHE_LINE = 64     # bytes: a buffer starts on a cache line, so that the kernels' full-width
                    # vector loads and stores of a row never straddle two lines


def aligned_empty(shape, dtype):
    """An uninitialized NumPy array whose data starts on a cache line (NumPy's own start
    16 bytes in)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + CACHE_LINE, np.uint8)
    start = -raw.ctypes.data % CACHE_LINE
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def scratch(workspace, name, shape, dtype):
    """``workspace``'s scratch buffer ``name`` (``Workspace.get``), or a new aligned array
    where there is no workspace (a kernel called by itself)."""
    return workspace.get(name, shape, dtype) if workspace is not None else aligned_empty(shape, dtype)


def owner(array):
    """The array that owns ``array``'s memory (``array`` itself, or the base of a view)."""
    while array.base is not None:
        array = array.base
    return array


class Workspace:
    def __init__(self):
        self._buffers = {}
        self._lent = set()          # names whose buffer is out, not given back yet

    def get(self, name: str, shape: tuple, dtype, like=None):
        """An uninitialized scratch buffer of this shape and dtype on ``like``'s device."""
        xp = backend.get_array_module(like)
        buf = self._buffers.get(name)
        if (buf is None or buf.shape != tuple(shape) or buf.dtype != dtype
                or backend.get_array_module(buf) is not xp):
            buf = self._buffers[name] = aligned_empty(shape, dtype) if xp is np else xp.empty(shape, dtype=dtype)
        return buf

    def reusable(self, name: str, shape: tuple, dtype, like=None):
        """An uninitialized buffer for a result that leaves the op, lent until ``reclaim``:
        last time's if it was given back, else a new one."""
        if backend.get_kernels() == "reference":      # the reference path reuses nothing
            xp = backend.get_array_module(like) if like is not None else np
            return xp.empty(shape, dtype=dtype)
        if name in self._lent:
            self._buffers.pop(name, None)     # its reader keeps it; this name gets a new one
        self._lent.add(name)
        return self.get(name, shape, dtype, like)

    def reclaim(self) -> None:
        """Every lent buffer is free again (the executor: nothing reads them any more)."""
        self._lent.clear()

    def hand_over(self, owners) -> None:
        """Let go of the buffers in ``owners`` (ids of arrays, ``owner``'s): the caller keeps
        them, and this workspace never writes them again."""
        for name in [name for name, buf in self._buffers.items() if id(owner(buf)) in owners]:
            del self._buffers[name]
            self._lent.discard(name)

    @property
    def nbytes(self) -> int:
        """Bytes held right now."""
        return sum(b.nbytes for b in self._buffers.values())

    def clear(self) -> None:
        self._buffers.clear()
        self._lent.clear()

    def release_larger_than(self, nbytes: int) -> None:
        """Let go of every buffer larger than ``nbytes`` (the memory returns once no caller
        holds it either); the smaller ones stay for the next call."""
        for name in [name for name, buf in self._buffers.items() if buf.nbytes > nbytes]:
            del self._buffers[name]
            self._lent.discard(name)
