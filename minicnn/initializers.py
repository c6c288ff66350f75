"""Weight initializers, Keras names and formulas.

For a kernel of shape ``(..., fan_in_axis, fan_out_axis)`` with receptive field
``r = prod(shape[:-2])``: ``fan_in = r · shape[-2]``, ``fan_out = r · shape[-1]``.

* ``glorot_uniform``: U(−l, l), ``l = sqrt(6 / (fan_in + fan_out))``  (Keras default)
* ``he_uniform``:     U(−l, l), ``l = sqrt(6 / fan_in)``
* ``he_normal``:      N(0, 2 / fan_in) truncated at 2 sd  (as Keras)
* ``random_normal``:  N(0, 0.05²);  ``random_uniform``: U(−0.05, 0.05)
* ``zeros``, ``ones``
"""
from __future__ import annotations

import numpy as np


def compute_fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return receptive * shape[-2], receptive * shape[-1]


def _truncated_normal(rng, shape, std):
    out = rng.normal(0.0, std, size=shape)
    bad = np.abs(out) > 2 * std
    while bad.any():                       # redraw outside two standard deviations
        out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out


def _glorot_uniform(shape, rng):
    fan_in, fan_out = compute_fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def _he_uniform(shape, rng):
    limit = np.sqrt(6.0 / compute_fans(shape)[0])
    return rng.uniform(-limit, limit, size=shape)


def _he_normal(shape, rng):
    # Keras divides by .87962566 so the truncated distribution keeps the variance
    return _truncated_normal(rng, shape, np.sqrt(2.0 / compute_fans(shape)[0]) / 0.87962566103423978)


INITIALIZERS = {
    "glorot_uniform": _glorot_uniform,
    "he_uniform": _he_uniform,
    "he_normal": _he_normal,
    "random_normal": lambda shape, rng: rng.normal(0.0, 0.05, size=shape),
    "random_uniform": lambda shape, rng: rng.uniform(-0.05, 0.05, size=shape),
    "zeros": lambda shape, rng: np.zeros(shape),
    "ones": lambda shape, rng: np.ones(shape),
}


def get(initializer, who: str = "layer"):
    """A function ``(shape, rng) -> ndarray`` for a name or a callable."""
    if callable(initializer):
        return initializer
    if isinstance(initializer, str) and initializer in INITIALIZERS:
        return INITIALIZERS[initializer]
    raise ValueError(f"{who}: unknown initializer {initializer!r}; expected one of "
                     f"{sorted(INITIALIZERS)} or a callable (shape, rng) -> array")
