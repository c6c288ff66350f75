"""Element-wise activations, each with the forward and the backward it implies.

An activation object belongs to one layer and keeps one cache slot (what its backward
needs from the last forward).  ``z`` is the pre-activation ("logits"), ``a`` the output,
``da = ∂L/∂a``, and backward returns ``dz = ∂L/∂z``:

=========  ===========================  =======================================
name       forward                      backward
=========  ===========================  =======================================
linear     a = z                        dz = da
relu       a = max(z, 0)                dz = da · [z > 0]
sigmoid    a = 1 / (1 + e^{−z})         dz = da · a · (1 − a)
softmax    a_k = e^{z_k} / Σ_j e^{z_j}  dz = a ⊙ (da − Σ_k da_k a_k)   (along ``axis``, the last)
tanh       a = tanh z                   dz = da · (1 − a²)
elu        a = z, z > 0; α(e^z − 1)     dz = da · (1, z > 0; a + α)         (α = 1)
selu       a = λ·elu_α(z)               dz = da · λ(1, z > 0; α e^z)        (Keras's α, λ)
gelu       a = z Φ(z)                   dz = da · (Φ(z) + z φ(z))           (Φ = ½(1 + erf(z/√2)))
softplus   a = log(1 + e^z)             dz = da · σ(z)
softsign   a = z / (1 + |z|)            dz = da / (1 + |z|)²
silu       a = z σ(z)   (alias swish)   dz = da · σ(z)(1 + z(1 − σ(z)))
leaky_relu a = z, z > 0; s·z            dz = da · (1, z > 0; s)             (s = 0.2)
hard_sig.  a = clip(z/6 + ½, 0, 1)      dz = da · [−3 < z < 3] / 6          (Keras 3's)
exponential a = e^z                     dz = da · a
=========  ===========================  =======================================

``gelu(approximate=True)`` is ``½ z (1 + tanh(√(2/π)(z + 0.044715 z³)))``; the string
``'gelu'`` is the exact one (Keras 3's default).  ``'leaky_relu'``'s slope (0.2, Keras's
``activations.leaky_relu``) is not the ``LeakyReLU`` layer's (0.3).

The ReLU backward has two more *rules* used by the visualizations: ``'deconvnet'``
(Zeiler & Fergus: rectify the backward signal, ``dz = max(da, 0)``) and ``'guided'``
(guided backpropagation: both gates, ``dz = da · [z > 0] · [da > 0]``).
"""
from __future__ import annotations

import math

from . import backend
from .backend import get_array_module
from .inference import no_backward_follows


class ActivationFunction:
    """``forward(z)``: a = act(z), keeping what backward needs (one slot, overwritten by
    each forward); ``backward(da)``: ∂L/∂z.  ``release()`` drops what the last forward kept."""

    out = logits = mask = None

    def release(self):
        self.out = self.logits = self.mask = None


class Linear(ActivationFunction):
    name = "linear"

    def forward(self, z):
        self.logits = z
        return z

    def backward(self, da):
        return da


class ReLU(ActivationFunction):
    """Keeps the mask ``[z > 0]`` — or, where the plan ran its layer and it as one fused
    group (``fusion.EpilogueGroup``), the output ``a`` in ``out``: ``a > 0`` exactly where
    ``z > 0``, so backward reads either.  A forward no backward follows
    (``inference.forward_only``) forms no mask."""

    name = "relu"
    RULES = ("gradient", "deconvnet", "guided")

    def __init__(self):
        self.rule = "gradient"

    def forward(self, z):
        self.logits, self.out = z, None
        if no_backward_follows():
            self.mask = None
            return get_array_module(z).maximum(z, 0)
        self.mask = z > 0
        return z * self.mask

    def backward(self, da):
        if self.rule == "deconvnet":
            return da * (da > 0)
        positive = self.mask if self.mask is not None else self.out > 0
        if self.rule == "gradient":
            return da * positive
        return da * (positive & (da > 0))     # guided


def stable_sigmoid(z):
    """1 / (1 + e^{−z}) without overflow: uses e^{−|z|} on both branches."""
    xp = get_array_module(z)
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def stable_softmax(z, axis=-1):
    """e^{z − max z} / Σ e^{z − max z} along ``axis``."""
    xp = get_array_module(z)
    e = xp.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class Sigmoid(ActivationFunction):
    name = "sigmoid"

    def forward(self, z):
        self.logits = z
        self.out = stable_sigmoid(z)
        return self.out

    def backward(self, da):
        return da * self.out * (1 - self.out)


class Softmax(ActivationFunction):
    def __init__(self, axis=-1):
        self.axis = axis
        self.name = "softmax" if axis == -1 else f"softmax(axis={axis})"   # a loss fuses the last axis's only

    def forward(self, z):
        self.logits = z
        self.out = stable_softmax(z, self.axis)
        return self.out

    def backward(self, da):
        s = self.out                            # Jacobian-vector product of softmax
        return s * (da - (da * s).sum(axis=self.axis, keepdims=True))


class Elementwise(ActivationFunction):
    """a = f(z) and dz = da · f′(z), with f′ written from z and a (``derivative``)."""

    def forward(self, z):
        self.logits = z
        self.out = self.f(z, get_array_module(z))
        return self.out

    def backward(self, da):
        return da * self.derivative(self.logits, self.out, get_array_module(da))


