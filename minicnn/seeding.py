"""One seeded random generator for initialization, shuffling and dropout.

``set_seed(n)`` makes a whole run reproducible: layers draw their initial weights,
``fit`` its shuffling order and dropout layers (without their own ``seed=``) their masks
from generators derived from this one, in a fixed order.
"""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def set_seed(seed: int) -> None:
    """Seed minicnn's global generator (and NumPy's legacy one, for user code)."""
    global _generator
    _generator = np.random.default_rng(seed)
    np.random.seed(seed % 2**32)


def global_generator() -> np.random.Generator:
    return _generator


def new_generator(seed=None) -> np.random.Generator:
    """A generator from ``seed``, or a child of the global generator when None."""
    if seed is None:
        seed = int(_generator.integers(2**63))
    return np.random.default_rng(seed)
