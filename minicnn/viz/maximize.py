"""Activation maximization: the input a filter, a unit or a class responds to most.

Gradient ascent in input space on ``J(x) = S(x) − Σ_r λ_r R_r(x)``::

    g = ∂S/∂x − Σ λ_r ∇R_r(x)              (∂S/∂x from minicnn's own backward pass)
    x ← clip(x + η · g / (rms(g) + 1e-5))   (L2-normalized step, as the tutorials)

``S`` is the mean activation of channel ``f`` of a conv layer, a dense unit, or — for
class visualization — the class's logit (the softmax replaced by linear: the score is
read before the activation, so other classes cannot raise it by losing probability).
Input modifiers (jitter: roll by a random offset; small rotations) act between steps,
outside the gradient path.  Several filters are optimized at once, one per batch row.
"""
from __future__ import annotations

import numpy as np

from ..inline import find_layer, layers_in_order
from ..preprocessing.image import affine_matrix, apply_affine_transform


class TotalVariation:
    """R(x) = Σ_{i,j} (x_{i+1,j} − x_{i,j})² + (x_{i,j+1} − x_{i,j})²  per image; smooths."""

    def value(self, x):
        dr, dc = np.diff(x, axis=1), np.diff(x, axis=2)
        return (dr ** 2).sum(axis=(1, 2, 3)) + (dc ** 2).sum(axis=(1, 2, 3))

    def grad(self, x):
        dr, dc = np.diff(x, axis=1), np.diff(x, axis=2)
        g = np.zeros_like(x)
        g[:, 1:] += 2 * dr
        g[:, :-1] -= 2 * dr
        g[:, :, 1:] += 2 * dc
        g[:, :, :-1] -= 2 * dc
        return g


class LpNorm:
    """R(x) = Σ |x|^p per image; ∇R = p · |x|^{p−1} · sign(x).  Keeps the input bounded."""

    def __init__(self, p=2.0):
        self.p = float(p)

    def value(self, x):
        return (np.abs(x) ** self.p).sum(axis=(1, 2, 3))

    def grad(self, x):
        return self.p * np.abs(x) ** (self.p - 1) * np.sign(x)


class Jitter:
    """Roll each image by up to ``pixels`` in both directions (a fresh offset per step)."""

    def __init__(self, pixels=2):
        self.pixels = pixels

    def __call__(self, x, rng):
        dr, dc = rng.integers(-self.pixels, self.pixels + 1, 2)
        return np.roll(x, (int(dr), int(dc)), axis=(1, 2))


class Rotate:
    """Rotate each image by a random angle in ±``degrees``."""

    def __init__(self, degrees=5.0):
        self.degrees = degrees

    def __call__(self, x, rng):
        n, h, w, _ = x.shape
        angles = rng.uniform(-self.degrees, self.degrees, n)
        matrices = np.stack([affine_matrix(theta=a, h=h, w=w) for a in angles])
        return apply_affine_transform(x, matrices, "reflect")


def filter_score(channels, spatial=True):
    """∂S/∂out for S_b = mean over space of out[b, ..., channels[b]] (or out[b, channels[b]])."""
    channels = np.asarray(channels)

    def grad(out):
        g = np.zeros_like(out)
        rows = np.arange(len(channels))
        if spatial and out.ndim == 4:
            g[rows, :, :, channels] = 1.0 / (out.shape[1] * out.shape[2])
        else:
            g[rows, channels] = 1.0
        return g

    def value(out):
        rows = np.arange(len(channels))
        return out[rows, :, :, channels].mean(axis=(1, 2)) if (spatial and out.ndim == 4) else out[rows, channels]
    return value, grad


def maximize(model, layer, channels, steps=40, step_size=0.05, seed_input=None, regularizers=(),
             modifiers=(), input_range=(0.0, 1.0), logits=False, seed=0):
    """Optimize one input per entry of ``channels`` to maximize its score at ``layer``.

    Returns ``(images (k, h, w, c), scores (steps + 1, k))`` — the score before each step
    and after the last.  ``regularizers`` is a list of ``(λ, regularizer)``;
    ``logits=True`` reads the layer's pre-activation (class visualization).  ``layer``: a
    layer, its name, or a path into nested models (``model.tensor_of``'s rules).
    """
    rng = np.random.default_rng(seed)
    k = len(channels)
    shape = (k, *model.input_shape[1:])
    dtype = layers_in_order(model)[0].dtype or "float32"
    if seed_input is None:
        lo, hi = input_range if input_range is not None else (0.0, 1.0)
        x = (lo + (hi - lo) * (0.5 + 0.1 * rng.standard_normal(shape))).astype(dtype)
    else:
        x = np.broadcast_to(np.asarray(seed_input, dtype=dtype), shape).copy()
    score_value, score_grad = filter_score(channels)
    scores = []
    for _ in range(steps):
        for modify in modifiers:
            x = modify(x, rng).astype(dtype, copy=False)
        result = model.gradient(x, score_grad, layer=layer, logits=logits)
        scores.append(score_value(np.asarray(result.target)))
        g = np.asarray(result.grad, dtype=np.float64)
        for weight, reg in regularizers:
            g = g - weight * reg.grad(x)
        rms = np.sqrt((g ** 2).mean(axis=(1, 2, 3), keepdims=True))
        x = x + (step_size * g / (rms + 1e-5)).astype(dtype)
        if input_range is not None:
            x = np.clip(x, *input_range)
    out = model.forward(x, upto=layer)
    scores.append(score_value(np.asarray(find_layer(model, layer).activation.logits if logits else out)))
    return x, np.array(scores)


def deprocess_image(x):
    """The tutorials' display transform: standardize, scale by 0.1, centre on 0.5, to uint8."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    x = x / (x.std() + 1e-5) * 0.1 + 0.5
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)
