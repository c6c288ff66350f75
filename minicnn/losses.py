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

Regression and margin losses (``ReducedLoss``): a per-sample value ``ℓ_b`` (a mean over the
last axis of ``K`` values, with ``e = p − y``), then Keras 3's ``reduction`` of the vector —
``'sum_over_batch_size'`` (the default, also ``'mean'``: ``L = (1/n) Σ_b ℓ_b``), ``'sum'``
(``L = Σ_b ℓ_b``) or ``None``/``'none'`` (the vector itself; backward then gives ∂(Σ_b ℓ_b)/∂p)::

    mean_squared_error  ('mse')  ℓ = (1/K) Σ e²            ∂ℓ/∂p = 2e/K
    mean_absolute_error ('mae')  ℓ = (1/K) Σ |e|           ∂ℓ/∂p = sign(e)/K
    huber (δ = 1)                ℓ = (1/K) Σ (½e², |e| ≤ δ; δ|e| − ½δ²)
                                 ∂ℓ/∂p = (e, |e| ≤ δ; δ·sign(e))/K
    hinge (y ∈ {−1, 1}; {0, 1} labels become 2y − 1)
                                 ℓ = (1/K) Σ max(1 − y·p, 0)    ∂ℓ/∂p = −y·[y·p < 1]/K
    kl_divergence                ℓ = Σ ȳ log(ȳ/p̄), ȳ = clip(y, ε, 1), p̄ = clip(p, ε, 1)
                                 ∂ℓ/∂p = −ȳ/p̄ · [ε ≤ p ≤ 1]

Each has a function form returning the per-sample vector (``losses.mean_squared_error(y_true,
y_pred)``, as Keras) and a class form (``losses.MeanSquaredError(reduction=...)``).

