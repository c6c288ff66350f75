"""Folders of images, one sub-folder per class (``train/cats/*.jpg``, ``train/dogs/*.jpg``).

``image_dataset_from_directory`` follows Keras: classes are the sorted sub-folder
names; files are listed in sorted order, shuffled once with ``seed`` when ``shuffle``,
and ``validation_split`` takes the last ``int(split · n)`` of that order for the
'validation' subset.  Images are decoded with Pillow, converted to RGB (or grayscale)
and resized (bilinear) to ``image_size``; batches are float32 in [0, 255].  The result
is a sequence of ``(x, y)`` batches that ``fit`` and ``evaluate`` accept directly.
"""
from __future__ import annotations

import math
import os

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
LABEL_MODES = ("int", "categorical", "binary", None)


def index_directory(directory, classes=None):
    """(file paths, int labels, class names) for a folder of class sub-folders."""
    if not os.path.isdir(directory):
        raise ValueError(f"{directory}: not a directory")
    names = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
    if classes is not None:
        missing = sorted(set(classes) - set(names))
        if missing:
            raise ValueError(f"{directory}: class folders {missing} not found; found {names}")
        names = list(classes)
    paths, labels = [], []
    for label, name in enumerate(names):
        for root, _, files in sorted(os.walk(os.path.join(directory, name))):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.join(root, f))
                    labels.append(label)
    if not paths:
        raise ValueError(f"{directory}: no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders {names}")
    return paths, np.array(labels), names


def load_image(path, size, color_mode="rgb"):
    """(h, w, c) float32 in [0, 255], resized bilinearly to ``size`` = (h, w)."""
    from PIL import Image
    try:
        with Image.open(path) as img:
            img = img.convert("L" if color_mode == "grayscale" else "RGB")
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
            array = np.asarray(img, dtype=np.float32)
    except OSError as exc:
        raise ValueError(f"{path}: cannot decode image ({exc})") from None
    return array[..., None] if array.ndim == 2 else array


def encode_labels(labels, mode, num_classes):
    if mode == "int":
        return labels.astype(np.int64)
    if mode == "categorical":
        return np.eye(num_classes, dtype=np.float32)[labels]
    if mode == "binary":
        if num_classes != 2:
            raise ValueError(f"label_mode='binary' needs exactly 2 classes, found {num_classes}")
        return labels.astype(np.float32).reshape(-1, 1)
    return None


def split_indices(n, validation_split, subset):
    if not validation_split:
        return np.arange(n)
    num_val = int(validation_split * n)
    return np.arange(n - num_val) if subset == "training" else np.arange(n - num_val, n)


class ImageFolderBatches:
    """Batches of images read from disk on demand; ``len()`` batches per epoch."""

    def __init__(self, paths, labels, class_names, image_size, batch_size, label_mode, color_mode,
                 shuffle, seed, transform=None):
        self.file_paths, self.labels, self.class_names = list(paths), np.asarray(labels), class_names
        self.image_size, self.batch_size = tuple(image_size), batch_size
        self.label_mode, self.color_mode, self.shuffle = label_mode, color_mode, shuffle
        self.rng = np.random.default_rng(seed)
        self.transform = transform
        self.order = np.arange(len(self.file_paths))

    def __len__(self):
        return math.ceil(len(self.file_paths) / self.batch_size)

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(len(self.file_paths))

    def __getitem__(self, i):
        if i >= len(self):
            raise IndexError(i)
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        x = np.stack([load_image(self.file_paths[j], self.image_size, self.color_mode) for j in idx])
        if self.transform is not None:
            x = self.transform(x)
        y = encode_labels(self.labels[idx], self.label_mode, len(self.class_names))
        return (x, y) if y is not None else (x, None)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
        self.on_epoch_end()


def image_dataset_from_directory(directory, label_mode="int", class_names=None, color_mode="rgb",
                                 batch_size=32, image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None):
    """Keras's ``image_dataset_from_directory`` (labels inferred from sub-folders)."""
    if label_mode not in LABEL_MODES:
        raise ValueError(f"image_dataset_from_directory: label_mode must be one of {LABEL_MODES}, "
                         f"received {label_mode!r}")
    if validation_split and subset not in ("training", "validation", "both"):
        raise ValueError("image_dataset_from_directory: with validation_split, subset must be 'training', "
                         f"'validation' or 'both', received {subset!r}")
    if shuffle and validation_split and seed is None:
        raise ValueError("image_dataset_from_directory: validation_split with shuffle needs a seed, so the "
                         "training and validation subsets do not overlap")
    paths, labels, names = index_directory(directory, class_names)
    if shuffle:
        order = np.random.RandomState(seed).permutation(len(paths))
        paths, labels = [paths[i] for i in order], labels[order]

    def make(which):
        keep = split_indices(len(paths), validation_split, which)
        return ImageFolderBatches([paths[i] for i in keep], labels[keep], names, image_size, batch_size,
                                  label_mode, color_mode, shuffle, seed)
    if subset == "both":
        return make("training"), make("validation")
    return make(subset)
