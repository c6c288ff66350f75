"""Accuracy metrics (Keras's), as per-sample values that the trainer averages.

* binary:       ``[ (p > 0.5) == y ]``, averaged over the last axis
* categorical:  ``[ argmax p == argmax y ]``
* sparse:       ``[ argmax p == y ]``

``'accuracy'`` / ``'acc'`` resolve to one of these from the loss, as Keras does; the
name the user gave is kept for the history keys (``acc`` / ``val_acc``).
"""
from __future__ import annotations

from .backend import get_array_module


def binary_accuracy(y_pred, y_true):
    if y_true.ndim == y_pred.ndim - 1:
        y_true = y_true[..., None]
    return ((y_pred > 0.5) == (y_true > 0.5)).mean(axis=-1)


def categorical_accuracy(y_pred, y_true):
    return (y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)).astype("float64")


def sparse_categorical_accuracy(y_pred, y_true):
    xp = get_array_module(y_pred)
    y_true = xp.asarray(y_true)
    if y_true.ndim == y_pred.ndim:
        y_true = y_true[..., 0]
    return (y_pred.argmax(axis=-1) == y_true).astype("float64")


_FUNCTIONS = {f.__name__: f for f in (binary_accuracy, categorical_accuracy, sparse_categorical_accuracy)}
_FOR_LOSS = {"binary_crossentropy": binary_accuracy, "categorical_crossentropy": categorical_accuracy,
             "sparse_categorical_crossentropy": sparse_categorical_accuracy}


def names(metrics) -> list:
    """The metric names of ``compile(metrics=...)`` in any of Keras's forms: one string,
    a list or tuple, or a dict {output name: metric(s)} (one model output)."""
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        return [metrics]
    if isinstance(metrics, dict):
        return [m for value in metrics.values() for m in names(value)]
    return [m for item in metrics for m in names(item)]


def get(name, loss_name):
    """(display name, per-sample function) for a metric name given the loss."""
    if callable(name) and getattr(name, "__module__", None) == __name__:
        name = name.__name__                                   # metrics=[mc.metrics.binary_accuracy]
    if name in ("accuracy", "acc"):
        return name, _FOR_LOSS[loss_name]
    if isinstance(name, str) and name in _FUNCTIONS:
        return name, _FUNCTIONS[name]
    raise ValueError(f"unknown metric {name!r}; expected 'accuracy', 'acc' or one of {sorted(_FUNCTIONS)}")
