"""The Olivetti / AT&T faces: 400 grey 64×64 images, 10 of each of 40 people.

``fetch_olivetti_faces`` returns exactly what scikit-learn's does, value for value:
``faces.T`` of the MAT-file as float32, minus its minimum, divided by its maximum,
reshaped to (400, 64, 64) with each image transposed; ``target[i] = i // 10``; with
``shuffle=True`` the order is ``numpy.random.RandomState(random_state).permutation(400)``.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .files import RemoteFile, fetch
from .matfile import loadmat

FACES = RemoteFile("olivetti", "olivettifaces.mat",
                   "sha256:b1988d02c72fe5b8ee82b5ef3bb7982eafc74f1e1ff0ae0ade35061ad0af534d",
                   ("https://ndownloader.figshare.com/files/5976027",), 1432511)


def faces_from_uint8(raw):
    """scikit-learn's procedure on the (4096, 400) uint8 matrix -> (400, 64, 64) float32."""
    faces = np.float32(raw.T)
    faces = faces - faces.min()
    faces /= faces.max()
    return faces.reshape((400, 64, 64)).transpose(0, 2, 1)


def fetch_olivetti_faces(data_dir=None, shuffle=False, random_state=0, download=True):
    path = fetch(FACES, data_dir, download)
    raw = loadmat(path).get("faces")
    if raw is None or raw.shape != (4096, 400):
        raise ValueError(f"{path}: expected a 'faces' matrix of shape (4096, 400), found "
                         f"{None if raw is None else raw.shape}")
    images = faces_from_uint8(raw)
    target = np.arange(400) // 10
    if shuffle:
        order = np.random.RandomState(random_state).permutation(len(images))
        images, target = images[order], target[order]
    return SimpleNamespace(data=images.reshape(len(images), -1), images=images, target=target,
                           DESCR="Olivetti faces (AT&T Laboratories Cambridge), 40 people x 10 images")
