"""Forward passes that no backward follows: ``predict``, ``predict_on_batch``, ``evaluate``.

Inside ``forward_only()`` nothing is kept for a backward: the executor
(``Model.run_forward``) lets go of each step's caches as soon as the step has run, so that
an array is freed once its last reader is done with it, and a kernel that writes something
only a backward reads skips it (the fused conv + ReLU + max-pool's arg-max switches,
``kernels/conv_relu_pool.py``).  A backward after such a forward has nothing to run from,
and the layer it reaches first says so.

The arrays such a forward returns are the model's own buffers, lent to the caller until
the model's next forward, which writes into them (``plan.hand_over`` is not called): the
caller copies what it keeps (``predict`` copies each batch into its result, ``evaluate``
reduces it to the loss and metrics), so that in steady state a prediction allocates none
of its large arrays, its outputs included.

``training=False`` is not this signal: the visualizations run a forward with it and then a
backward (Grad-CAM, saliency maps).
"""
from __future__ import annotations

import contextlib

_active = False


@contextlib.contextmanager
def forward_only():
    """The forwards run inside keep nothing for a backward (see the module docstring)."""
    global _active
    previous, _active = _active, True
    try:
        yield
    finally:
        _active = previous


def no_backward_follows() -> bool:
    """True inside ``forward_only()``."""
    return _active
