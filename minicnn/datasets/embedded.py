"""Small real data shipped inside the package, so the demo runs with no network.

* ``mnist_digits.npz``: the first 3,000 images of the MNIST **test** split (uint8,
  28×28) and their labels — the demo trains on the first 2,500 and tests on the last
  500.  (The MNIST training images are not available where this was built.)
* ``olivetti_faces.npz``: all 400 Olivetti faces as the original uint8 (4096, 400)
  matrix; ``load_olivetti`` applies scikit-learn's exact procedure to it.

Both are derived from the original files by ``build`` (a test checks the shipped
copies equal a fresh derivation).  Provenance and licences: see the README.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np

FOLDER = Path(__file__).parent / "embedded"
MNIST_COUNT = 3000


def load_mnist_digits():
    """(x uint8 (3000, 28, 28), y uint8 (3000,)) from the MNIST test split."""
    with np.load(FOLDER / "mnist_digits.npz") as f:
        return f["x"], f["y"]


def load_olivetti():
    """Like ``fetch_olivetti_faces()`` (unshuffled), from the shipped copy."""
    from .olivetti import faces_from_uint8
    with np.load(FOLDER / "olivetti_faces.npz") as f:
        images = faces_from_uint8(f["faces"])
    return SimpleNamespace(data=images.reshape(400, -1), images=images, target=np.arange(400) // 10)


def derive(data_dir=None):
    """{file name: {array name: array}} derived from the original data files."""
    from . import mnist
    from .matfile import loadmat
    from .files import fetch
    from .olivetti import FACES
    x, y = mnist.load_test(data_dir, download=False)
    faces = loadmat(fetch(FACES, data_dir, download=False))["faces"]
    return {"mnist_digits.npz": {"x": x[:MNIST_COUNT], "y": y[:MNIST_COUNT]},
            "olivetti_faces.npz": {"faces": np.ascontiguousarray(faces)}}


def build(data_dir=None, folder=FOLDER):
    """Write the embedded files (atomically) from the originals."""
    from ..saving import atomic_write_bytes
    os.makedirs(folder, exist_ok=True)
    for name, arrays in derive(data_dir).items():
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(Path(folder) / name, buf.getvalue())