**Fusion** (Keras 3 does the same): when a model's output comes from a softmax /
sigmoid and the loss takes probabilities, the model computes the loss from the
logits instead (``forward_logits``), which is exact and stable for any logit —
``∂L/∂z = (p − y)/n`` needs no division by a probability that may underflow to 0.
"""
from __future__ import annotations

import numpy as np

from .activations import stable_sigmoid, stable_softmax
from . import backend
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
    reduction = "sum_over_batch_size"

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)
        self._grad = None

    def forward(self, y_pred, y_true, sample_weight=None):
        y_true = self.check_labels(y_pred, y_true)
        return self._weighted(self.from_logits, y_pred, y_true, sample_weight)

    def forward_logits(self, z, y_true, sample_weight=None):
        """The loss of ``activation(z)`` computed from the logits ``z``; then
        ``backward()`` returns ∂L/∂z."""
        y_true = self.check_labels(z, y_true)
        return self._weighted(True, z, y_true, sample_weight)

    def _weighted(self, logits, y_pred, y_true, sample_weight):
        """L, and ∂L/∂y_pred kept for ``backward``.  With sample weights ``w`` (Keras 3)::

            L_w = (1/n) Σ_b w_b ℓ_b          ∂L_w/∂y_b = w_b · ∂L/∂y_b

        (``'sum'``: no 1/n) — the divisor stays the batch size, not Σw.  Row b of the
        unweighted gradient is (1/n) ∂ℓ_b/∂y_b, since ℓ_b depends on row b alone; the
        weighted one scales it."""
        value, self._grad = (self._from_logits if logits else self._from_probs)(y_pred, y_true)
        if sample_weight is None:
            return value
        xp = get_array_module(y_pred)
        w = xp.asarray(sample_weight, dtype=y_pred.dtype).reshape(-1)
        if len(w) != len(y_pred):
            raise ValueError(f"{type(self).__name__}: sample_weight must hold one weight per sample, "
                             f"{len(y_pred)}, received shape {tuple(xp.shape(sample_weight))}")
        self._grad = self._grad * w.reshape((-1,) + (1,) * (self._grad.ndim - 1))
        weighted = self.sample_values(y_pred, y_true, logits) * w
        if self.reduction in ("none", None):
            return weighted
        return weighted.sum() / (1 if self.reduction == "sum" else len(w))

    def backward(self):
        if self._grad is None:
            raise ValueError(f"{type(self).__name__}: backward called before forward")
        return self._grad

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Keras's argument order: ``loss(y_true, y_pred, sample_weight=None)``."""
        return self.forward(y_pred, y_true, sample_weight)

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
        value = self.sample_values(p, y, False).sum() / n
        g = -y / qc * _in_range(q) / n                            # ∂L/∂q
        grad = (g - (g * q).sum(axis=-1, keepdims=True)) / total  # through q = p / Σp
        return value, grad

    def _from_logits(self, z, y):
        return softmax_cross_entropy_from_logits(z, y)

    def sample_values(self, p, y, logits):
        """ℓ_b, each sample's loss (summed over any axes between the batch and the classes)."""
        xp = get_array_module(p)
        if logits:
            values = _logsumexp(p) * y.sum(axis=-1) - (y * p).sum(axis=-1)
        else:
            values = -(y * xp.log(xp.clip(p / p.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON))).sum(axis=-1)
        return values.reshape(len(p), -1).sum(axis=1)


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
        value = self.sample_values(p, y, False).sum() / n
        grad = (-onehot / qc + 1 / total) * _in_range(p) / n
        return value, grad

    def _from_logits(self, z, y):
        return softmax_cross_entropy_from_logits(z, self._one_hot(y, z))

    def sample_values(self, p, y, logits):
        """ℓ_b (see ``CategoricalCrossentropy.sample_values``); from probabilities,
        ``−log q_y + log Σ_k q_k`` with ``q = clip(p)``."""
        if logits:
            return CategoricalCrossentropy.sample_values(self, p, self._one_hot(y, p), True)
        xp = get_array_module(p)
        qc = xp.clip(p, EPSILON, 1 - EPSILON)
        values = -(self._one_hot(y, p) * xp.log(qc)).sum(axis=-1) + xp.log(qc.sum(axis=-1))
        return values.reshape(len(p), -1).sum(axis=1)


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
        qc = xp.clip(p, EPSILON, 1 - EPSILON)
        grad = -(y / qc - (1 - y) / (1 - qc)) * _in_range(p) / p.size
        return self.element_values(p, y, False).sum() / p.size, grad

    def _from_logits(self, z, y):
        return self.element_values(z, y, True).sum() / z.size, (stable_sigmoid(z) - y) / z.size

    def element_values(self, p, y, logits):
        """The element-wise losses (every sample has as many: L is their mean)."""
        xp = get_array_module(p)
        if logits:
            return xp.maximum(p, 0) - p * y + xp.log1p(xp.exp(-xp.abs(p)))
        qc = xp.clip(p, EPSILON, 1 - EPSILON)
        return -(y * xp.log(qc) + (1 - y) * xp.log(1 - qc))

    def sample_values(self, p, y, logits):
        """ℓ_b, the mean of the element-wise losses of sample b."""
        return self.element_values(p, y, logits).reshape(len(p), -1).mean(axis=1)


REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "none", None)


class ReducedLoss(Loss):
    """A per-sample loss (``per_sample(p, y)`` -> (ℓ (n,), ∂ℓ_b/∂p)) under a Keras 3 reduction."""

    def __init__(self, reduction="sum_over_batch_size"):
        super().__init__(from_logits=False)
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {list(REDUCTIONS)}, "
                             f"received reduction={reduction!r}")
        self.reduction = reduction

    def _from_probs(self, p, y):
        values, grad = self.per_sample(p, y)
        if self.reduction in ("sum_over_batch_size", "mean"):
            return values.sum() / values.size, grad / values.size
        return (values.sum() if self.reduction == "sum" else values), grad

    _from_logits = _from_probs

    def sample_values(self, p, y, logits):
        """ℓ_b: the per-sample value (averaged, or summed for ``'sum'``, over any further axes)."""
        values = self.per_sample(p, y)[0].reshape(len(p), -1)
        return values.sum(axis=1) if self.reduction == "sum" else values.mean(axis=1)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}


def mean_over_last_axis(values, grad):
    """(ℓ, ∂ℓ/∂p) of the mean over the last axis of element-wise values and their derivatives."""
    k = values.shape[-1]
    return values.mean(axis=-1), grad / k


class MeanSquaredError(ReducedLoss):
    name = "mean_squared_error"

    def per_sample(self, p, y):
        e = p - y
        return mean_over_last_axis(e * e, 2 * e)


