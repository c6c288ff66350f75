"""Keras's ``models`` module: ``from minicnn import models`` as ``from keras import models``."""
from .model import Model
from .sequential import Sequential
from .saving import clone_model, load_model


def model_from_json(json_string, custom_objects=None):
    """A model from ``model.to_json()`` (Keras's model config as JSON)."""
    import json
    from .keras_format import model_from_config
    return model_from_config(json.loads(json_string), "model_from_json")


__all__ = ["Model", "Sequential", "load_model", "clone_model", "model_from_json"]
