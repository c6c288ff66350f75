"""Keras's ``models`` module: ``from minicnn import models`` as ``from keras import models``."""
from .model import Model, Sequential
from .saving import clone_model, load_model

__all__ = ["Model", "Sequential", "load_model", "clone_model"]
