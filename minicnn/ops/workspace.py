"""Scratch buffers that live across training steps.

Allocating a large array is slow on machines whose allocator hands big blocks back
to the OS on every ``free``; a training loop would pay that for every im2col matrix
of every layer at every step.  A ``Workspace`` hands out one buffer per name and
re-allocates only when the requested shape or dtype changes, so in steady state a
step allocates none of its column matrices.  Buffers never escape the op that owns
them (outputs are always fresh arrays), so reuse cannot corrupt a caller's data.
"""
from __future__ import annotations

import numpy as np

from .. import backend


class Workspace:
    def __init__(self):
        self._buffers = {}

    def get(self, name: str, shape: tuple, dtype, like=None):
        """An uninitialized buffer of this shape and dtype on ``like``'s device."""
        xp = backend.get_array_module(like) if like is not None else np
        buf = self._buffers.get(name)
        if (buf is None or buf.shape != tuple(shape) or buf.dtype != np.dtype(dtype)
                or backend.get_array_module(buf) is not xp):
            buf = self._buffers[name] = xp.empty(shape, dtype=dtype)
        return buf

    @property
    def nbytes(self) -> int:
        """Bytes held right now."""
        return sum(b.nbytes for b in self._buffers.values())

    def clear(self) -> None:
        self._buffers.clear()
