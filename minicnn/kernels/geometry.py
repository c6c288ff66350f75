"""Output sizes and padding of sliding-window ops (convolution and pooling).

For one spatial axis of length ``n``, window ``k`` and stride ``s``:

* ``'valid'``: no padding, ``out = floor((n - k) / s) + 1`` (needs ``k <= n``);
* ``'same'`` (TensorFlow's rule, exactly): ``out = ceil(n / s)``, total padding
  ``p = max((out - 1)·s + k - n, 0)``, split ``p // 2`` before and the rest after —
  so an odd total puts the extra pixel at the bottom / right.
"""
from __future__ import annotations

PADDINGS = ("valid", "same")


def check_padding(padding, who: str) -> str:
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"{who}: padding must be 'valid' or 'same', received padding={padding!r}")
    return padding.lower()


def normalize_tuple(value, name: str, who: str) -> tuple[int, int]:
    """An int or a pair of positive ints -> a pair (Keras accepts both)."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{who}: {name} must be an int or a pair of ints, received {name}={value!r}")
    if min(pair) <= 0:
        raise ValueError(f"{who}: {name} must be positive, received {name}={value!r}")
    return pair


def axis_geometry(n: int, k: int, s: int, padding: str, who: str = "op") -> tuple[int, int, int]:
    """(out, pad_before, pad_after) for one spatial axis."""
    if padding == "same":
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        return out, total // 2, total - total // 2
    if k > n:
        raise ValueError(f"{who}: window {k} is larger than the 'valid' input size {n}; "
                         f"expected an input of at least {k} along that axis, received {n}")
    return (n - k) // s + 1, 0, 0


def window_geometry(h: int, w: int, kernel, strides, padding: str, who: str = "op"):
    """(oh, ow, (top, bottom, left, right)) for a 2-D window op."""
    oh, top, bottom = axis_geometry(h, kernel[0], strides[0], padding, who)
    ow, left, right = axis_geometry(w, kernel[1], strides[1], padding, who)
    return oh, ow, (top, bottom, left, right)
