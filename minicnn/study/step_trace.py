"""``trace``: one training step, layer by layer, forward then backward.

For each layer: the output shape, the equation it applies, the norm and a histogram of
its activations; then ∂L/∂X (input-gradient norm), ∂L/∂F (parameter-gradient norm), the
update/weight ratio ‖Δw‖/‖w‖ of the optimizer step (≈ 1e-3 is the usual healthy range),
and the dead-ReLU fraction (units that are zero for every sample of the batch).
"""
from __future__ import annotations

import numpy as np

from .. import activations

EQUATIONS = {
    "Conv2D": "y = conv(x, W) + b = im2col(x)·W2 + b;  dW = X ⋆ dY;  dX = col2im(dY·W2ᵀ)",
    "MaxPooling2D": "y = max over window;  dX = dY routed to the arg-max switch",
    "GlobalAveragePooling2D": "y = mean over (h, w);  dX = dY / (h·w)",
    "Dense": "y = x·W + b;  dW = Xᵀ·dY;  dX = dY·Wᵀ",
    "Flatten": "y = reshape(x);  dX = reshape(dY)",
    "Dropout": "y = x·m/(1−p);  dX = dY·m/(1−p)",
    "Activation": "y = f(x);  dX = f'(x)·dY",
    "ReLU": "y = max(x, 0);  dX = dY·[x > 0]",
}


def trace(model, x, y, verbose=True, bins=30):
    """Run one training step (it updates the weights) and return one dict per layer."""
    if model.loss is None:
        raise ValueError("trace: compile the model first")
    rows = []
    h = x
    for layer in model.layers:
        h = layer.forward(h, training=True)
        act = layer.activation
        row = {"layer": layer.name, "type": type(layer).__name__, "shape": tuple(h.shape),
               "equation": EQUATIONS.get(type(layer).__name__, "") +
               (f";  then {act.name}" if act.name != "linear" and type(layer).__name__ not in ("Activation", "ReLU")
                else ""),
               "activation_norm": float(np.linalg.norm(h)), "histogram": np.histogram(np.asarray(h), bins=bins)}
        if isinstance(act, activations.ReLU):
            alive = np.asarray(h).reshape(len(h), -1) > 0
            row["dead_relu_fraction"] = float(1 - alive.any(axis=0).mean())
        rows.append(row)
    value, fused = model._loss_and_seed(h, y)
    grad = model.loss.backward()
    before = {(layer.name, k): v.copy() for layer in model.layers for k, v in layer.params.items()}
    for i in range(len(model.layers) - 1, -1, -1):
        layer = model.layers[i]
        grad = layer.backward_logits(grad) if (fused and i == len(model.layers) - 1) else layer.backward(grad)
        rows[i]["input_grad_norm"] = float(np.linalg.norm(grad))
        rows[i]["param_grad_norms"] = {k: float(np.linalg.norm(g)) for k, g in layer.grads.items()}
    model.optimizer.apply([(key, params, name, model.get_layer(key[0]).grads[name])
                           for key, params, name in model.trainable_params()])
    for row, layer in zip(rows, model.layers):
        row["update_ratio"] = {k: float(np.linalg.norm(v - before[(layer.name, k)]) /
                                        max(np.linalg.norm(before[(layer.name, k)]), 1e-12))
                               for k, v in layer.params.items()}
    if verbose:
        print(f"loss {value:.5f}")
        print(format_trace(rows))
    return rows


def format_trace(rows) -> str:
    head = f"{'layer':18s} {'output shape':18s} {'‖a‖':>9s} {'‖∂L/∂X‖':>10s} {'‖∂L/∂F‖':>10s} {'‖Δw‖/‖w‖':>10s} {'dead ReLU':>9s}"
    lines = [head]
    for r in rows:
        grad_f = r["param_grad_norms"].get("kernel")
        ratio = r["update_ratio"].get("kernel")
        lines.append(f"{r['layer']:18s} {str(r['shape']):18s} {r['activation_norm']:9.3g} "
                     f"{r['input_grad_norm']:10.3g} {'' if grad_f is None else f'{grad_f:10.3g}':>10s} "
                     f"{'' if ratio is None else f'{ratio:10.2e}':>10s} "
                     f"{'' if 'dead_relu_fraction' not in r else format(r['dead_relu_fraction'], '9.1%'):>9s}")
        lines.append(f"    {r['equation']}")
    return "\n".join(lines)


def trace_figure(rows):
    """Activation histograms per layer (a Figure)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(rows), figsize=(2.2 * len(rows), 2.2), squeeze=False)
    for ax, r in zip(axes[0], rows):
        counts, edges = r["histogram"]
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge")
        ax.set_title(r["layer"], fontsize=7)
        ax.tick_params(labelsize=6)
    return fig
