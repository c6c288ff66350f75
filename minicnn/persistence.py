"""What a model saves and loads, by file name as Keras 3 decides it:

* ``model.save("x.keras")`` — Keras 3's archive (``keras_format``), which Keras loads;
  any other name — minicnn's own ``.mnc`` zip (``saving.py``);
* ``model.save_weights("x.weights.h5")`` / ``load_weights`` — Keras 3's weights layout
  (``load_weights`` also reads legacy Keras 2 ``.h5`` weight files);
* ``to_json()`` / ``Model.from_config(config)`` — the Keras model config.
"""
from __future__ import annotations

import json
import os


from .training import serialized


class PersistenceMixin:
    @serialized
    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Save architecture, weights and (with ``include_optimizer``) the optimizer state."""
        path = os.fspath(filepath)
        if not overwrite and os.path.exists(path):
            raise ValueError(f"model.save: {path} exists and overwrite=False")
        if path.endswith(".keras"):
            from .keras_format import save_keras
            save_keras(self, path, include_optimizer)
            return
        from .saving import save_model
        save_model(self, path)

    def save_weights(self, filepath, overwrite=True):
        path = os.fspath(filepath)
        if not path.endswith(".weights.h5"):
            raise ValueError(f"save_weights: the file name must end in .weights.h5 (Keras 3), received {path!r}")
        if not overwrite and os.path.exists(path):
            raise ValueError(f"save_weights: {path} exists and overwrite=False")
        from .keras_format import save_weights
        save_weights(self, path)

    def load_weights(self, filepath):
        from .keras_format import load_weights
        load_weights(self, filepath)

    def to_json(self, **kwargs) -> str:
        """The Keras model config as JSON (``keras.models.model_from_json`` reads it)."""
        from .keras_format import model_config
        return json.dumps(model_config(self), **kwargs)

    @classmethod
    def from_config(cls, config):
        """A model from a Keras model config (``{"class_name": ..., "config": ...}``) or its
        inner ``config`` dict."""
        from .keras_format import model_from_config
        if "class_name" not in config:
            config = {"class_name": "Sequential" if cls.__name__ == "Sequential" else "Functional", "config": config}
        return model_from_config(config, f"{cls.__name__}.from_config")