class Tanh(Elementwise):
    name = "tanh"

    def f(self, z, xp):
        return xp.tanh(z)

    def derivative(self, z, a, xp):
        return 1 - a * a


class ELU(Elementwise):
    name = "elu"

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def f(self, z, xp):
        return xp.where(z > 0, z, self.alpha * xp.expm1(xp.minimum(z, 0)))

    def derivative(self, z, a, xp):
        return xp.where(z > 0, 1, a + self.alpha)          # α(e^z − 1) + α = α e^z


class SELU(Elementwise):
    name = "selu"
    ALPHA = 1.6732632423543772848170429916717     # Klambauer et al.'s constants, as Keras writes them
    SCALE = 1.0507009873554804934193349852946

    def f(self, z, xp):
        return self.SCALE * xp.where(z > 0, z, self.ALPHA * xp.expm1(xp.minimum(z, 0)))

    def derivative(self, z, a, xp):
        return xp.where(z > 0, self.SCALE, a + self.SCALE * self.ALPHA)


def erf(z):
    """The error function, from SciPy (host) or CuPy's SciPy (device)."""
    if backend.is_gpu_array(z):
        from cupyx.scipy.special import erf as device_erf
        return device_erf(z)
    from scipy.special import erf as host_erf
    return host_erf(z)


class GELU(Elementwise):
    name = "gelu"
    TANH_SCALE = math.sqrt(2 / math.pi)

    def __init__(self, approximate=False):
        self.approximate = approximate

    def f(self, z, xp):
        if self.approximate:
            return 0.5 * z * (1 + xp.tanh(self.TANH_SCALE * (z + 0.044715 * z ** 3)))
        return 0.5 * z * (1 + erf(z / math.sqrt(2)))

    def derivative(self, z, a, xp):
        if self.approximate:
            t = xp.tanh(self.TANH_SCALE * (z + 0.044715 * z ** 3))
            return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * self.TANH_SCALE * (1 + 3 * 0.044715 * z * z)
        return 0.5 * (1 + erf(z / math.sqrt(2))) + z * xp.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


class Softplus(Elementwise):
    name = "softplus"

    def f(self, z, xp):
        return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))

    def derivative(self, z, a, xp):
        return stable_sigmoid(z)


class Softsign(Elementwise):
    name = "softsign"

    def f(self, z, xp):
        return z / (1 + xp.abs(z))

    def derivative(self, z, a, xp):
        return 1 / (1 + xp.abs(z)) ** 2


class SiLU(Elementwise):
    name = "silu"

    def f(self, z, xp):
        return z * stable_sigmoid(z)

    def derivative(self, z, a, xp):
        s = stable_sigmoid(z)
        return s * (1 + z * (1 - s))


class LeakyReLU(Elementwise):
    name = "leaky_relu"

    def __init__(self, negative_slope=0.2):
        self.negative_slope = negative_slope

    def f(self, z, xp):
        return xp.where(z > 0, z, self.negative_slope * z)

    def derivative(self, z, a, xp):
        return xp.where(z > 0, 1, self.negative_slope).astype(z.dtype)


class HardSigmoid(Elementwise):
    name = "hard_sigmoid"

    def f(self, z, xp):
        return xp.clip(z / 6 + 0.5, 0, 1)

    def derivative(self, z, a, xp):
        return ((z > -3) & (z < 3)).astype(z.dtype) / 6


class Exponential(Elementwise):
    name = "exponential"

    def f(self, z, xp):
        return xp.exp(z)

    def derivative(self, z, a, xp):
        return a


_BY_NAME = {"linear": Linear, "relu": ReLU, "sigmoid": Sigmoid, "softmax": Softmax, "tanh": Tanh, "elu": ELU,
            "selu": SELU, "gelu": GELU, "softplus": Softplus, "softsign": Softsign, "silu": SiLU,
            "swish": SiLU, "leaky_relu": LeakyReLU, "hard_sigmoid": HardSigmoid, "exponential": Exponential}


# Keras's function forms (``keras.activations.relu(x)``); also accepted as ``activation=``.
def linear(x):
    return x


def relu(x):
    return get_array_module(x).maximum(x, 0)


def sigmoid(x):
    return stable_sigmoid(x)


def softmax(x, axis=-1):
    xp = get_array_module(x)
    return xp.moveaxis(stable_softmax(xp.moveaxis(x, axis, -1)), -1, axis)


def get(name, who: str = "layer"):
    """A fresh activation object for ``name`` ('relu', 'tanh', ..., 'linear'/None), or ``name``
    itself when it is one already (a layer built around a parameterized activation)."""
    if name is None:
        return Linear()
    if isinstance(name, ActivationFunction):
        return name
    if callable(name) and getattr(name, "__module__", None) == __name__ and name.__name__ in _BY_NAME:
        name = name.__name__                         # activation=mc.activations.relu
    if isinstance(name, str) and name.lower() in _BY_NAME:
        return _BY_NAME[name.lower()]()
    raise ValueError(f"{who}: unknown activation {name!r}; expected one of "
                     f"{sorted(_BY_NAME)} or None")
