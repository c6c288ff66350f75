"""``keras.applications.xception``: importable; ``Xception()`` names the layers minicnn lacks."""
from functools import partial

from .imagenet_utils import decode_predictions, preprocess_input as _preprocess
from .missing import unavailable

Xception = unavailable("Xception", ("Conv2D", "BatchNormalization", "Activation", "SeparableConv2D", "MaxPooling2D",
                                    "Add", "GlobalAveragePooling2D", "Dense"))
preprocess_input = partial(_preprocess, mode="tf")

__all__ = ["Xception", "preprocess_input", "decode_predictions"]