class MeanAbsoluteError(ReducedLoss):
    name = "mean_absolute_error"

    def per_sample(self, p, y):
        e = p - y
        return mean_over_last_axis(get_array_module(e).abs(e), get_array_module(e).sign(e))


class Huber(ReducedLoss):
    name = "huber"

    def __init__(self, delta=1.0, reduction="sum_over_batch_size"):
        super().__init__(reduction)
        if not isinstance(delta, (int, float)) or delta <= 0:
            raise ValueError(f"Huber: delta must be a positive number, received delta={delta!r}")
        self.delta = float(delta)

    def per_sample(self, p, y):
        xp = get_array_module(p)
        e = p - y
        quadratic = xp.abs(e) <= self.delta
        values = xp.where(quadratic, 0.5 * e * e, self.delta * xp.abs(e) - 0.5 * self.delta ** 2)
        return mean_over_last_axis(values, xp.where(quadratic, e, self.delta * xp.sign(e)))

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class Hinge(ReducedLoss):
    name = "hinge"

    def per_sample(self, p, y):
        xp = get_array_module(p)
        if bool(((y == 0) | (y == 1)).all()):                    # {0, 1} labels -> {−1, 1}, as Keras
            y = 2 * y - 1
        margin = 1 - y * p
        return mean_over_last_axis(xp.maximum(margin, 0), -y * (margin > 0))


class KLDivergence(ReducedLoss):
    name = "kl_divergence"

    def per_sample(self, p, y):
        xp = get_array_module(p)
        yc, pc = xp.clip(y, EPSILON, 1), xp.clip(p, EPSILON, 1)
        return (yc * xp.log(yc / pc)).sum(axis=-1), -yc / pc * ((p >= EPSILON) & (p <= 1))


def _per_sample_function(cls):
    def loss(y_true, y_pred, **kwargs):
        instance = cls(reduction="none", **kwargs)
        return instance(y_true, get_array_module(y_pred).asarray(y_pred))
    loss.__name__ = cls.name
    loss.__doc__ = f"The per-sample {cls.name} of ``y_pred`` against ``y_true`` (see the module docstring)."
    return loss


mean_squared_error = mse = _per_sample_function(MeanSquaredError)
mean_absolute_error = mae = _per_sample_function(MeanAbsoluteError)
huber = _per_sample_function(Huber)
hinge = _per_sample_function(Hinge)
kl_divergence = kld = _per_sample_function(KLDivergence)

_BY_NAME = {cls.name: cls for cls in (CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                      BinaryCrossentropy, MeanSquaredError, MeanAbsoluteError, Huber,
                                      Hinge, KLDivergence)}
_BY_NAME.update(mse=MeanSquaredError, mae=MeanAbsoluteError, kld=KLDivergence)


def _per_sample(cls, y_true, y_pred, from_logits):
    """Keras's function form: the loss of each sample (shape ``(n,)``), each row computed
    by the class's own definition (the class's mean over the batch is their mean)."""
    loss = cls(from_logits=from_logits)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return np.array([loss.forward(y_pred[i:i + 1], y_true[i:i + 1]) for i in range(len(y_pred))],
                    dtype=y_pred.dtype if y_pred.dtype.kind == "f" else backend.floatx())


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    return _per_sample(CategoricalCrossentropy, y_true, y_pred, from_logits)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    return _per_sample(SparseCategoricalCrossentropy, y_true, y_pred, from_logits)


def binary_crossentropy(y_true, y_pred, from_logits=False):
    return _per_sample(BinaryCrossentropy, y_true, y_pred, from_logits)


def get(loss):
    """A loss object from an instance, a Keras name ('categorical_crossentropy', ...), a
    Keras class name ('CategoricalCrossentropy') or a function form."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if callable(loss) and getattr(loss, "__module__", None) == __name__:
        loss = loss.__name__
    by_class = {cls.__name__: cls for cls in _BY_NAME.values()}
    if isinstance(loss, str) and loss in by_class:
        return by_class[loss]()
    if isinstance(loss, str) and loss in _BY_NAME:
        return _BY_NAME[loss]()
    raise ValueError(f"unknown loss {loss!r}; expected a minicnn.losses.Loss or one of {sorted(_BY_NAME)}")
