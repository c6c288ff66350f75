"""Data augmentation (Keras's ``ImageDataGenerator``)."""
from .image import ImageDataGenerator, affine_matrix, apply_affine_transform

__all__ = ["ImageDataGenerator", "affine_matrix", "apply_affine_transform"]
