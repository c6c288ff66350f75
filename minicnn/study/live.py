"""A live view of training, in the spirit of ConvNetJS.

``LiveView(path, sample, every=N)`` is a ``fit`` callback that, every N steps, rewrites a
self-contained HTML page (atomically; it reloads itself every ``refresh`` seconds) with:
the loss curve; for a fixed sample, each layer's activations and activation gradients;
the first-layer filters; and each layer's weight-gradient histogram.  Open the file in
a browser while ``fit`` runs; no server is needed.  Inside Jupyter the same page is
shown in the notebook and updated in place.
"""
from __future__ import annotations

import html
import time

import numpy as np

from ..callbacks import Callback
from ..layers import Conv2D
from ..saving import atomic_write_bytes


def _in_notebook():
    try:
        from IPython import get_ipython
        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:
        return False


class LiveView(Callback):
    def __init__(self, path, sample, every=10, refresh=2):
        self.path, self.sample, self.every, self.refresh = str(path), np.asarray(sample)[:1], every, refresh
        self.losses, self.step, self.updates, self.handle = [], 0, 0, None

    def on_train_batch_end(self, step, logs=None):
        self.step += 1
        self.losses.append(float((logs or {}).get("loss", np.nan)))
        if self.step % self.every == 0:
            self.update()

    def on_train_end(self, logs=None):
        self.update()

    def sections(self, weight_grads):
        """[(title, html)]; ``weight_grads`` are the last training step's kernel gradients."""
        from ..viz import plots
        from ..viz.report import png_tag
        model = self.model
        loss_fig = plots.plt.figure(figsize=(5, 2.5))
        plots.plt.plot(np.arange(1, len(self.losses) + 1), self.losses)
        plots.plt.xlabel("step")
        plots.plt.ylabel("loss")
        parts = [("Loss", png_tag(loss_fig, "loss"))]
        acts, grads = self.activations_and_gradients()
        for title, maps, prefix in (("Activations for a fixed sample", acts, ""),
                                    ("Activation gradients (of the mean output)", grads, "∂/∂ ")):
            figures = [png_tag(plots.plot_feature_maps(a, images_per_row=16, title=f"{prefix}{layer.name}", scale=0.6),
                               f"{prefix}{layer.name}") for layer, a in zip(self.plotted, maps)
                       if a.ndim == 4]
            parts.append((title, "".join(figures)))
        convs = [layer for layer in model.flat_layers() if isinstance(layer, Conv2D)]
        if convs:
            parts.append(("First-layer filters", png_tag(plots.plot_filters(convs[0].params["kernel"]), "filters")))
        if weight_grads:
            parts.append(("Weight-gradient histograms (last training step)",
                          png_tag(self.gradient_histograms(weight_grads), "weight gradients")))
        return parts

    @staticmethod
    def gradient_histograms(weight_grads):
        from ..viz import plots
        fig, axes = plots.plt.subplots(1, len(weight_grads), figsize=(2.5 * len(weight_grads), 2), squeeze=False)
        for ax, (name, values) in zip(axes[0], weight_grads.items()):
            ax.hist(np.asarray(values).ravel(), bins=40)
            ax.set_title(name, fontsize=7)
        return fig

    def activations_and_gradients(self):
        """Each layer's output for the fixed sample (nested models' layers too, each nested
        model after its layers; they are ``self.plotted``), and ∂S/∂(that output) for S =
        the mean output of the last layer — one forward and one backward sweep."""
        model = self.model
        outputs = [(layer, a.copy()) for layer, a in model.layer_outputs(self.sample)]
        self.plotted = [layer for layer, _ in outputs]
        last = outputs[-1][1]
        steps = []
        model.backward(np.ones_like(last) / last.size, top=self.plotted[-1], record=steps)
        grads = {id(t): dy for step, dys, _ in steps for t, dy in zip(step.outputs, dys)}
        return [a for _, a in outputs], [grads.get(id(model.tensor_of(layer)), np.zeros_like(a))
                                         for layer, a in outputs]

    def update(self):
        # read the training step's gradients before the view's own backward overwrites them
        saved = {layer.name: dict(layer.grads) for layer in self.model.flat_layers() if getattr(layer, "grads", None)}
        weight_grads = {f"{name}/kernel": g["kernel"] for name, g in saved.items() if "kernel" in g}
        body = "".join(f"<h2>{html.escape(t)}</h2>{c}" for t, c in self.sections(weight_grads))
        for layer in self.model.flat_layers():                 # leave the training gradients in place
            if layer.name in saved:
                layer.grads = saved[layer.name]
        self.updates += 1
        page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><meta http-equiv='refresh' "
                f"content='{self.refresh}'><title>minicnn live: step {self.step}</title></head><body>"
                f"<h1>minicnn live view — step <span id='step'>{self.step}</span>, update {self.updates}, "
                f"{time.strftime('%H:%M:%S')}</h1>{body}</body></html>")
        atomic_write_bytes(self.path, page.encode())
        if _in_notebook():
            from IPython.display import HTML, display
            if self.handle is None:
                self.handle = display(HTML(page), display_id=True)
            else:
                self.handle.update(HTML(page))
