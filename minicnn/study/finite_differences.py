"""Gradient checking by central differences (float64).

For a scalar ``L(θ)`` and a probe index ``i``::

    ∂L/∂θ_i ≈ (L(θ + ε·e_i) − L(θ − ε·e_i)) / (2ε)       error O(ε²)

A layer is checked through the scalar ``L = Σ y ⊙ G`` with a *random* upstream
gradient ``G`` (``ones`` would hide errors that cancel), so that ``∂L/∂y = G`` and the
layer's own backward gives the analytic gradients.  Relative error per tensor:
``‖a − n‖ / max(‖a‖ + ‖n‖, tiny)`` over the sampled entries.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


def numeric_gradient(f, array, indices, eps=1e-6):
    """Central differences of the scalar ``f()`` w.r.t. ``array`` at flat ``indices``
    (``array`` is perturbed in place and restored)."""
    flat = array.reshape(-1)
    out = np.empty(len(indices))
    for k, i in enumerate(indices):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        out[k] = (plus - minus) / (2 * eps)
    return out


def relative_error(analytic, numeric) -> float:
    analytic, numeric = np.ravel(analytic), np.ravel(numeric)
    return float(np.linalg.norm(analytic - numeric) /
                 max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-30))


class CheckResult(NamedTuple):
    layer: str
    tensor: str
    rel_error: float
    worst_index: tuple
    worst_abs_error: float


def sample_indices(size, max_samples, rng):
    return np.arange(size) if size <= max_samples else rng.choice(size, max_samples, replace=False)


def compare(layer_name, tensor_name, shape, analytic_flat, numeric, indices) -> CheckResult:
    diff = np.abs(analytic_flat[indices] - numeric)
    worst = int(np.argmax(diff)) if len(diff) else 0
    return CheckResult(layer_name, tensor_name, relative_error(analytic_flat[indices], numeric),
                       tuple(int(v) for v in np.unravel_index(indices[worst], shape)) if len(diff) else (),
                       float(diff[worst]) if len(diff) else 0.0)


def check_layer(layer, x, upstream=None, max_samples=64, eps=1e-6, seed=0, skip_zero_inputs=False):
    """Check ∂/∂x and ∂/∂param of ``layer`` at float64 input ``x`` (an array, or a list of
    arrays for a merge layer) against central differences of ``Σ y·G``; list of
    CheckResult.  ``skip_zero_inputs``: inputs exactly 0 (after a ReLU) are not sampled —
    a max-pool window of tied zeros has no derivative there."""
    rng = np.random.default_rng(seed)
    y = layer.forward(x, training=False)
    G = rng.standard_normal(y.shape) if upstream is None else upstream

    def scalar():
        return float((layer.forward(x, training=False) * G).sum())

    layer.forward(x, training=False)
    dx = layer.backward(G)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    name = layer.name or type(layer).__name__
    inputs, dxs = (x, dx) if isinstance(x, list) else ([x], [dx])
    results = []
    for i, (a, g) in enumerate(zip(inputs, dxs)):
        candidates = np.flatnonzero(a.reshape(-1) != 0) if skip_zero_inputs else np.arange(a.size)
        idx = candidates[sample_indices(len(candidates), max_samples, rng)]
        results.append(compare(name, "input" if len(inputs) == 1 else f"input {i}", a.shape, g.reshape(-1),
                               numeric_gradient(scalar, a, idx, eps), idx))
    for key, param in layer.params.items():
        idx = sample_indices(param.size, max_samples, rng)
        results.append(compare(name, key, param.shape, grads[key].reshape(-1),
                               numeric_gradient(scalar, param, idx, eps), idx))
    return results


def _model_loss(model, loss, y, G):
    """A scalar of the model output: the loss when labels are given, else Σ y·G."""
    if y is not None:
        def value(out):
            return float(loss.forward(out, y))

        def grad(out):
            loss.forward(out, y)
            return loss.backward()
    else:
        def value(out):
            return float((out * G).sum())

        def grad(out):
            return G
    return value, grad


def float64_copy(model):
    """A copy of ``model`` (any graph) with float64 weights; ``model`` is left as it is."""
    import copy
    clone = copy.deepcopy(model)
    for layer in [clone, *clone.flat_layers()]:
        if hasattr(layer, "_plans"):
            layer._plans, layer._last_plan = {}, None           # plans are keyed by the originals' tensors
        layer.dtype = "float64"
        layer.params = {k: np.asarray(v, dtype=np.float64) for k, v in layer.params.items()}
        layer.workspace.clear()
    return clone


def check_model(model, x, y=None, loss=None, max_samples=24, eps=1e-6, seed=0):
    """Per layer call, in the order the model runs them: the layer's backward — ∂L/∂(its
    input) and ∂L/∂(each parameter) — against central differences of ``Σ dy·layer(x)``,
    with the very ``x`` and ``dy`` that this call sees inside the model (float64,
    inference mode, the reference kernels: every call its own step).  Any graph works,
    nested models' layers checked call by call (``inline.functional_view``); a wrong
    backward shows at its own layer only (the calls below it check their own backward
    with whatever gradient reaches them).  Returns a list of CheckResult."""
    from .. import backend, losses
    from ..inline import functional_view
    loss = losses.get(loss) if loss is not None else (getattr(model, "loss", None) if y is not None else None)
    if y is not None and loss is None:
        raise ValueError("gradcheck: labels were given but no loss: compile the model or pass loss=")
    model = functional_view(float64_copy(model))
    xs = [np.array(a, dtype=np.float64) for a in (x if isinstance(x, (list, tuple)) else [x])]
    rng = np.random.default_rng(seed)
    forward_steps, backward_steps = [], []
    with backend.use_kernels("reference"):
        out = model.forward(xs if len(xs) > 1 else xs[0], record=forward_steps)
        G = rng.standard_normal(np.shape(out))
        value, grad = _model_loss(model, loss, y, G)
        model.backward(grad(out), record=backward_steps)
        values = {id(t): a for t, a in zip(model.inputs, xs)}
        for step, outputs in forward_steps:
            values.update(zip(map(id, step.outputs), outputs))
        upstream = {id(step): dys for step, dys, _ in backward_steps}
        results = []
        for step, _ in forward_steps:
            if id(step) not in upstream:
                continue                                  # the loss does not depend on this call
            node, dys = step.node, upstream[id(step)]
            inputs = [values[id(t)] for t in node.inputs]
            results += check_layer(node.layer, inputs if node.as_list else inputs[0],
                                   dys[0] if len(dys) == 1 else dys, max_samples, eps, seed,
                                   skip_zero_inputs=not any(t is i for t in node.inputs for i in model.inputs))
    return results


def first_wrong_layer(results, tol=1e-5):
    """The layer whose backward is wrong: the last (topmost) layer with a wrong gradient."""
    wrong = [r.layer for r in results if r.rel_error > tol]
    if not wrong:
        return None
    order = list(dict.fromkeys(r.layer for r in results))
    return max(wrong, key=order.index)


def format_table(results, tol=1e-5) -> str:
    lines = [f"{'layer':22s} {'tensor':8s} {'rel. error':>11s}  {'worst index':18s} {'abs. error':>10s}"]
    for r in results:
        flag = "  <-- WRONG" if r.rel_error > tol else ""
        lines.append(f"{r.layer:22s} {r.tensor:8s} {r.rel_error:11.2e}  {str(r.worst_index):18s} "
                     f"{r.worst_abs_error:10.2e}{flag}")
    return "\n".join(lines)


def gradcheck(model_or_layer, x, y=None, loss=None, bisect=False, verbose=True, tol=1e-5, **kwargs):
    """Check every layer's backward by finite differences; print the table.  Returns the
    results, or with ``bisect=True`` the name of the first wrong layer (None if all pass)."""
    from ..layers import Layer
    from ..model import Model
    if isinstance(model_or_layer, Layer) and not isinstance(model_or_layer, Model):
        from ..saving import layer_from_entry
        layer = layer_from_entry({"class": type(model_or_layer).__name__,
                                    "config": model_or_layer.get_config()}, "gradcheck")
        layer.dtype = "float64"
        layer.build((None, *np.shape(x)[1:]))
        if model_or_layer.built:
            layer.set_weights(model_or_layer.get_weights())
        results = check_layer(layer, np.array(x, dtype=np.float64), **kwargs)
    else:
        results = check_model(model_or_layer, x, y, loss, **kwargs)
    if verbose:
        print(format_table(results, tol))
    if bisect:
        culprit = first_wrong_layer(results, tol)
        if verbose:
            print(f"first layer with a wrong backward: {culprit}" if culprit else "every backward agrees")
        return culprit
    return results
