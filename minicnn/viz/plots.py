"""Figures for inspecting a model and its training (matplotlib, Agg; the math returns
arrays).  Every ``plot_*`` returns a Figure; ``save_figure`` writes and closes it, so
repeated calls do not accumulate figures."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..backend import to_numpy  # noqa: E402


def save_figure(fig, path=None, dpi=100) -> bytes:
    """Write ``fig`` as PNG to ``path`` (atomically) and/or return the bytes; closes it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        from ..saving import atomic_write_bytes
        atomic_write_bytes(path, data)
    return data


def stitch_images(images, cols, margin=2, fill=0.0):
    """A grid of ``images (n, h, w[, c])`` with ``cols`` per row and ``margin`` pixels between."""
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    rows = -(-n // cols)
    grid = np.full((rows * h + (rows - 1) * margin, cols * w + (cols - 1) * margin, *images.shape[3:]), fill,
                   dtype=np.result_type(images.dtype, np.asarray(fill).dtype))
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + margin):r * (h + margin) + h, c * (w + margin):c * (w + margin) + w] = img
    return grid


def normalize_channels(maps):
    """The tutorials' display normalization per channel: mean 0, std 64, +128, clip to 0–255."""
    maps = np.asarray(maps, dtype=np.float64)
    axes = tuple(range(maps.ndim - 1))
    centred = maps - maps.mean(axis=axes, keepdims=True)
    std = centred.std(axis=axes, keepdims=True)
    return np.clip(centred / np.where(std > 0, std, 1) * 64 + 128, 0, 255).astype(np.uint8)


def grid_shape(n, cols=None):
    """(rows, cols) of a grid for ``n`` panels: ``cols`` when given, else the divisor of
    ``n`` nearest above √n (24 → 6 × 4, 48 → 8 × 6, 64 → 8 × 8), so no row is left
    half empty; a prime ``n`` far from square gets ⌈√n⌉ columns."""
    if cols is None:
        root = int(np.ceil(np.sqrt(n)))
        cols = next((d for d in range(root, 2 * root + 1) if n % d == 0), root)
    cols = max(1, min(cols, n))
    return -(-n // cols), cols


def plot_filters(kernel, cols=None, title="first-layer filters"):
    """Kernels ``(kh, kw, c_in, f)``: grey with a symmetric range around 0 and its colour
    bar for one input channel (the Olivetti tutorial's ``plot_face`` style), RGB (each
    filter stretched to 0–1) for three."""
    kernel = to_numpy(kernel)
    kh, kw, cin, f = kernel.shape
    rows, cols = grid_shape(f, cols or (f if f <= 8 else None))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols + 1, 1.6 * rows + 0.6), squeeze=False,
                             layout="constrained")
    bound = np.abs(kernel).max() or 1.0
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= f:
            continue
        k = kernel[..., i]
        if cin == 3:
            ax.imshow((k - k.min()) / (np.ptp(k) or 1))
        else:
            shown = ax.imshow(k[..., 0], cmap="gray", vmin=-bound, vmax=bound, interpolation="nearest")
        ax.set_title(f"filter {i}", fontsize=8)
    if cin != 3:
        fig.colorbar(shown, ax=axes, shrink=0.8, label="weight")
    fig.suptitle(title)
    return fig


def plot_feature_maps(activation, images_per_row=None, title=None, image=None, scale=1.2):
    """The channels of one activation ``(h, w, c)`` (or ``(1, h, w, c)``) on one colour
    scale, its bar in activation units, in a grid of ``images_per_row`` columns (default:
    ``grid_shape``'s); ``image``, the input they were computed from, is shown on the left."""
    a = to_numpy(activation)
    a = a[0] if a.ndim == 4 else a
    h, w, c = a.shape
    rows, cols = grid_shape(c, images_per_row)
    extra = 0 if image is None else 1
    fig = plt.figure(figsize=(scale * (cols + 1.5 * extra) + 1, scale * rows * h / w + 0.7), layout="constrained")
    grid = fig.add_gridspec(rows, cols + extra, width_ratios=[1.5] * extra + [1] * cols)
    if image is not None:
        img = to_numpy(image)
        img = img[0] if img.ndim == 4 else img
        ax = fig.add_subplot(grid[:, 0])
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray")
        ax.set_title("input", fontsize=9)
        ax.axis("off")
    low, high = float(a.min()), float(a.max())
    axes = [fig.add_subplot(grid[r, extra + col]) for r in range(rows) for col in range(cols)]
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < c:
            shown = ax.imshow(a[..., i], cmap="viridis", vmin=low, vmax=high if high > low else low + 1)
            ax.set_title(str(i), fontsize=7, pad=2)
    fig.colorbar(shown, ax=axes, shrink=0.8, label="activation")
    fig.suptitle(title or f"{c} channels, {h}×{w}")
    return fig


