"""Keras's file formats, read and written without TensorFlow (see ``archive.py``)."""
from .archive import load_keras, load_legacy_h5, load_weights, save_keras, save_weights
from .config import model_config, model_from_config

__all__ = ["save_keras", "load_keras", "save_weights", "load_weights", "load_legacy_h5", "model_config",
           "model_from_config"]
