"""Attribution maps for an input and a class, all from minicnn's own backward pass.

With ``y_c`` the class logit (softmax replaced by linear), ``A`` a conv layer's output
``(h, w, k)`` and ``G = ∂y_c/∂A``:

* saliency:     ``M = max_ch |∂y_c/∂x|``
* SmoothGrad:   the mean saliency gradient over ``x + N(0, σ²)``, σ = noise · (max − min)
* Grad-CAM:     ``α_k = mean_{i,j} G_{ijk}``,  ``M = ReLU(Σ_k α_k A_k)``
* Grad-CAM++:   ``a_{ijk} = G² / (2G² + Σ_{ij} A_k · G³)``, ``α_k = Σ_{ij} a_{ijk} ReLU(G_{ijk})``
* guided backpropagation / deconvnet: the same backward pass with the ReLU rule
  switched (``activations.ReLU``): deconvnet keeps ``[dy > 0]``, guided keeps
  ``[z > 0]·[dy > 0]``; max-pool unpools through the switches recorded in forward.
* guided Grad-CAM: guided backprop ⊙ the upsampled Grad-CAM map.

``randomization_check`` (Adebayo et al., 2018) re-initializes layers top-down and
reports the Spearman rank correlation between each map and the trained model's.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .. import activations
from ..inline import layers_in_order
from ..layers import Conv2D


def class_gradient(class_index):
    """∂y_c/∂logits for ``y_c`` = the logit of ``class_index`` (an int or one per sample)."""
    def grad(z):
        g = np.zeros_like(z)
        g[np.arange(len(z)), np.broadcast_to(np.asarray(class_index), (len(z),))] = 1.0
        return g
    return grad


def input_gradient(model, x, class_index):
    return np.asarray(model.gradient(x, class_gradient(class_index), logits=True).grad)


def saliency(model, x, class_index):
    """(n, h, w): max over channels of |∂y_c/∂x| (Simonyan et al., 2014)."""
    return np.abs(input_gradient(model, x, class_index)).max(axis=-1)


def smoothgrad(model, x, class_index, samples=25, noise=0.15, seed=0):
    """(n, h, w): saliency of the gradient averaged over noisy copies (Smilkov et al., 2017)."""
    rng = np.random.default_rng(seed)
    sigma = noise * (x.max() - x.min())
    total = 0.0
    for _ in range(samples):
        total = total + input_gradient(model, (x + sigma * rng.standard_normal(x.shape)).astype(x.dtype),
                                       class_index)
    return np.abs(total / samples).max(axis=-1)


def last_conv_layer(model):
    """The last Conv2D layer, nested models' layers included (a VGG16 base's block5_conv3)."""
    convs = [layer for layer in layers_in_order(model) if isinstance(layer, Conv2D)]
    if not convs:
        raise ValueError(f"model {model.name!r} has no Conv2D layer for Grad-CAM")
    return convs[-1]


def resize_bilinear(maps, size):
    """(n, h, w) -> (n, H, W), half-pixel centres (as image resizing does)."""
    n, h, w = maps.shape
    H, W = size
    r = np.clip((np.arange(H) + 0.5) * h / H - 0.5, 0, h - 1)
    c = np.clip((np.arange(W) + 0.5) * w / W - 0.5, 0, w - 1)
    r0, c0 = np.floor(r).astype(int), np.floor(c).astype(int)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr, fc = (r - r0)[:, None], (c - c0)[None, :]
    top = maps[:, r0][:, :, c0] * (1 - fc) + maps[:, r0][:, :, c1] * fc
    bottom = maps[:, r1][:, :, c0] * (1 - fc) + maps[:, r1][:, :, c1] * fc
    return top * (1 - fr) + bottom * fr


class GradCAM:
    """Class activation maps from gradients; subclasses change only ``channel_weights``.
    ``layer``: a layer, its name, or a path into nested models (``model.tensor_of``'s
    rules); default the last Conv2D, inside nested models too."""

    def channel_weights(self, A, G):
        return G.mean(axis=(1, 2))                                   # (n, k)

    def __call__(self, model, x, class_index, layer=None, upsample=True, normalize=True, logits=True):
        """``logits=False`` scores the class by its probability (the softmax's output), as
        Keras's Grad-CAM tutorial does, instead of its logit."""
        layer = layer or last_conv_layer(model)
        result = model.gradient(x, class_gradient(class_index), logits=logits, wrt=layer)
        A, G = np.asarray(result.wrt_value, dtype=np.float64), np.asarray(result.grad, dtype=np.float64)
        self.weights = self.channel_weights(A, G)
        cam = np.maximum(np.einsum("nijk,nk->nij", A, self.weights), 0)   # ReLU(Σ_k α_k A_k)
        if normalize:
            cam = cam / np.maximum(cam.max(axis=(1, 2), keepdims=True), 1e-12)
        return resize_bilinear(cam, x.shape[1:3]) if upsample else cam


class GradCAMPlusPlus(GradCAM):
    def channel_weights(self, A, G):
        g2, g3 = G ** 2, G ** 3
        denominator = 2 * g2 + (A * g3).sum(axis=(1, 2), keepdims=True)
        alpha = g2 / np.where(denominator != 0, denominator, 1.0)
        return (alpha * np.maximum(G, 0)).sum(axis=(1, 2))


grad_cam = GradCAM()
grad_cam_plus_plus = GradCAMPlusPlus()


@contextlib.contextmanager
def relu_rule(model, rule):
    """Temporarily switch every ReLU's backward rule ('gradient', 'deconvnet', 'guided')."""
    if rule not in activations.ReLU.RULES:
        raise ValueError(f"relu_rule: expected one of {activations.ReLU.RULES}, received {rule!r}")
    relus = [layer.activation for layer in model.flat_layers() if isinstance(layer.activation, activations.ReLU)]
    for r in relus:
        r.rule = rule
    try:
        yield
    finally:
        for r in relus:
            r.rule = "gradient"


def guided_backprop(model, x, class_index):
    """(n, h, w, c): ∂y_c/∂x with the guided ReLU rule (Springenberg et al., 2015)."""
    with relu_rule(model, "guided"):
        return input_gradient(model, x, class_index)


def deconvnet(model, x, class_index):
    """(n, h, w, c): Zeiler & Fergus's deconvnet: rectified backward signal, unpooling
    through the forward switches, transposed filters (the conv backward)."""
    with relu_rule(model, "deconvnet"):
        return input_gradient(model, x, class_index)


def guided_grad_cam(model, x, class_index, layer=None):
    return guided_backprop(model, x, class_index) * grad_cam(model, x, class_index, layer)[..., None]


def overlay(image, heatmap, alpha=0.4):
    """RGB float image in [0, 1]: the heatmap in the jet colormap over the image."""
    import matplotlib
    image = np.asarray(image, dtype=np.float64)
    image = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
    image = (image - image.min()) / (np.ptp(image) or 1.0)
    rgb = np.stack([image] * 3, -1) if image.ndim == 2 else image
    colored = matplotlib.colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3]
    return np.clip(colored * alpha + rgb * (1 - alpha), 0, 1)


def spearman(a, b):
    """Spearman rank correlation of two arrays (Pearson on the ranks)."""
    ra = np.argsort(np.argsort(np.ravel(a))).astype(np.float64)
    rb = np.argsort(np.argsort(np.ravel(b))).astype(np.float64)
    ra -= ra.mean()
    rb -= rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra ** 2).sum() * (rb ** 2).sum()))


def randomization_check(model, x, class_index, method=saliency, seed=0):
    """Cascading model-parameter randomization: [(layer randomized last, Spearman ρ with
    the trained model's map)], from the top layer down; the weights are restored after."""
    from ..seeding import new_generator
    original = model.get_weights()
    reference = method(model, x, class_index)
    rng = new_generator(seed)
    results = []
    try:
        for layer in reversed([weighted for weighted in model.flat_layers() if weighted.params]):
            weights = []
            for key, value in layer.params.items():
                init = layer.kernel_initializer if key == "kernel" else (lambda shape, r: r.normal(0, 0.1, shape))
                weights.append(init(value.shape, rng))
            layer.set_weights(weights)
            results.append((layer.name, spearman(reference, method(model, x, class_index))))
    finally:
        model.set_weights(original)
    return results
