"""``keras.applications.inception_v3``: importable; ``InceptionV3()`` names the layers minicnn lacks."""
from functools import partial

from .imagenet_utils import decode_predictions, preprocess_input as _preprocess
from .missing import unavailable

InceptionV3 = unavailable("InceptionV3", ("Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
                                          "AveragePooling2D", "Concatenate", "GlobalAveragePooling2D", "Dense"))
preprocess_input = partial(_preprocess, mode="tf")

__all__ = ["InceptionV3", "preprocess_input", "decode_predictions"]
