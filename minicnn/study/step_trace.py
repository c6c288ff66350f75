"""``trace``: one training step, step by step of the model's plan, forward then backward.

It runs the model's own forward and backward (``Model.forward``/``backward`` with a
``record``), so what it shows is what training runs: each step is a layer or a fused group
(``fusion.py``), and each convolution says which algorithm each of its passes ran (the
plan it keeps, ``layer.algorithm``: ``kernels/conv_plan.py``).  For each step: the output
shape, the equation it applies, the norm and a histogram of its activations; then ∂L/∂X (input-gradient norm), ∂L/∂W (parameter-gradient norm), the
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
    """Run one training step (it updates the weights) through the model's own forward and
    backward, and return one dict per step of its plan (a layer, or a fused group); the
    layers of nested models are steps too (the step runs on ``inline.functional_view``)."""
    if model.loss is None:
        raise ValueError("trace: compile the model first")
    from ..inline import functional_view
    forward_steps, backward_steps = [], []
    graph = functional_view(model)
    y_pred = graph.forward(x, training=True, record=forward_steps)
    value, _ = model._losses(y_pred, y)
    seeds, fused = model.compiled_loss.seeds()
    graph.backward(seeds if len(seeds) > 1 else seeds[0], from_logits=fused if len(fused) > 1 else fused[0],
                   record=backward_steps)
    input_grads = {id(step): dxs for step, _, dxs in backward_steps}
    layers = [layer for step, _ in forward_steps for layer in step.layers]
    before = {(layer.name, k): v.copy() for layer in layers for k, v in layer.params.items()}
    rows = []
    for step, outputs in forward_steps:
        h = outputs[0]
        kinds = [type(layer).__name__ for layer in step.layers]
        last = step.layers[-1]
        act = next((layer.activation for layer in step.layers if layer.activation.name != "linear"), last.activation)
        equation = "\n    then ".join(EQUATIONS.get(k, "") for k in kinds)
        if act.name != "linear" and kinds[-1] not in ("Activation", "ReLU"):
            equation += f";  then {act.name}"
        one_kernel = getattr(getattr(step, "group", None), "one_kernel", False)
        convs = [layer.algorithm.describe() for layer in step.layers if getattr(layer, "algorithm", None)]
        row = {"layer": step.describe(), "type": " + ".join(kinds), "shape": tuple(h.shape), "equation": equation,
               "activation_norm": float(np.linalg.norm(h)), "histogram": np.histogram(np.asarray(h), bins=bins),
               "algorithm": ", ".join((["conv + bias + ReLU + max-pool in one kernel"] if one_kernel else []) + convs)}
        if isinstance(act, activations.ReLU):
            alive = np.asarray(h).reshape(len(h), -1) > 0
            row["dead_relu_fraction"] = float(1 - alive.any(axis=0).mean())
        dxs = input_grads.get(id(step))
        row["input_grad_norm"] = float(np.linalg.norm(dxs[0])) if dxs else float("nan")
        row["param_grad_norms"] = {k: float(np.linalg.norm(g)) for layer in step.layers for k, g in layer.grads.items()}
        rows.append(row)
    model.optimizer.apply([(key, params, name, model.get_layer(key[0]).grads[name])
                           for key, params, name in model.trainable_params()])
    for row, (step, _) in zip(rows, forward_steps):
        row["update_ratio"] = {k: float(np.linalg.norm(v - before[(layer.name, k)]) /
                                        max(np.linalg.norm(before[(layer.name, k)]), 1e-12))
                               for layer in step.layers for k, v in layer.params.items()}
    if verbose:
        print(f"loss {value:.5f}   (plan: {graph.plan().kernels} kernels)")
        print(format_trace(rows))
    return rows


def format_trace(rows) -> str:
    head = f"{'step':34s} {'output shape':18s} {'‖a‖':>9s} {'‖∂L/∂X‖':>10s} {'‖∂L/∂W‖':>10s} {'‖Δw‖/‖w‖':>10s} {'dead ReLU':>9s}"
    lines = [head]
    for r in rows:
        grad_f = r["param_grad_norms"].get("kernel")
        ratio = r["update_ratio"].get("kernel")
        lines.append(f"{r['layer']:34s} {str(r['shape']):18s} {r['activation_norm']:9.3g} "
                     f"{r['input_grad_norm']:10.3g} {'' if grad_f is None else f'{grad_f:10.3g}':>10s} "
                     f"{'' if ratio is None else f'{ratio:10.2e}':>10s} "
                     f"{'' if 'dead_relu_fraction' not in r else format(r['dead_relu_fraction'], '9.1%'):>9s}")
        lines.append(f"    {r['equation']}" + (f"   [{r['algorithm']}]" if r.get("algorithm") else ""))
    return "\n".join(lines)
