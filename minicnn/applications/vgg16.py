"""``keras.applications.vgg16``: ``VGG16``, ``preprocess_input`` (caffe mode), ``decode_predictions``."""
from .imagenet_utils import decode_predictions
from .imagenet_utils import preprocess_input as _preprocess
from .vgg import vgg


def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg16"):
    """Keras's VGG16 (see ``vgg.py``); the defaults are Keras's."""
    return vgg("vgg16", include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name)


def preprocess_input(x, data_format=None):
    return _preprocess(x, data_format, mode="caffe")


__all__ = ["VGG16", "preprocess_input", "decode_predictions"]
