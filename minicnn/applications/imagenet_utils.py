"""ImageNet pre- and post-processing as Keras's ``applications`` do it.

``preprocess_input`` in Keras's three modes, for channels-last images in [0, 255]:

* ``caffe`` (VGG16/VGG19, ResNet50): RGB → BGR, then minus the ImageNet mean per
  channel ``(103.939, 116.779, 123.68)`` (B, G, R);
* ``tf`` (Xception, InceptionV3): ``x / 127.5 − 1`` (to [−1, 1]);
* ``torch``: ``x / 255``, minus mean ``(0.485, 0.456, 0.406)``, over std ``(0.229, 0.224, 0.225)``.

``decode_predictions`` maps class scores to ``(wordnet id, name, score)`` with Keras's
``imagenet_class_index.json`` (through ``get_file``).
"""
from __future__ import annotations

import json

import numpy as np

from .. import backend
from ..utils import get_file

CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"


def preprocess_input(x, data_format=None, mode="caffe"):
    """A new float array (Keras modifies a float NumPy input in place; minicnn never does)."""
    x = np.array(x, dtype=backend.floatx() if np.asarray(x).dtype.kind != "f" else None)
    if x.shape[-1] != 3:
        raise ValueError(f"preprocess_input: expected RGB images with 3 channels last, received shape {x.shape}")
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        return (x / 255.0 - np.array([0.485, 0.456, 0.406], x.dtype)) / np.array([0.229, 0.224, 0.225], x.dtype)
    if mode != "caffe":
        raise ValueError(f"preprocess_input: mode must be 'caffe', 'tf' or 'torch', received {mode!r}")
    return x[..., ::-1] - np.array([103.939, 116.779, 123.68], dtype=x.dtype)


def decode_predictions(preds, top=5):
    """For each row of ``preds (n, 1000)``: the ``top`` classes as (id, name, score), best first."""
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(f"decode_predictions: expected a batch of 1000 ImageNet scores, shape (n, 1000), "
                         f"received {preds.shape}")
    with open(get_file("imagenet_class_index.json", CLASS_INDEX_URL, cache_subdir="models",
                       file_hash=CLASS_INDEX_MD5)) as f:
        index = json.load(f)
    return [[(*index[str(i)], float(row[i])) for i in np.argsort(row)[::-1][:top]] for row in preds]
