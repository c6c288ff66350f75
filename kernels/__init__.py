"""CUDA kernel sources (``*.cu``), shipped inside the wheel as ``minicnn._kernels``."""
