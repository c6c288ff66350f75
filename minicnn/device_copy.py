"""Host → GPU batch copies through pinned (page-locked) staging buffers, asynchronously.

A training batch reaches the GPU in two moves::

    gather   staging[k] ← x[rows]       on the host, straight into page-locked memory
    copy     device     ← staging[k]    by the GPU's copy engine, queued on the current stream

The copy engine reads page-locked memory directly, so the copy is only *queued*: the host
returns at once and draws the next batch while the GPU still runs the step before.  (From
ordinary, pageable memory the driver would first copy through a page-locked bounce buffer
of its own, and the host would wait for that.)

Two invariants make this safe without a host synchronization in the training step:

* the copy is queued on the same stream as the step that reads the batch, so that step
  starts only after the copy has landed (stream order), and the copy starts only after the
  step before it let go of the memory that the pool hands out again (stream order too);
  a copy on a stream of its own would overlap more, but would need an event for each
  device buffer the pool recycles;
* a staging buffer is written again only once the copy that last read it has finished:
  the event recorded after that copy is waited for first.  With ``SLOTS`` buffers taken
  in turn that copy is ``SLOTS`` copies old, long finished in a training loop (each step
  reads its loss back to the host), so the wait returns at once.
"""
from __future__ import annotations

import numpy as np

from . import backend

SLOTS = 4     # staging buffers taken in turn: the x and y batches of two steps in flight


class PinnedStaging:
    """Page-locked host buffers, reused in turn, that batches pass through on their way
    to the GPU.  ``cupy`` is the array module holding the device (CuPy; the tests give a
    stand-in)."""

    def __init__(self, cupy=None, slots=SLOTS):
        self._cupy = cupy
        self.buffers = [None] * slots       # page-locked memory of each slot (grown on demand)
        self.copied = [None] * slots        # the event recorded after each slot's last copy
        self.turn = 0

    @property
    def cupy(self):
        if self._cupy is None:
            self._cupy = backend.require_gpu()
        return self._cupy

    def to_device(self, array, rows=None):
        """A new device array holding ``array`` (or ``array[rows]``, gathered along the first
        axis straight into the staging buffer, when ``rows`` is given)."""
        array = np.asarray(array)
        if isinstance(rows, slice):         # a run of rows: a view, copied as a whole
            array, rows = array[rows], None
        shape = array.shape if rows is None else (len(rows), *array.shape[1:])
        slot = self.turn
        self.turn = (self.turn + 1) % len(self.buffers)
        host = self._staging(slot, shape, array.dtype)
        if rows is None:
            np.copyto(host, array)
        else:
            # mode="clip": take writes straight into `out` (with "raise" NumPy buffers it);
            # the rows come from a permutation or a slice, so no index is clipped
            np.take(array, rows, axis=0, out=host, mode="clip")
        stream = self.cupy.cuda.get_current_stream()
        device = self.cupy.empty(shape, dtype=array.dtype)
        device.set(host, stream=stream)     # queued; returns before the copy is done
        self.copied[slot] = stream.record()
        return device

    def _staging(self, slot, shape, dtype):
        """Slot ``slot``'s buffer viewed as ``(shape, dtype)``, once its last copy is done."""
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()
        count = int(np.prod(shape))
        nbytes = max(count * np.dtype(dtype).itemsize, 1)
        if self.buffers[slot] is None or self.buffers[slot].size() < nbytes:
            self.buffers[slot] = self.cupy.cuda.alloc_pinned_memory(nbytes)
        return np.frombuffer(self.buffers[slot], dtype, count).reshape(shape)


_staging = None


def to_gpu(array, rows=None):
    """``array`` (or ``array[rows]``) copied to the GPU through this process's staging
    buffers (see the module docstring); a CuPy array is returned as it is."""
    global _staging
    if backend.is_gpu_array(array):         # already there: only the gather, on the device
        if rows is None or isinstance(rows, slice):
            return array if rows is None else array[rows]
        return array[backend.get_array_module(array).asarray(rows)]
    if _staging is None:
        _staging = PinnedStaging()
    return _staging.to_device(array, rows)
