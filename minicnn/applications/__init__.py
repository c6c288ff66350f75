"""Keras's ``applications``: ``VGG16``, ``VGG19``, ``Xception`` and ``InceptionV3`` with Keras's
layer names, weight order and defaults, each with a submodule (``vgg16``, ``vgg19``, ``xception``,
``inception_v3``) holding its ``preprocess_input`` and ``decode_predictions``."""
from . import imagenet_utils, inception_v3, vgg16, vgg19, xception
from .inception_v3 import InceptionV3
from .vgg16 import VGG16
from .vgg19 import VGG19
from .xception import Xception

__all__ = ["VGG16", "VGG19", "Xception", "InceptionV3", "vgg16", "vgg19", "xception", "inception_v3",
           "imagenet_utils"]
