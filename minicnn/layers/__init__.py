"""Layers with Keras's names, arguments and defaults (see ``base.Layer`` for the protocol)."""
from .base import Layer
from .conv import Conv2D
from .core import Activation, Dropout, Flatten, Input, ReLU
from .dense import Dense
from .normalization import BatchNormalization
from .pooling import GlobalAveragePooling2D, MaxPooling2D

__all__ = ["Layer", "Input", "Conv2D", "MaxPooling2D", "GlobalAveragePooling2D", "Dense",
           "Flatten", "Dropout", "Activation", "ReLU", "BatchNormalization"]
