"""The optimizer microscope: per parameter tensor, the optimizer's moments and the
effective step over training.

* Adam: mean |m|, mean v, and the mean effective step |α_t · m / (sqrt(v) + ε)|;
* RMSprop: mean v and the mean effective learning rate η / sqrt(v + ε);
* SGD: the mean |momentum|.
"""
from __future__ import annotations

import numpy as np

from ..callbacks import Callback


def optimizer_state(optimizer):
    """{(layer, param): {statistic: value}} for the optimizer's current state."""
    out = {}
    for key, slots in optimizer.slots.items():
        stats = {}
        if optimizer.name == "adam":
            m, v = slots["m"], slots["v"]
            stats = {"mean |m|": float(np.abs(m).mean()), "mean v": float(v.mean()),
                     "effective step": float(np.abs(optimizer.step_size() * m / (np.sqrt(v) + optimizer.epsilon)).mean())}
        elif optimizer.name == "rmsprop":
            v = slots["velocity"]
            stats = {"mean v": float(v.mean()),
                     "effective lr": float((optimizer.learning_rate / np.sqrt(v + optimizer.epsilon)).mean())}
        elif "momentum" in slots:
            stats = {"mean |momentum|": float(np.abs(slots["momentum"]).mean())}
        out[key] = stats
    return out


class OptimizerMicroscope(Callback):
    """Records ``optimizer_state`` every ``every`` training steps into ``self.records``."""

    def __init__(self, every=1):
        self.every = every
        self.steps, self.records = [], []

    def on_train_batch_end(self, step, logs=None):
        iteration = self.model.optimizer.iterations
        if iteration % self.every == 0:
            self.steps.append(iteration)
            self.records.append(optimizer_state(self.model.optimizer))

    def plot(self):
        import matplotlib.pyplot as plt
        keys = list(self.records[0]) if self.records else []
        stats = list(self.records[0][keys[0]]) if keys else []
        fig, axes = plt.subplots(1, max(len(stats), 1), figsize=(4 * max(len(stats), 1), 3), squeeze=False)
        for ax, stat in zip(axes[0], stats):
            for key in keys:
                ax.plot(self.steps, [r[key][stat] for r in self.records], label="/".join(key))
            ax.set_yscale("log")
            ax.set_title(stat)
            ax.set_xlabel("step")
        if keys:
            axes[0, 0].legend(fontsize=6)
        return fig
