"""Stateless ops: ``<op>_forward(...)`` returns the output (and, where the backward needs more
than the forward's arguments, a cache), ``<op>_backward(dy, ...)`` the gradients.

The ops, with their equations and NumPy bodies: ``geometry`` (output sizes and padding),
``padding``, ``im2col`` (and col2im), ``conv``, ``conv_plan`` (which algorithm each of a
convolution's passes runs), ``conv_variants`` (dilated, grouped, transposed), ``dense``, ``pool``,
``avgpool``, ``conv_relu_pool``, ``depthwise``, ``normalization`` (BatchNormalization on any rank,
over ``batchnorm``'s rows), ``winograd`` (and ``winograd_transforms``), ``epilogue`` (bias +
activation, fused), ``matmul``; ``naive`` (the loop references);
``workspace`` (reused buffers).  ``dispatch`` picks, per call, the CUDA, Numba or NumPy
body of an op.

The Numba bodies, one idea per module: ``numba_copies`` (im2col, col2im, padding),
``numba_pool``, ``register_tiles`` (the matrix products' micro-kernel), ``implicit_gemm``
(convolution without the column matrix), ``numba_conv_relu_pool``, ``numba_epilogue``,
``numba_batchnorm``, ``numba_depthwise``, ``sub_pixel`` (a strided convolution's ∂L/∂X, a
convolution per phase of the strides, on the implicit GEMM), ``pointwise`` (a 1×1
convolution's backward in one pass over ∂L/∂Y), ``numba_loss``, ``numba_optimizers``; ``jit``
(how they compile).  The CUDA bodies:
``cuda_kernels``.
"""
