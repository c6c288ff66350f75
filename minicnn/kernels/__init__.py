"""Stateless ops: ``<op>_forward(...) -> (y, cache)`` and ``<op>_backward(dy, cache)``.

``geometry`` (output sizes and padding), ``im2col`` (and col2im), ``conv``, ``pool``,
``workspace`` (reused buffers), ``epilogue`` (bias + activation, fused), ``naive`` (the
loop references), ``numba_kernels`` and ``cuda_kernels`` (the fast bodies, chosen by
``minicnn.backend``).
"""
