"""What ``compile`` makes of ``loss``, ``loss_weights`` and ``metrics``: one term per output.

A model with outputs ``y_1 … y_K`` trains on the weighted sum of their losses::

    L = Σ_k w_k · L_k(y_pred_k, y_k)        ∂L/∂y_pred_k = w_k · ∂L_k/∂y_pred_k

so the backward pass starts at every output at once, each seeded with its own term's
gradient.  ``loss`` (and ``loss_weights``, ``metrics``) is one value for every output, a
list in the order of ``model.outputs``, or a dict keyed by output name (Keras).  Where the
output layer ends in the softmax (sigmoid) that its cross-entropy takes logits of, the two
are fused: the seed is ∂L/∂(logits) = p − y (see ``losses.py``).
"""
from __future__ import annotations

import copy

from . import backend, losses
from . import metrics as metric_registry


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
    def __init__(self, name, layer, loss, weight, metrics):
        self.name, self.layer, self.weight = name, layer, float(weight)
        self.loss = losses.get(loss)
        self.metric_fns = dict(metric_registry.get(m, self.loss.name) for m in metric_list(metrics))
        self.fused = False

    def value(self, y_pred, y):
        """L_k, from the logits when the output layer's activation fuses with the loss."""
        self.fused = not self.loss.from_logits and self.loss.fuses_with == self.layer.activation.name
        if self.fused:
            return float(self.loss.forward_logits(self.layer.activation.logits, y))
        return float(self.loss.forward(y_pred, y))

    def seed(self):
        grad = self.loss.backward()
        return grad if self.weight == 1.0 else grad * self.weight

    def metrics(self, y_pred, y):
        xp = backend.get_array_module(y_pred)
        return {name: float(fn(y_pred, xp.asarray(y)).mean()) for name, fn in self.metric_fns.items()}


class CompiledLoss:
    """The terms of ``L = Σ_k w_k L_k``, one per model output, in output order."""

    def __init__(self, model, loss, loss_weights=None, metrics=None):
        names = model.output_names
        layers = [t.node.layer for t in model.outputs]
        loss_list = per_output(loss, names, "loss")
        missing = [n for n, value in zip(names, loss_list) if value is None]
        if missing:
            raise ValueError(f"compile: no loss for outputs {missing}")
        weights = per_output(1.0 if loss_weights is None else loss_weights, names, "loss_weights", 1.0)
        nested = isinstance(metrics, dict) or (isinstance(metrics, (list, tuple)) and len(names) > 1
                                               and any(isinstance(m, (list, tuple, type(None))) for m in metrics))
        metric_lists = per_output(metrics, names, "metrics") if nested else [metrics] * len(names)
        self.terms = [OutputTerm(n, layer, loss_, w, m)
                      for n, layer, loss_, w, m in zip(names, layers, loss_list, weights, metric_lists)]
        self.single = len(self.terms) == 1

    def __call__(self, y_preds, ys):
        """(L, logs): logs holds each term's loss and metrics under Keras's history keys
        ('loss', 'accuracy' for one output; 'loss', '<out>_loss', '<out>_accuracy' for several)."""
        total, logs = 0.0, {}
        for term, y_pred, y in zip(self.terms, y_preds, ys):
            value = term.value(y_pred, y)
            total += term.weight * value
            prefix = "" if self.single else f"{term.name}_"
            if not self.single:
                logs[f"{prefix}loss"] = value
            logs.update({f"{prefix}{k}": v for k, v in term.metrics(y_pred, y).items()})
        return total, logs

    def seeds(self):
        """(∂L/∂(output k) or ∂L/∂(logits k), fused k) for each output."""
        return [term.seed() for term in self.terms], [term.fused for term in self.terms]

    def metric_names(self) -> list:
        if self.single:
            return list(self.terms[0].metric_fns)
        return [f"{t.name}_loss" for t in self.terms] + [f"{t.name}_{m}" for t in self.terms for m in t.metric_fns]
