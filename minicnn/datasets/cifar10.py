"""CIFAR-10 from the "python version" archive (``cifar-10-python.tar.gz``).

``load_data() -> (x_train, y_train), (x_test, y_test)``: uint8 (50000, 32, 32, 3) and
(10000, 32, 32, 3); labels uint8 of shape (n, 1) — Keras's shapes.  The batches are
Python pickles; they are read with an unpickler that accepts only the builtin
containers and NumPy's array reconstruction (never arbitrary code), then checked:
only the expected keys, a (10000, 3072) uint8 ``data`` array and 10000 labels in 0–9.
"""
from __future__ import annotations

import io
import pickle
import tarfile

import numpy as np

from .files import RemoteFile, fetch

ARCHIVE = RemoteFile("cifar10", "cifar-10-python.tar.gz", "md5:c58f30108f718f92721af3b95e74349a",
                     ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",), 170498071)
TRAIN = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
TEST = ["cifar-10-batches-py/test_batch"]
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_ALLOWED = {("builtins", "dict"), ("builtins", "list"), ("numpy", "ndarray"), ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("_codecs", "encode")}   # how Python 3 pickles bytes at protocol 2; harmless


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        return super().find_class(module, name)


def read_batch(raw: bytes, where: str):
    """(x (n, 32, 32, 3) uint8, y (n, 1) uint8) from one pickled batch."""
    try:
        batch = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:
        raise ValueError(f"{where}: not a CIFAR-10 batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{where}: expected a dict with b'data' and b'labels'")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{where}: b'data' must be a uint8 (n, 3072) array, found "
                         f"{getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')}")
    if labels.shape != (len(data),) or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{where}: expected {len(data)} labels in 0..9, found shape {labels.shape}")
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)      # stored channel-planar: CHW -> HWC
    return np.ascontiguousarray(x), labels.astype(np.uint8).reshape(-1, 1)


def load_data(data_dir=None, download=True):
    path = fetch(ARCHIVE, data_dir, download)
    parts = []
    with tarfile.open(path, "r:gz") as tar:
        for names in (TRAIN, TEST):
            batches = []
            for name in names:
                member = tar.extractfile(name)
                if member is None:
                    raise ValueError(f"{path}: missing {name}")
                batches.append(read_batch(member.read(), f"{path}:{name}"))
            parts.append((np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])))
    return tuple(parts)
