"""Layers with Keras's names, arguments and defaults (see ``base.Layer`` for the protocol)."""
from .base import Layer
from .conv import Conv2D
from .core import Activation, Dropout, Flatten, Input, InputLayer, ReLU
from .dense import Dense
from .pooling import GlobalAveragePooling2D, MaxPooling2D

# Keras's aliases
Convolution2D = Conv2D
MaxPool2D = MaxPooling2D
GlobalAvgPool2D = GlobalAveragePooling2D

__all__ = ["Convolution2D", "MaxPool2D", "GlobalAvgPool2D", "Layer", "Input", "InputLayer", "Conv2D", "MaxPooling2D", "GlobalAveragePooling2D", "Dense",
           "Flatten", "Dropout", "Activation", "ReLU"]
