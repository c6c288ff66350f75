"""``keras.applications.inception_v3``: importable; ``InceptionV3()`` names the layers minicnn lacks."""
from .imagenet_utils import decode_predictions
from .imagenet_utils import preprocess_input as _preprocess
from .missing import require_layers

LAYERS = ("Conv2D", "BatchNormalization", "Activation", "MaxPooling2D", "AveragePooling2D", "Concatenate",
          "GlobalAveragePooling2D", "Dense")


def InceptionV3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name="inception_v3"):
    require_layers("InceptionV3", LAYERS)


def preprocess_input(x, data_format=None):
    return _preprocess(x, data_format, mode="tf")


__all__ = ["InceptionV3", "preprocess_input", "decode_predictions"]
