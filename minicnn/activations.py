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
softmax    a_k = e^{z_k} / Σ_j e^{z_j}  dz = a ⊙ (da − Σ_k da_k a_k)   (last axis)
=========  ===========================  =======================================

The ReLU backward has two more *rules* used by the visualizations: ``'deconvnet'``
(Zeiler & Fergus: rectify the backward signal, ``dz = max(da, 0)``) and ``'guided'``
(guided backpropagation: both gates, ``dz = da · [z > 0] · [da > 0]``).
"""
from __future__ import annotations

import numpy as np

from . import backend
from .backend import get_array_module
from .kernels.epilogue import relu_backward_bias_grad


class ActivationFunction:
    """``forward(z)``: a = act(z).  ``epilogue``: "linear" or "relu" when a weighted layer's
    kernels can apply this activation, with the bias, as they write the layer's output (the
    fused epilogue, ``kernels/epilogue.py``); the layer then hands the result to ``kept(a)``,
    which keeps what backward needs.  ``backward(da)`` returns ∂L/∂z;
    ``backward_with_bias_grad(da)`` returns (∂L/∂z, ∂L/∂bias = Σ of ∂L/∂z over all axes
    but the last) where one pass computes both, else (∂L/∂z, None): the layer sums ∂L/∂bias
    itself.  ``release()`` drops what the last forward kept.  ``workspace``: its layer's
    (``kernels/workspace.py``), which a layer hands its activation; without one every result is
    a new array."""

    epilogue = None
    out = logits = mask = workspace = None

    def release(self):
        self.out = self.logits = self.mask = None

    def backward_with_bias_grad(self, da):
        return self.backward(da), None


class Linear(ActivationFunction):
    name = epilogue = "linear"

    def forward(self, z):
        self.logits = z
        return z

    kept = forward

    def backward(self, da):
        return da


class ReLU(ActivationFunction):
    name = epilogue = "relu"
    RULES = ("gradient", "deconvnet", "guided")

    def __init__(self):
        self.rule = "gradient"

    def kept(self, a):
        """a, rectified by the layer's kernels, stands in for the mask (a > 0 exactly where
        z > 0); the pre-activation is not kept (``logits`` is None)."""
        self.out, self.mask, self.logits = a, None, None
        return a

    def forward(self, z):
        self.mask = z > 0
        self.logits, self.out = z, None
        return z * self.mask

    def backward(self, da):
        if self.rule == "deconvnet":
            return da * (da > 0)
        if self.mask is None:                  # kept: the output is the mask
            return relu_backward_from_output(da, self.out, self.rule == "guided", self._dz_buffer(da))
        if self.rule == "gradient":
            return da * self.mask
        return da * (self.mask & (da > 0))     # guided

    def backward_with_bias_grad(self, da):
        if self.rule == "gradient" and self.mask is None:
            return relu_backward_bias_grad(da, self.out, self._dz_buffer(da))
        return super().backward_with_bias_grad(da)

    def _dz_buffer(self, da):
        return None if self.workspace is None else self.workspace.reusable("dz", da.shape, da.dtype, like=da)


def relu_backward_from_output(da, out, guided=False, dz=None):
    """da · [out > 0] (· [da > 0] when guided), fused in one pass by the Numba kernel;
    written into ``dz`` when given."""
    if backend.is_gpu_array(da) and not guided:
        from .kernels import cuda_kernels
        return cuda_kernels.activation_backward(da, out, "relu", dz)
    if guided or backend.get_kernels() != "numba":
        keep = out > 0
        return get_array_module(da).multiply(da, keep & (da > 0) if guided else keep, out=dz)
    from .kernels.numba_kernels import relu_backward
    dz = np.empty(da.shape, da.dtype) if dz is None else dz    # C-contiguous: the kernel writes through a view
    relu_backward(np.ascontiguousarray(da).reshape(-1), out.reshape(-1), dz.reshape(-1))
    return dz


def stable_sigmoid(z):
    """1 / (1 + e^{−z}) without overflow: uses e^{−|z|} on both branches."""
    xp = get_array_module(z)
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def stable_softmax(z):
    """e^{z − max z} / Σ e^{z − max z} along the last axis."""
    xp = get_array_module(z)
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Sigmoid(ActivationFunction):
    name = "sigmoid"

    def forward(self, z):
        self.logits = z
        self.out = stable_sigmoid(z)
        return self.out

    def backward(self, da):
        return da * self.out * (1 - self.out)


class Softmax(ActivationFunction):
    name = "softmax"

    def forward(self, z):
        self.logits = z
        self.out = stable_softmax(z)
        return self.out

    def backward(self, da):
        s = self.out                            # Jacobian-vector product of softmax
        return s * (da - (da * s).sum(axis=-1, keepdims=True))


_BY_NAME = {"linear": Linear, "relu": ReLU, "sigmoid": Sigmoid, "softmax": Softmax}


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
    """A fresh activation object for ``name`` ('relu', 'sigmoid', 'softmax', 'linear'/None)."""
    if name is None:
        return Linear()
    if callable(name) and getattr(name, "__module__", None) == __name__ and name.__name__ in _BY_NAME:
        name = name.__name__                         # activation=mc.activations.relu
    if isinstance(name, str) and name.lower() in _BY_NAME:
        return _BY_NAME[name.lower()]()
    raise ValueError(f"{who}: unknown activation {name!r}; expected one of "
                     f"{sorted(_BY_NAME)} or None")
