"""Optimizers with Keras 3's defaults and update rules, exactly.

For a parameter ``w`` with gradient ``g``, learning rate ``η`` and step ``t = 1, 2, …``:

* SGD:      ``m ← μ·m − η·g``;  ``w ← w + m``  (nesterov: ``w ← w + μ·m − η·g``);
  with ``μ = 0``: ``w ← w − η·g``.
* RMSprop:  ``v ← ρ·v + (1 − ρ)·g²``;  step ``s = η·g / sqrt(v + ε)`` (ε INSIDE the root);
  with momentum ``m ← μ·m + s, w ← w − m``, else ``w ← w − s``.
* Adam:     ``m ← m + (1 − β₁)(g − m)``;  ``v ← v + (1 − β₂)(g² − v)``;
  ``α = η·sqrt(1 − β₂ᵗ)/(1 − β₁ᵗ)`` (bias correction folded into the step size);
  ``w ← w − α·m / (sqrt(v) + ε)`` (ε OUTSIDE the root).

State (``slots``) is a dict per parameter, keyed ``(layer name, param key)``, so it can
be saved, loaded and moved between devices with the model.

A step is never half applied by Ctrl-C: ``apply`` runs with SIGINT deferred to its end
(``interrupts.py``), so the KeyboardInterrupt comes after the last parameter's update.

On the Numba kernels RMSprop (without momentum) and Adam update each large parameter in
one pass (``numba_optimizers.rmsprop_update`` / ``adam_update``: the same operations in the
same order, so the same bits, without the five temporaries of the NumPy expressions).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

from . import arguments
from .backend import get_array_module, on_numba_kernels
from .interrupts import interrupts_deferred


class Optimizer(ABC):
    name = "optimizer"
    slot_names: tuple = ()

    def __init__(self, learning_rate=0.001):
        self.learning_rate = learning_rate
        self.iterations = 0
        self.slots: dict = {}

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = arguments.positive(value, type(self).__name__, "learning_rate")

    def slots_for(self, key, w):
        if key not in self.slots:
            xp = get_array_module(w)
            self.slots[key] = {s: xp.zeros_like(w) for s in self.slot_names}
        return self.slots[key]

    def apply(self, params_and_grads):
        """One step over ``[(key, params_dict, param_name, grad), ...]`` (in place); a Ctrl-C
        during the step takes effect after it."""
        with interrupts_deferred():
            self.iterations += 1
            for key, params, pname, g in params_and_grads:
                w = params[pname]
                params[pname] = self.update(w, g, self.slots_for(key, w))

    def reset_state(self) -> None:
        """Back to a new optimizer's state: no slots, step count 0 (the learning rate stays)."""
        self.slots, self.iterations = {}, 0

    @abstractmethod
    def update(self, w, g, slots):
        """The new value of parameter ``w`` (updated in place) from gradient ``g`` and its slots."""

    def get_config(self) -> dict:
        return {"name": self.name, "learning_rate": self.learning_rate}


class SGD(Optimizer):
    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        self.momentum = arguments.fraction(momentum, "SGD", "momentum", closed=True)
        self.nesterov = bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum > 0 else ()

    def update(self, w, g, slots):
        lr = w.dtype.type(self.learning_rate)
        if self.momentum == 0:
            w -= lr * g
            return w
        m = slots["momentum"]
        m *= self.momentum
        m -= lr * g
        if self.nesterov:
            w += self.momentum * m - lr * g
        else:
            w += m
        return w

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7):
        super().__init__(learning_rate)
        self.rho = arguments.fraction(rho, "RMSprop", "rho")
        self.momentum = arguments.fraction(momentum, "RMSprop", "momentum", closed=True)
        self.epsilon = arguments.non_negative(epsilon, "RMSprop", "epsilon")
        self.slot_names = ("velocity", "momentum") if self.momentum > 0 else ("velocity",)

    def update(self, w, g, slots):
        xp = get_array_module(w)
        v = slots["velocity"]
        if self.momentum == 0 and _in_one_pass(w, v):
            from .kernels.numba_optimizers import rmsprop_update
            rmsprop_update(w, g, v, self.learning_rate, self.rho, self.epsilon)
            return w
        v *= self.rho
        v += (1 - self.rho) * g * g
        step = self.learning_rate * g / xp.sqrt(v + self.epsilon)
        if self.momentum > 0:
            m = slots["momentum"]
            m *= self.momentum
            m += step
            step = m
        w -= step.astype(w.dtype, copy=False)
        return w

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon}


class Adam(Optimizer):
    name = "adam"
    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate)
        self.beta_1 = arguments.fraction(beta_1, "Adam", "beta_1")
        self.beta_2 = arguments.fraction(beta_2, "Adam", "beta_2")
        self.epsilon = arguments.non_negative(epsilon, "Adam", "epsilon")

    def step_size(self, t=None):
        """α_t = η·sqrt(1 − β₂ᵗ) / (1 − β₁ᵗ): the effective learning rate at step t."""
        t = self.iterations if t is None else t
        return self.learning_rate * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)

    def update(self, w, g, slots):
        xp = get_array_module(w)
        m, v = slots["m"], slots["v"]
        if _in_one_pass(w, m, v):
            from .kernels.numba_optimizers import adam_update
            adam_update(w, g, m, v, self.step_size(), self.beta_1, self.beta_2, self.epsilon)
            return w
        m += (1 - self.beta_1) * (g - m)
        v += (1 - self.beta_2) * (g * g - v)
        w -= (self.step_size() * m / (xp.sqrt(v) + self.epsilon)).astype(w.dtype, copy=False)
        return w

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


ONE_PASS_FROM = 10**5     # parameter values; below, waking the kernel's threads costs more than the pass saves


def _in_one_pass(*arrays):
    """True when the update runs as one Numba kernel: the Numba kernels are selected, the
    parameter is large, and it and its slots are C-contiguous host arrays (updated through
    flat views)."""
    return (on_numba_kernels(arrays[0]) and arrays[0].size >= ONE_PASS_FROM
            and all(a.flags.c_contiguous for a in arrays))


_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam}


def get(optimizer):
    """An optimizer from an instance or a name ('sgd', 'rmsprop', 'adam': Keras defaults)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer()                          # optimizer=mc.optimizers.Adam
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        return _BY_NAME[optimizer.lower()]()
    raise ValueError(f"unknown optimizer {optimizer!r}; expected a minicnn.optimizers.Optimizer "
                     f"or one of {sorted(_BY_NAME)}")


def from_config(config: dict) -> Optimizer:
    config = dict(config)
    return _BY_NAME[config.pop("name")](**config)
