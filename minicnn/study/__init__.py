"""Tools for studying backprop: ``gradcheck`` (central differences, bisect),
``compare_with_keras`` (one step against TF-Keras), ``trace`` (one step, layer by layer),
``OptimizerMicroscope`` (moments and effective steps) and ``LiveView`` (a live page)."""
from .finite_differences import gradcheck
from .keras_diff import compare_with_keras
from .live import LiveView
from .microscope import OptimizerMicroscope
from .step_trace import trace

__all__ = ["gradcheck", "compare_with_keras", "trace", "OptimizerMicroscope", "LiveView"]
