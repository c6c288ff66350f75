"""Ctrl-C held back while a block runs, so that it cannot land in the middle of it.

Python turns SIGINT into a ``KeyboardInterrupt`` raised in the main thread between two
bytecodes, so it can fall between two parameters' updates and leave an optimizer step
half applied.  ``interrupts_deferred`` installs, for the duration of the block, a handler
that only records the signal, then puts the previous handler back and, if a signal came,
raises it again, so that the previous handler (by default: a ``KeyboardInterrupt``) sees
it right after the block.  Signal handlers live in the main thread only; in any other
thread there is nothing to defer, and the block runs as it is.

The handlers are swapped through ``_signal``, the C module that ``signal`` wraps: the
wrapper converts each handler and signal number to and from enums, a cost that shows
on a small model's training step (this runs once per step).
"""
from __future__ import annotations

import _signal
import contextlib
import threading


@contextlib.contextmanager
def interrupts_deferred():
    """Run the block with SIGINT deferred to its end (see the module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = _signal.signal(_signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        _signal.signal(_signal.SIGINT, previous)
        if received:
            _signal.raise_signal(_signal.SIGINT)
