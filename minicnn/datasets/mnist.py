"""MNIST: ``load_data() -> (x_train, y_train), (x_test, y_test)``, uint8 arrays of shape
(n, 28, 28) and (n,), as Keras returns them; ``load_test()`` for the test split alone."""
from __future__ import annotations

from .files import RemoteFile, fetch
from .idx import read_idx

MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "md5:d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "md5:9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "md5:ec29112dd5afa0611ce80d1b7f02629c"),
}
FASHION_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "md5:cf8536b0aa1a6ac5fa3f23001093305c"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "md5:10bea18fdb374794d4bb42e356e600c9"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "md5:f78720b4224f21cce2f2ccf2d7a94c9a"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "md5:0d30e22e447f3c33dab9ed536400ac01"),
}


def _remote(dataset, files, urls, key):
    name, checksum = files[key]
    return RemoteFile(dataset, name, checksum, tuple(u + name for u in urls))


def load_idx_splits(dataset, files, urls, data_dir, download, parts=("train", "test")):
    """(x, y) of each of ``parts`` of an IDX data set (MNIST's file layout), fetched or read from ``data_dir``."""
    out = []
    for part in parts:
        x = read_idx(fetch(_remote(dataset, files, urls, f"{part}_images"), data_dir, download), 3)
        y = read_idx(fetch(_remote(dataset, files, urls, f"{part}_labels"), data_dir, download), 1)
        if len(x) != len(y):
            raise ValueError(f"{dataset} {part}: {len(x)} images but {len(y)} labels")
        out.append((x, y))
    return tuple(out)


class MNISTTrainingImagesMissing(FileNotFoundError):
    """The MNIST training images are not available here (the test split may be)."""


def load_data(data_dir=None, download=True):
    """MNIST, the full 60,000 / 10,000 split.

    Where the training images are unavailable (offline, and not in ``data_dir`` /
    ``MINICNN_DATA`` / the cache) this raises ``MNISTTrainingImagesMissing`` saying so;
    ``load_mnist_test`` still gives the test split.
    """
    try:
        return load_idx_splits("mnist", MNIST_FILES, MNIST_URLS, data_dir, download)
    except FileNotFoundError as exc:
        if MNIST_FILES["train_images"][0] in str(exc):
            raise MNISTTrainingImagesMissing(
                "The MNIST training images (train-images-idx3-ubyte.gz, 9,912,422 bytes, md5 "
                "f68b3c2dcbeaaa9fbdd348bbdeb94873) are not available: " + str(exc) +
                " Only the test split can be used (minicnn.datasets.mnist.load_test()); "
                "Fashion-MNIST has the same format and a full training split.") from None
        raise


def load_test(data_dir=None, download=True):
    """The 10,000-image MNIST test split: ``(x_test, y_test)``."""
    return load_idx_splits("mnist", MNIST_FILES, MNIST_URLS, data_dir, download, parts=("test",))[0]
