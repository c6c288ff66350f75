"""Losses, Keras 3's definitions: per-sample loss, then the mean over the batch.

``loss.forward(y_pred, y_true)`` returns the scalar ``L``; ``loss.backward()`` returns
``∂L/∂y_pred``.  With ``n`` samples and ``K`` classes/outputs, ``ε = 1e-7``:

* CategoricalCrossentropy, probabilities ``p``:  ``q = clip(p / Σp, ε, 1 − ε)``,
  ``L = −(1/n) Σ_b Σ_k y_bk log q_bk``.
* … from logits ``z`` (stable, no clipping):
  ``L = (1/n) Σ_b [logsumexp(z_b) Σ_k y_bk − Σ_k y_bk z_bk]``, ``∂L/∂z = (softmax(z)·Σy − y)/n``.
* SparseCategoricalCrossentropy: the same with ``y`` given as class indices (from
  probabilities, Keras clips first and then renormalizes: ``L = −log q_y + log Σ_k q_k``).
* BinaryCrossentropy, probabilities ``p``:  ``q = clip(p, ε, 1 − ε)``,
  ``L = −(1/(nK)) Σ [y log q + (1 − y) log(1 − q)]``.
* … from logits: ``L = (1/(nK)) Σ [max(z, 0) − z·y + log(1 + e^{−|z|})]``,
  ``∂L/∂z = (σ(z) − y)/(nK)``.

**Fusion** (Keras 3 does the same): when a model's output comes from a softmax /
sigmoid and the loss takes probabilities, the model computes the loss from the
logits instead (``forward_logits``), which is exact and stable for any logit —
``∂L/∂z = (p − y)/n`` needs no division by a probability that may underflow to 0.
"""
from __future__ import annotations

import numpy as np

from .activations import stable_sigmoid, stable_softmax
from .backend import get_array_module, is_gpu_array
from .kernels.dispatch import pick

EPSILON = 1e-7


def _logsumexp(z):
    xp = get_array_module(z)
    m = z.max(axis=-1, keepdims=True)
    return (m + xp.log(xp.exp(z - m).sum(axis=-1, keepdims=True)))[..., 0]


def _in_range(q):
    return (q >= EPSILON) & (q <= 1 - EPSILON)


def softmax_cross_entropy_from_logits(z, y):
    """(L, ∂L/∂z) of the categorical cross-entropy of softmax(z) against y (one-hot or
    any non-negative targets): one fused kernel on the GPU and on the Numba kernels."""
    if z.ndim == 2:
        return pick(z, _from_logits_expressions, numba="numba_loss.softmax_cross_entropy",
                    cuda="cuda_kernels.softmax_cross_entropy")(z, y)
    return _from_logits_expressions(z, y)


def _from_logits_expressions(z, y):
    n = z.shape[0]
    value = (_logsumexp(z) * y.sum(axis=-1) - (y * z).sum(axis=-1)).sum() / n
    return value, (stable_softmax(z) * y.sum(axis=-1, keepdims=True) - y) / n


