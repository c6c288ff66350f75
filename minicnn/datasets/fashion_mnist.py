"""Fashion-MNIST (Zalando Research, MIT licence): 60,000 / 10,000 28×28 grey images of
10 clothing classes, in MNIST's IDX format: ``load_data() -> (x_train, y_train), (x_test, y_test)``."""
from __future__ import annotations

from .mnist import FASHION_FILES, FASHION_URLS, load_idx_splits

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")


def load_data(data_dir=None, download=True):
    return load_idx_splits("fashion-mnist", FASHION_FILES, FASHION_URLS, data_dir, download)
