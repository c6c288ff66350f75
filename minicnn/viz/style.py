"""Neural style transfer with Gram matrices (Gatys et al., 2016), gradients by hand.

For a layer's activation ``F`` of one image, shaped ``(h, w, c)`` and flattened to
``(m, c)`` with ``m = h·w``::

    G = Fᵀ F / m                                  (c, c) Gram matrix
    style    L_s = Σ_l w_l ‖G_l(x) − G_l(s)‖² / (4 c_l²)       ∂L_s/∂F = w_l · F (G − A) / (c² m)
    content  L_c = ‖F(x) − F(p)‖²                            ∂L_c/∂F = 2 (F(x) − F(p))
    total variation (Keras example): Σ (a + b)^{1.25}, a, b the squared neighbour differences

The layer gradients are summed in one reverse sweep (``model.backward_from``) and the
image is updated with Adam.  Works on any minicnn conv stack, e.g. ``applications.VGG16``
with Keras weights.
"""
from __future__ import annotations

import numpy as np

from .. import optimizers


def gram(F):
    """F (h, w, c) -> G (c, c) = FᵀF / (h·w)."""
    m = F.shape[0] * F.shape[1]
    F2 = F.reshape(m, -1)
    return F2.T @ F2 / m


def style_loss_and_grad(F, A):
    """L = ‖gram(F) − A‖² / (4c²) and ∂L/∂F."""
    c = F.shape[-1]
    m = F.shape[0] * F.shape[1]
    diff = gram(F) - A
    grad = (F.reshape(m, c) @ diff).reshape(F.shape) / (c ** 2 * m)   # (2·2·F·D/m)/(4c²), D symmetric
    return float((diff ** 2).sum() / (4 * c ** 2)), grad


def tv_loss_and_grad(x, power=1.25):
    """Keras's example: Σ (a + b)^power with a, b the squared down/right differences."""
    a = (x[:, :-1, :-1] - x[:, 1:, :-1]) ** 2
    b = (x[:, :-1, :-1] - x[:, :-1, 1:]) ** 2
    s = a + b
    value = float((s ** power).sum())
    ds = power * np.where(s > 0, s, 1e-12) ** (power - 1)
    g = np.zeros_like(x)
    da = ds * 2 * (x[:, :-1, :-1] - x[:, 1:, :-1])
    db = ds * 2 * (x[:, :-1, :-1] - x[:, :-1, 1:])
    g[:, :-1, :-1] += da + db
    g[:, 1:, :-1] -= da
    g[:, :-1, 1:] -= db
    return value, g


def style_transfer(model, content, style, content_layer, style_layers, steps=100, learning_rate=0.02,
                   content_weight=0.025, style_weight=1.0, tv_weight=1e-4, verbose=False):
    """Returns (image (1, h, w, c), list of total losses).  ``content``/``style`` are (1, h, w, c);
    the layers are layers, names, or paths into nested models (``model.tensor_of``'s rules)."""
    layers = list(dict.fromkeys([content_layer, *style_layers]))
    content_target = model.intermediate_outputs(content, [content_layer])[0][0]
    style_targets = {name: gram(out[0]) for name, out in zip(style_layers,
                                                               model.intermediate_outputs(style, style_layers))}
    image = content.astype(np.float64).copy()
    params = {"image": image}
    adam = optimizers.Adam(learning_rate)
    history = []
    for step in range(steps):
        # one forward to the highest layer: also leaves every layer's cache ready for backward
        outputs = dict(zip(layers, model.intermediate_outputs(image.astype(content.dtype), layers)))
        grads, total = {}, 0.0
        F = outputs[content_layer][0]
        total += content_weight * float(((F - content_target) ** 2).sum())
        grads[content_layer] = (content_weight * 2 * (F - content_target))[None]
        for name in style_layers:
            value, g = style_loss_and_grad(outputs[name][0], style_targets[name])
            total += style_weight / len(style_layers) * value
            term = (style_weight / len(style_layers) * g)[None]
            grads[name] = grads[name] + term if name in grads else term
        grad = np.asarray(model.backward_from({k: v.astype(content.dtype) for k, v in grads.items()}),
                          dtype=np.float64)
        tv, tv_grad = tv_loss_and_grad(image)
        total += tv_weight * tv
        adam.apply([("image", params, "image", grad + tv_weight * tv_grad)])
        history.append(total)
        if verbose:
            print(f"step {step + 1}/{steps}: loss {total:.4g}")
    return params["image"], history
