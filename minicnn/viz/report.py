"""One self-contained HTML page for a trained model: summary, training curves, filters,
feature maps, activation maximization, Grad-CAM, confusion matrix, misclassified
examples.  Images are embedded as base64 PNG; the page loads nothing else."""
from __future__ import annotations

import base64
import html

import numpy as np

from ..inline import layers_in_order
from ..layers import Conv2D
from . import attribution, maximize, plots

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
         "img{max-width:100%;border:1px solid #ddd;margin:4px 0}pre{background:#f6f6f6;padding:1em;"
         "overflow-x:auto;font-size:12px}h2{border-bottom:1px solid #ccc}")


def png_tag(fig_or_bytes, alt, path=None):
    data = fig_or_bytes if isinstance(fig_or_bytes, bytes) else plots.save_figure(fig_or_bytes, path)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def report_sections(model, x, y, history=None, class_names=None, figures_dir=None, max_filters=8):
    """[(title, html)]; PNG copies go to ``figures_dir`` when given."""
    def fig(figure, name):
        path = None if figures_dir is None else f"{figures_dir}/{name}.png"
        return png_tag(figure, name, path)

    sections = [("Model summary", f"<pre>{html.escape(model.summary(print_fn=None))}</pre>")]
    if history is not None:
        sections.append(("Training curves", fig(plots.plot_history(history), "training_curves")))
    convs = [layer for layer in layers_in_order(model) if isinstance(layer, Conv2D)]
    if convs:
        sections.append(("First-layer filters", fig(plots.plot_filters(convs[0].params["kernel"]), "filters")))
        acts = model.intermediate_outputs(x[:1], convs)
        sections.append(("Feature maps of the first test image", "".join(
            fig(plots.plot_feature_maps(a, title=f"{c.name}: {a.shape[-1]} maps, {a.shape[1]}×{a.shape[2]}, after "
                                                 f"its activation", image=x[0]), f"feature_maps_{c.name}")
            for c, a in zip(convs, acts))))
        layer = convs[-1]
        count = min(max_filters, layer.filters)
        images, _ = maximize.maximize(model, layer, list(range(count)), steps=30,
                                      modifiers=[maximize.Jitter(1)], seed=0)
        sections.append((f"Filter patterns of {layer.name} (activation maximization)",
                         fig(plots.plot_image_grid([maximize.deprocess_image(i) for i in images],
                                                   titles=list(range(count))), "filter_patterns")))
    probs = model.predict(x)
    predicted = probs.argmax(axis=1) if probs.shape[-1] > 1 else (probs[:, 0] > 0.5).astype(int)
    true = np.asarray(y).reshape(len(y), -1).argmax(axis=1) if np.ndim(y) > 1 and np.shape(y)[-1] > 1 \
        else np.asarray(y).reshape(-1).astype(int)
    if convs:
        k = min(8, len(x))
        cams = attribution.grad_cam(model, x[:k], predicted[:k] if probs.shape[-1] > 1 else 0)
        overlays = [attribution.overlay(x[i], cams[i]) for i in range(k)]
        name = (lambda i: class_names[i]) if class_names else str
        sections.append(("Grad-CAM: where the evidence for the predicted class lies", fig(plots.plot_image_grid(
            overlays, titles=[f"true {name(int(t))}, pred {name(int(p))}" for t, p in zip(true[:k], predicted[:k])]),
            "grad_cam")))
    num_classes = max(probs.shape[-1], 2)
    accuracy = float((predicted == true).mean())
    cm = plots.confusion_matrix(true, predicted, num_classes)
    sections.append((f"Confusion matrix: accuracy {accuracy:.4f} on {len(x)} images",
                     fig(plots.plot_confusion_matrix(cm, class_names), "confusion_matrix")))
    sections.append(("Misclassified examples", fig(plots.plot_misclassified(x, true, predicted,
                                                                            class_names=class_names),
                                                   "misclassified")))
    return sections


def render(title, sections) -> str:
    body = "".join(f"<h2>{html.escape(t)}</h2>\n{content}\n" for t, content in sections)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}</body></html>")


def report(model, x, y, path, history=None, title=None, class_names=None, figures_dir=None, extra_sections=()):
    """Write the report for ``model`` on ``(x, y)`` to ``path`` (atomically); returns the path."""
    from ..saving import atomic_write_bytes
    sections = report_sections(model, x, y, history, class_names, figures_dir) + list(extra_sections)
    atomic_write_bytes(path, render(title or f"minicnn report: {model.name}", sections).encode())
    return path
