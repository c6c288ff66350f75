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

    def sections(self):
        from ..viz import plots
        from ..viz.report import png_tag
        model = self.model
        loss_fig = plots.plt.figure(figsize=(5, 2.5))
        plots.plt.plot(np.arange(1, len(self.losses) + 1), self.losses)
        plots.plt.xlabel("step")
        plots.plt.ylabel("loss")
        parts = [("Loss", png_tag(loss_fig, "loss"))]
        acts = model.intermediate_outputs(self.sample, [layer.name for layer in model.layers])
        per_layer = []
        for layer, act in zip(model.layers, acts):
            if act.ndim == 4:
                per_layer.append(png_tag(plots.plot_feature_maps(act, images_per_row=16, title=layer.name, scale=0.6),
                                         f"activations {layer.name}"))
        parts.append(("Activations for a fixed sample", "".join(per_layer)))
        grad_figs = []
        for name, gi in self.activation_gradients():
            if gi.ndim == 4:
                grad_figs.append(png_tag(plots.plot_feature_maps(gi, images_per_row=16, title=f"∂/∂ {name}", scale=0.6),
                                         f"gradients {name}"))
        parts.append(("Activation gradients (of the mean output)", "".join(grad_figs)))
        convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
        if convs:
            parts.append(("First-layer filters", png_tag(plots.plot_filters(convs[0].params["kernel"]), "filters")))
        hist = {f"{layer.name}/{k}": g for layer in model.layers for k, g in getattr(layer, "grads", {}).items() if k == "kernel"}
        if hist:
            fig, axes = plots.plt.subplots(1, len(hist), figsize=(2.5 * len(hist), 2), squeeze=False)
            for ax, (name, values) in zip(axes[0], hist.items()):
                ax.hist(np.asarray(values).ravel(), bins=40)
                ax.set_title(name, fontsize=7)
            parts.append(("Weight-gradient histograms (last training step)", png_tag(fig, "weight gradients")))
        return parts

    def activation_gradients(self):
        """[(layer name, ∂S/∂(output of that layer))] for S = the mean model output on the sample."""
        model = self.model
        out = model.forward(self.sample)
        grad = np.ones_like(out) / out.size
        result = []
        for layer in reversed(model.layers):
            result.append((layer.name, grad))
            grad = layer.backward(grad)
        return result[::-1]

    def update(self):
        saved = {layer.name: dict(layer.grads) for layer in self.model.layers if getattr(layer, "grads", None)}
        body = "".join(f"<h2>{html.escape(t)}</h2>{c}" for t, c in self.sections())
        for layer in self.model.layers:                        # the view's backward must not leak
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
