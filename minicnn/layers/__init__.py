"""Layers with Keras's names, arguments and defaults (see ``base.Layer`` for the protocol)."""
from .base import Layer
from .conv import Conv2D
from .core import Activation, Dropout, Flatten, Input, InputLayer, ReLU
from .dense import Dense
from .merging import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add, average,
                      concatenate, maximum, minimum, multiply, subtract)
from .pooling import GlobalAveragePooling2D, MaxPooling2D

__all__ = ["Layer", "Input", "InputLayer", "Conv2D", "MaxPooling2D", "GlobalAveragePooling2D", "Dense",
           "Flatten", "Dropout", "Activation", "ReLU",
           "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate"]
