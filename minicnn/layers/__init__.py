"""Layers with Keras's names, arguments and defaults (see ``base.Layer`` for the protocol)."""
from .activation_layers import ELU, LeakyReLU, PReLU, Softmax
from .base import Layer
from .conv import Conv2D
from .convolutional import Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from .core import Activation, Dropout, Flatten, Input, InputLayer, ReLU
from .dense import Dense
from .merging import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add, average,
                      concatenate, maximum, minimum, multiply, subtract)
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from .reshaping import Cropping2D, Permute, Reshape, UpSampling2D, ZeroPadding2D

# Keras's aliases
Convolution2D = Conv2D
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
SeparableConvolution2D = SeparableConv2D
Convolution2DTranspose = Conv2DTranspose

__all__ = ["Convolution2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D",
           "SeparableConvolution2D", "Convolution2DTranspose", "Layer", "Input", "InputLayer", "Conv2D", "MaxPooling2D", "GlobalAveragePooling2D", "Dense",
           "Flatten", "Dropout", "Activation", "ReLU", "BatchNormalization",
           "AveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "Reshape",
           "Permute", "LeakyReLU", "ELU", "PReLU", "Softmax", "Conv2DTranspose",
           "DepthwiseConv2D", "SeparableConv2D",
           "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate"]