class Loss:
    """Base class: subclasses supply ``_from_probs`` and ``_from_logits``,
    each returning ``(value, gradient)``."""

    name = "loss"
    fuses_with = None      # the output activation whose logits this loss can take

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)
        self._grad = None

    def forward(self, y_pred, y_true):
        y_true = self.check_labels(y_pred, y_true)
        compute = self._from_logits if self.from_logits else self._from_probs
        value, self._grad = compute(y_pred, y_true)
        return value

    def forward_logits(self, z, y_true):
        """The loss of ``activation(z)`` computed from the logits ``z``; then
        ``backward()`` returns ∂L/∂z."""
        y_true = self.check_labels(z, y_true)
        value, self._grad = self._from_logits(z, y_true)
        return value

    def backward(self):
        if self._grad is None:
            raise ValueError(f"{type(self).__name__}: backward called before forward")
        return self._grad

    def __call__(self, y_true, y_pred):
        """Keras's argument order: ``loss(y_true, y_pred)``."""
        return self.forward(y_pred, y_true)

    def check_labels(self, y_pred, y_true):
        xp = get_array_module(y_pred)
        y_true = xp.asarray(y_true)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{type(self).__name__}: labels must have the predictions' shape "
                             f"{tuple(y_pred.shape)}, received {tuple(y_true.shape)}")
        return y_true.astype(y_pred.dtype, copy=False)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"
    fuses_with = "softmax"

    def _from_probs(self, p, y):
        xp = get_array_module(p)
        n = p.shape[0]
        total = p.sum(axis=-1, keepdims=True)
        q = p / total
        qc = xp.clip(q, EPSILON, 1 - EPSILON)
        value = -(y * xp.log(qc)).sum() / n
        g = -y / qc * _in_range(q) / n                            # ∂L/∂q
        grad = (g - (g * q).sum(axis=-1, keepdims=True)) / total  # through q = p / Σp
        return value, grad

    def _from_logits(self, z, y):
        return softmax_cross_entropy_from_logits(z, y)


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"
    fuses_with = "softmax"

    def check_labels(self, y_pred, y_true):
        xp = get_array_module(y_pred)
        on_device = is_gpu_array(y_true)
        y_true = xp.asarray(y_true)
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        if y_true.shape != y_pred.shape[:-1]:
            raise ValueError(f"{type(self).__name__}: expected integer labels of shape "
                             f"{tuple(y_pred.shape[:-1])} (or with a trailing 1), received {tuple(y_true.shape)}")
        if on_device:
            # labels given on the GPU are not read back to be checked (that would wait for the
            # GPU in every step; TensorFlow's GPU kernels do not check either); fit and evaluate
            # check them on the host, once, before moving them
            return y_true.astype(np.int64)
        if y_true.dtype.kind == "f":
            if not bool((y_true == xp.round(y_true)).all()):
                raise ValueError(f"{type(self).__name__}: labels must be integer class indices, "
                                 f"received non-integer values")
        elif y_true.dtype.kind not in "iu":
            raise ValueError(f"{type(self).__name__}: labels must be integers, received dtype {y_true.dtype}")
        k = y_pred.shape[-1]
        if y_true.size and (int(y_true.min()) < 0 or int(y_true.max()) >= k):
            raise ValueError(f"{type(self).__name__}: labels must lie in [0, {k}) for {k} classes, "
                             f"received values in [{int(y_true.min())}, {int(y_true.max())}]")
        return y_true.astype(np.int64)

    def _one_hot(self, y, like):
        xp = get_array_module(like)
        return (y[..., None] == xp.arange(like.shape[-1])).astype(like.dtype)

    def _from_probs(self, p, y):
        xp = get_array_module(p)
        n = p.shape[0]
        qc = xp.clip(p, EPSILON, 1 - EPSILON)
        onehot = self._one_hot(y, p)
        total = qc.sum(axis=-1, keepdims=True)
        value = (-(onehot * xp.log(qc)).sum(axis=-1) + xp.log(total[..., 0])).sum() / n
        grad = (-onehot / qc + 1 / total) * _in_range(p) / n
        return value, grad

    def _from_logits(self, z, y):
        return softmax_cross_entropy_from_logits(z, self._one_hot(y, z))


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"
    fuses_with = "sigmoid"

    def check_labels(self, y_pred, y_true):
        xp = get_array_module(y_pred)
        y_true = xp.asarray(y_true)
        if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
            y_true = y_true[..., None]               # (n,) labels for an (n, 1) output
        return super().check_labels(y_pred, y_true)

    def _from_probs(self, p, y):
        xp = get_array_module(p)
        m = p.size
        qc = xp.clip(p, EPSILON, 1 - EPSILON)
        value = -(y * xp.log(qc) + (1 - y) * xp.log(1 - qc)).sum() / m
        grad = -(y / qc - (1 - y) / (1 - qc)) * _in_range(p) / m
        return value, grad

    def _from_logits(self, z, y):
        xp = get_array_module(z)
        m = z.size
        value = (xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))).sum() / m
        return value, (stable_sigmoid(z) - y) / m


_BY_NAME = {cls.name: cls for cls in (CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                      BinaryCrossentropy)}


def get(loss):
    """A loss object from an instance or a Keras name ('categorical_crossentropy', ...)."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in _BY_NAME:
        return _BY_NAME[loss]()
    raise ValueError(f"unknown loss {loss!r}; expected a minicnn.losses.Loss or one of {sorted(_BY_NAME)}")
