"""``keras.applications.xception``: importable; ``Xception()`` names the layers minicnn lacks."""
from .imagenet_utils import decode_predictions
from .imagenet_utils import preprocess_input as _preprocess
from .missing import require_layers

LAYERS = ("Conv2D", "BatchNormalization", "Activation", "SeparableConv2D", "MaxPooling2D", "Add",
          "GlobalAveragePooling2D", "Dense")


def Xception(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="xception"):
    require_layers("Xception", LAYERS)


def preprocess_input(x, data_format=None):
    return _preprocess(x, data_format, mode="tf")


__all__ = ["Xception", "preprocess_input", "decode_predictions"]