def plot_activation_histograms(first: dict, second: dict, labels=("model A", "model B"), bins=50):
    """Pixel-value histograms of the same layers in two models (the CIFAR tutorial)."""
    names = list(first)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        for values, label in ((first[name], labels[0]), (second[name], labels[1])):
            ax.hist(to_numpy(values).ravel(), bins=bins, alpha=0.5, label=label, log=True)
        ax.set_title(name, fontsize=9)
    axes[0, 0].legend(fontsize=8)
    return fig


def plot_probabilities(probs, class_names=None, title="class probabilities"):
    """A bar chart of one softmax output, the top class highlighted."""
    probs = to_numpy(probs).ravel()
    names = class_names or [str(i) for i in range(len(probs))]
    fig = plt.figure(figsize=(max(4, 0.5 * len(probs)), 2.6))
    colors = ["tab:orange" if i == probs.argmax() else "tab:blue" for i in range(len(probs))]
    plt.bar(range(len(probs)), probs, color=colors)
    long_names = len(probs) > 10 or max(len(n) for n in names) > 4
    plt.xticks(range(len(probs)), names, rotation=45 if long_names else 0, ha="right" if long_names else "center",
               fontsize=8)
    plt.ylim(0, 1)
    plt.title(title)
    fig.tight_layout()
    return fig


def plot_history(history, metrics=None):
    """Training vs validation curves from a ``History`` (or its ``.history`` dict)."""
    h = getattr(history, "history", history)
    metrics = metrics or [k for k in h if not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3), squeeze=False)
    for ax, key in zip(axes[0], metrics):
        epochs = np.arange(1, len(h[key]) + 1)
        ax.plot(epochs, h[key], "o-", label=f"training {key}")
        if f"val_{key}" in h:
            ax.plot(epochs, h[f"val_{key}"], "s--", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend(fontsize=8)
    return fig


def confusion_matrix(y_true, y_pred, num_classes):
    """``cm[t, p]`` = number of samples of true class ``t`` predicted as ``p``."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def plot_confusion_matrix(cm, class_names=None, title=None):
    """``cm[t, p]`` as a heat map, each count written in its cell; titled by default with
    the accuracy it implies (the diagonal's share) and the number of images."""
    k = len(cm)
    names = class_names or [str(i) for i in range(k)]
    fig = plt.figure(figsize=(0.5 * k + 2, 0.5 * k + 1.5))
    plt.imshow(cm, cmap="Blues")
    for t in range(k):
        for p in range(k):
            plt.text(p, t, str(cm[t, p]), ha="center", va="center", fontsize=7,
                     color="white" if cm[t, p] > cm.max() / 2 else "black")
    long_names = max(len(n) for n in names) > 2
    plt.xticks(range(k), names, rotation=45 if long_names else 0, fontsize=8)
    plt.yticks(range(k), names, fontsize=8)
    plt.xlabel("predicted class")
    plt.ylabel("true class")
    total = int(np.sum(cm))
    plt.title(title or f"accuracy {np.trace(cm) / max(total, 1):.4f} on {total:,} images")
    return fig


def plot_misclassified(x, y_true, y_pred, max_images=16, class_names=None):
    """A grid of misclassified images titled "pred (true: y)"."""
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))[:max_images]
    name = (lambda i: class_names[i]) if class_names else str
    cols = min(8, max(len(wrong), 1))
    rows = max(-(-len(wrong) // cols), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.7 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        img = np.asarray(x[i])
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray")
        ax.set_title(f"{name(int(y_pred[i]))} (true: {name(int(y_true[i]))})", fontsize=7)
    fig.suptitle(f"{len(np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred)))} misclassified")
    return fig


def plot_per_class_errors(y_true, y_pred, num_classes, class_names=None):
    errors = np.bincount(np.asarray(y_true)[np.asarray(y_true) != np.asarray(y_pred)], minlength=num_classes)
    fig = plt.figure(figsize=(max(4, 0.5 * num_classes), 2.6))
    plt.bar(range(num_classes), errors)
    plt.xticks(range(num_classes), class_names or range(num_classes), fontsize=8)
    plt.title("errors per true class")
    return fig


def plot_image_grid(images, titles=None, cols=8, cmap="gray", suptitle=None):
    """Images ``(h, w[, c])`` (a batch or a list of any sizes) in a grid with optional titles."""
    n = len(images)
    cols = min(cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        img = to_numpy(images[i])
        ax.imshow(img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img, cmap=cmap)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig
