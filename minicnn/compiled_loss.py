"""What ``compile`` makes of ``loss``, ``loss_weights`` and ``metrics``: one term per output.

A model with outputs ``y_1 … y_K`` trains on the weighted sum of their losses::

    L = Σ_k w_k · L_k(y_pred_k, y_k)        ∂L/∂y_pred_k = w_k · ∂L_k/∂y_pred_k

so the backward pass starts at every output at once, each seeded with its own term's
gradient.  ``loss`` (and ``loss_weights``, ``metrics``) is one value for every output, a
list in the order of ``model.outputs``, or a dict keyed by output name (Keras).  Where the
output layer ends in the softmax (sigmoid) that its cross-entropy takes logits of, the two
are fused: the seed is ∂L/∂(logits) = p − y (see ``losses.py``).

Sample weights ``w`` (``fit(sample_weight=..., class_weight=...)``) enter each term as
Keras 3 puts them: ``L_k = (1/n) Σ_b w_b ℓ_kb``.  ``metrics`` ignore them;
``weighted_metrics`` are their weighted means ``Σ_b w_b m_b / Σ_b w_b``, accumulated over an
epoch as the two sums (``RunningMeans``), and named ``weighted_<name>`` when the same
name is also among ``metrics`` (Keras's names).
"""
from __future__ import annotations

import copy

from . import backend, losses
from . import metrics as metric_registry
from .graph import in_order


def per_output(value, names, what, default=None):
    """``value`` spread over the outputs: one value for all, a list in order, or a dict."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"compile: {what} names outputs {unknown} that the model does not have; "
                             f"its outputs are {names}")
        return [value.get(name, default) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"compile: {what} has {len(value)} entries for {len(names)} outputs {names}")
        return list(value)
    return [value if i == 0 or not isinstance(value, losses.Loss) else copy.copy(value) for i in range(len(names))]


def metric_list(metrics):
    """'accuracy', ('accuracy',), ['accuracy', 'mae'] -> a list of names (None -> [])."""
    if metrics is None:
        return []
    return [metrics] if isinstance(metrics, str) else list(metrics)


class OutputTerm:
    def __init__(self, name, layer, loss, weight, metrics, weighted_metrics=None):
        self.name, self.layer, self.weight = name, layer, float(weight)
        self.loss = losses.get(loss)
        self.metric_fns = dict(metric_registry.get(m, self.loss.name) for m in metric_list(metrics))
        self.weighted_fns = {}
        for m in metric_list(weighted_metrics):
            key, fn = metric_registry.get(m, self.loss.name)
            self.weighted_fns[f"weighted_{key}" if key in self.metric_fns else key] = fn
        self.fused = False

    def value(self, y_pred, y, sample_weight=None):
        """L_k, from the logits when the output layer's activation fuses with the loss."""
        self.fused = not self.loss.from_logits and self.loss.fuses_with == self.layer.activation.name
        if self.fused:
            return float(self.loss.forward_logits(self.layer.activation.logits, y, sample_weight))
        return float(self.loss.forward(y_pred, y, sample_weight))

    def seed(self):
        grad = self.loss.backward()
        return grad if self.weight == 1.0 else grad * self.weight

    def metrics(self, y_pred, y, sample_weight=None):
        """({name: value}, {name: Σw}): the batch's metrics, and the weights of the
        weighted ones (a weighted metric over Σw = 0 is 0, as Keras's ``divide_no_nan``)."""
        if not self.metric_fns and not self.weighted_fns:
            return {}, {}
        xp = backend.get_array_module(y_pred)
        y = xp.asarray(y)
        values = {name: float(fn(y_pred, y).mean()) for name, fn in self.metric_fns.items()}
        weights = {}
        for name, fn in self.weighted_fns.items():
            if sample_weight is None:
                values[name] = float(fn(y_pred, y).mean())
                continue
            w = xp.asarray(sample_weight, dtype="float64").reshape(-1)
            weights[name] = float(w.sum())
            values[name] = float((fn(y_pred, y) * w).sum()) / weights[name] if weights[name] else 0.0
        return values, weights


class CompiledLoss:
    """The terms of ``L = Σ_k w_k L_k``, one per model output, in output order."""

    def __init__(self, model, loss, loss_weights=None, metrics=None, weighted_metrics=None):
        names = model.output_names
        layers = [t.node.layer for t in model.outputs]
        loss_list = per_output(loss, names, "loss")
        missing = [n for n, value in zip(names, loss_list) if value is None]
        if missing:
            raise ValueError(f"compile: no loss for outputs {missing}")
        weights = per_output(1.0 if loss_weights is None else loss_weights, names, "loss_weights", 1.0)
        metric_lists = self.metrics_per_output(metrics, names, "metrics")
        weighted_lists = self.metrics_per_output(weighted_metrics, names, "weighted_metrics")
        self.terms = [OutputTerm(n, layer, loss_, w, m, wm) for n, layer, loss_, w, m, wm
                      in zip(names, layers, loss_list, weights, metric_lists, weighted_lists)]
        self.names = names
        self.single = len(self.terms) == 1
        self.log_weights = {}

    @staticmethod
    def metrics_per_output(metrics, names, what):
        nested = isinstance(metrics, dict) or (isinstance(metrics, (list, tuple)) and len(names) > 1
                                               and any(isinstance(m, (list, tuple, type(None))) for m in metrics))
        return per_output(metrics, names, what) if nested else [metrics] * len(names)

    def weights_per_output(self, sample_weights):
        """None, one array for every output, or a list / dict of arrays -> a list per output."""
        if sample_weights is None:
            return [None] * len(self.terms)
        if isinstance(sample_weights, dict):
            return in_order(sample_weights, self.names, "sample_weight", "sample weights")
        if isinstance(sample_weights, (list, tuple)) and len(sample_weights) == len(self.terms):
            return list(sample_weights)
        return [sample_weights] * len(self.terms)

    def __call__(self, y_preds, ys, sample_weights=None):
        """(L, logs): logs holds each term's loss and metrics under Keras's history keys
        ('loss', 'accuracy' for one output; 'loss', '<out>_loss', '<out>_accuracy' for several).
        ``log_weights`` then holds Σw of each weighted metric, for the epoch's means."""
        total, logs, self.log_weights = 0.0, {}, {}
        for term, y_pred, y, w in zip(self.terms, y_preds, ys, self.weights_per_output(sample_weights)):
            value = term.value(y_pred, y, w)
            total += term.weight * value
            prefix = "" if self.single else f"{term.name}_"
            if not self.single:
                logs[f"{prefix}loss"] = value
            values, weights = term.metrics(y_pred, y, w)
            logs.update({f"{prefix}{k}": v for k, v in values.items()})
            self.log_weights.update({f"{prefix}{k}": v for k, v in weights.items()})
        return total, logs

    def seeds(self):
        """(∂L/∂(output k) or ∂L/∂(logits k), fused k) for each output."""
        return [term.seed() for term in self.terms], [term.fused for term in self.terms]

    def metric_names(self) -> list:
        if self.single:
            return [*self.terms[0].metric_fns, *self.terms[0].weighted_fns]
        return [f"{t.name}_loss" for t in self.terms] + [f"{t.name}_{m}" for t in self.terms
                                                         for m in (*t.metric_fns, *t.weighted_fns)]
