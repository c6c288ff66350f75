"""``keras.applications.vgg19``: ``VGG19`` (Keras's arguments and defaults, see ``vgg.py``),
``preprocess_input`` (caffe mode) and ``decode_predictions``."""
from functools import partial

from .imagenet_utils import decode_predictions, preprocess_input as _preprocess
from .vgg import vgg

VGG19 = partial(vgg, "vgg19")
preprocess_input = partial(_preprocess, mode="caffe")

__all__ = ["VGG19", "preprocess_input", "decode_predictions"]
