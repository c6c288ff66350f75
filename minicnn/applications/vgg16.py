"""``keras.applications.vgg16``: ``VGG16`` (Keras's arguments and defaults, see ``vgg.py``),
``preprocess_input`` (caffe mode) and ``decode_predictions``."""
from functools import partial

from .imagenet_utils import decode_predictions, preprocess_input as _preprocess
from .vgg import vgg

VGG16 = partial(vgg, "vgg16")
preprocess_input = partial(_preprocess, mode="caffe")

__all__ = ["VGG16", "preprocess_input", "decode_predictions"]
