"""``sample_weight`` and ``class_weight``, checked and made into one weight per sample and output.

Keras 3's definitions: a weight ``w_b`` multiplies sample b's loss, and the batch's loss
stays a mean over the batch size (``losses.Loss._weighted``)::

    L = (1/n) Σ_b w_b ℓ_b

``class_weight = {class: weight}`` is a ``sample_weight`` drawn from the labels: the class
of a one-hot (or probability) label is its argmax, that of an integer label (shape
``(n,)`` or ``(n, 1)``, a 0/1 label of a sigmoid output included) the label rounded;
classes not in the dict weigh 1.  As in Keras it is for one-output models only, and
cannot be given together with ``sample_weight``.  Keras ignores a key that is no class
of the model; minicnn refuses it, since such a key weighs nothing and is surely a typo.
Negative weights are accepted, as Keras accepts them.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import backend
from .graph import in_order


def checked(sample_weight, n, who, what="sample_weight"):
    """``sample_weight`` as a float64 host array of shape ``(n,)`` (``(n, 1)`` accepted)."""
    w = np.asarray(backend.to_numpy(sample_weight))
    if w.dtype.kind not in "iuf":
        raise ValueError(f"{who}: {what} must hold numbers, received dtype {w.dtype}")
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.ndim != 1 or len(w) != n:
        raise ValueError(f"{who}: {what} must have shape ({n},), one weight per sample, "
                         f"received shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError(f"{who}: {what} contains NaN or inf values")
    return w.astype(np.float64)


def per_output(sample_weight, output_names, n, who):
    """One weight array per output, or None: a single array weighs every output (Keras)."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, (list, tuple)) and len(output_names) == 1 and len(sample_weight) == 1 \
            and np.ndim(sample_weight[0]) >= 1:
        sample_weight = sample_weight[0]                       # [w] for the one output
    if isinstance(sample_weight, dict) or (isinstance(sample_weight, (list, tuple)) and len(output_names) > 1):
        arrays = in_order(sample_weight, output_names, who, "sample weights")
        return [None if a is None else checked(a, n, who, f"sample_weight of output {name!r}")
                for a, name in zip(arrays, output_names)]
    return [checked(sample_weight, n, who)] * len(output_names)


def class_indices(y):
    """Each label's class: argmax of a one-hot row, else the label rounded (Keras)."""
    y = np.asarray(backend.to_numpy(y))
    if y.ndim > 1:
        y = y.argmax(axis=-1) if y.shape[-1] != 1 else y[..., 0]
    return np.round(y).astype(np.int64).reshape(len(y))


def check_class_weight(class_weight, classes, who):
    """``class_weight`` must be a dict {class index in [0, classes): finite number}."""
    if not isinstance(class_weight, dict):
        raise ValueError(f"{who}: class_weight must be a dict {{class index: weight}}, "
                         f"received {type(class_weight).__name__}")
    for key, weight in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, numbers.Integral) or not 0 <= key < classes:
            raise ValueError(f"{who}: class_weight keys must be class indices in [0, {classes}), "
                             f"received key {key!r}")
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not np.isfinite(weight):
            raise ValueError(f"{who}: class_weight[{key!r}] must be a finite number, received {weight!r}")


def from_class_weight(y, class_weight, classes, who):
    """The sample weights of ``class_weight`` for the labels ``y`` (one output)."""
    check_class_weight(class_weight, classes, who)
    table = np.ones(classes, dtype=np.float64)
    for key, weight in class_weight.items():
        table[key] = weight
    return table[np.clip(class_indices(y), 0, classes - 1)]


def for_labels(y, sample_weight, class_weight, model, n, who):
    """The per-output weights of ``fit``/``train_on_batch`` from either argument (or None)."""
    if class_weight is None:
        return per_output(sample_weight, model.output_names, n, who)
    if sample_weight is not None:
        raise ValueError(f"{who}: class_weight and sample_weight cannot be given at the same time (Keras)")
    if len(model.outputs) > 1:
        raise ValueError(f"{who}: class_weight is only supported for models with a single output; "
                         f"model {model.name!r} has {len(model.outputs)} {model.output_names}: "
                         f"pass sample_weight, one array per output")
    return [from_class_weight(y, class_weight, max(int(model.output_shape[-1]), 2), who)]
