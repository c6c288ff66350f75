"""The checks of numeric arguments that optimizers, training and callbacks share.

Each check returns the value as a plain Python ``float`` or ``int``, or raises a
``ValueError`` naming who asked (``who``), the argument and the value received.  Any real
number type is accepted where Python's is, NumPy scalars included (``np.float32(0.01)``,
``np.int64(32)``); ``bool`` is not a number here, although Python counts it as an ``int``.
"""
from __future__ import annotations

import math
import numbers


def _received(who: str, name: str, expected: str, value) -> ValueError:
    return ValueError(f"{who}: {name} must be {expected}, received {value!r}")


def real(value, who: str, name: str) -> float:
    """A finite real number, as a float."""
    number = _finite(value)
    if number is None:
        raise _received(who, name, "a finite number", value)
    return number


def positive(value, who: str, name: str) -> float:
    """A finite number > 0 (a learning rate)."""
    number = _finite(value)
    if number is None or number <= 0:
        raise _received(who, name, "a finite number > 0", value)
    return number


def non_negative(value, who: str, name: str) -> float:
    """A finite number >= 0 (an epsilon, a min_delta)."""
    number = _finite(value)
    if number is None or number < 0:
        raise _received(who, name, "a finite number >= 0", value)
    return number


def fraction(value, who: str, name: str, closed: bool = False) -> float:
    """A number in [0, 1), or in [0, 1] when ``closed``: a decay rate (β₁, β₂, ρ) must stay
    below 1, or its running average never forgets its zero start; a momentum may be 1."""
    number = _finite(value)
    if number is None or number < 0 or number > 1 or (number == 1 and not closed):
        raise _received(who, name, f"a number in [0, 1{']' if closed else ')'}", value)
    return number


def count(value, who: str, name: str, minimum: int = 0) -> int:
    """An integer >= ``minimum`` (a number of epochs, a batch size, a patience)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise _received(who, name, f"an int >= {minimum}", value)
    return int(value)


def batch_size(value, who: str, default: int = 32) -> int:
    """Keras's ``batch_size``: a positive int, or None for ``default``."""
    return default if value is None else count(value, who, "batch_size", minimum=1)


def _finite(value) -> float | None:
    """``value`` as a float when it is a finite real number, else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
