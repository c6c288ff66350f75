"""Visualization and interpretability on minicnn's own backward pass.

``plots`` (figures), ``maximize`` (activation maximization), ``attribution`` (saliency,
SmoothGrad, Grad-CAM(++), guided backprop, deconvnet, randomization check), ``style``
(Gram-matrix style transfer), ``report`` (the self-contained HTML page).
"""
from . import attribution, maximize, plots, style
from .attribution import (deconvnet, grad_cam, grad_cam_plus_plus, guided_backprop, guided_grad_cam, overlay,
                          randomization_check, saliency, smoothgrad)
from .maximize import deprocess_image
from .plots import (confusion_matrix, plot_activation_histograms, plot_confusion_matrix, plot_feature_maps,
                    plot_filters, plot_history, plot_misclassified, plot_per_class_errors, plot_probabilities,
                    save_figure, stitch_images)
from .report import report

__all__ = ["plots", "maximize", "attribution", "style", "report", "saliency", "smoothgrad", "grad_cam",
           "grad_cam_plus_plus", "guided_backprop", "deconvnet", "guided_grad_cam", "overlay",
           "randomization_check", "deprocess_image", "stitch_images", "plot_filters", "plot_feature_maps",
           "plot_activation_histograms", "plot_probabilities", "plot_history", "confusion_matrix",
           "plot_confusion_matrix", "plot_misclassified", "plot_per_class_errors", "save_figure"]
