"""Which algorithm each pass of a convolution runs: the one place that decides it.

A convolution has three passes, and each may run one of these (``kernels/conv.py`` holds
the equations, ``docs/backprop.md`` §10 the table)::

    forward   Y from X    'im2col'  columns, then one BLAS product
                          'implicit_gemm'  the same product, columns read in place (Numba)
                          'winograd'  F(4×4, 3×3) (Numba; 3×3 kernels, stride 1)
    ∂L/∂X                 'col2im'  col2im(∂L/∂Y · W2ᵀ)
                          'implicit_gemm' or 'winograd'  the full convolution of ∂L/∂Y with
                          rot180(W) (stride 1), on that forward kernel
                          'sub_pixel'  one such convolution per phase of the strides, on the
                          implicit GEMM (a kernel at least as large as the strides;
                          ``kernels/sub_pixel.py``)
                          'one_pass'  a 1×1 kernel, stride 1: ∂L/∂Y · W2ᵀ on the implicit
                          GEMM, in ∂L/∂W's pass over ∂L/∂Y (``kernels/pointwise.py``)
    ∂L/∂W                 'im2col', 'implicit_gemm' or 'winograd'  colsᵀ · ∂L/∂Y, or its
                          Winograd adjoint

``choose`` decides all three from the geometry, the input's shape and the kernel family;
``Conv2D`` calls it once per input shape and keeps the answer as ``layer.algorithm``, the
kernels run what it says, and a backward runs what its forward chose (the cache carries
it).  ``use_conv_algorithm`` forces one algorithm on every convolution decided inside it.

``Conv2DTranspose`` runs the passes of the convolution it transposes, in other roles (its
forward is that convolution's ∂L/∂X, its ∂L/∂X that convolution's forward): it keeps that
convolution's plan, as a ``TransposedPlan`` that names the roles.
"""
from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np

# Where each algorithm starts to pay (the measurements: docs/performance.md, "conv thresholds";
# Winograd's channels: "Winograd from 16 channels").
IMPLICIT_GEMM_FROM = 10**6          # multiply-adds; smaller convolutions keep im2col + BLAS
IMPLICIT_INPUT_GRAD_FROM_CHANNELS = 16   # ∂L/∂X's output channels, at least, for its implicit GEMM
WINOGRAD_FROM_CHANNELS = 16        # input and output channels, at least
FULL_CONV_MAX_OVERWORK = 1.5        # ∂L/∂X's full convolution computes h·w pixels where col2im's matrix
                                    # product computes oh·ow (its phases, sub_pixel.overwork);
                                    # beyond this ratio col2im is used
ONE_PASS_MAX_WEIGHTS = 64 * 128     # a 1×1 kernel's backward runs in one pass over ∂L/∂Y with c·f at
ONE_PASS_FROM_FILTERS = 64          # most, f and n·h·w at least these: there the two products wait on
ONE_PASS_FROM_PIXELS = 4096         # memory; with more weights per pixel they compute, and a task's
                                    # block no longer fits L2 beside them; with fewer filters ∂L/∂X's
                                    # products are too short to hide ∂L/∂W's reads; with fewer pixels,
                                    # too few blocks of 512 (one per task) to share among the threads

ALGORITHMS = ("im2col", "implicit_gemm", "winograd")
INPUT_GRAD_ALGORITHMS = ("col2im", "implicit_gemm", "winograd", "sub_pixel", "one_pass")
NEEDS_NUMBA = ("implicit_gemm", "winograd", "sub_pixel", "one_pass")
LABELS = {"im2col": "im2col + GEMM", "implicit_gemm": "implicit GEMM", "winograd": "Winograd F(4x4, 3x3)"}
INPUT_GRAD_LABELS = {"col2im": "col2im", "implicit_gemm": "full conv on the implicit GEMM",
                     "winograd": "full conv on Winograd", "sub_pixel": "a full conv per stride phase",
                     "one_pass": "implicit GEMM in ∂L/∂W's pass over ∂L/∂Y"}


class ConvPlan(NamedTuple):
    forward: str          # one of ALGORITHMS
    input_grad: str       # one of INPUT_GRAD_ALGORITHMS
    kernel_grad: str      # one of ALGORITHMS

    def describe(self) -> str:
        """The forward's algorithm, and a backward pass's where it differs from the forward's."""
        text = LABELS[self.forward]
        if self.kernel_grad != self.forward:
            text += f"; ∂L/∂W: {LABELS[self.kernel_grad]}"
        if self.input_grad != ("col2im" if self.forward == "im2col" else self.forward):
            text += f"; ∂L/∂X: {INPUT_GRAD_LABELS[self.input_grad]}"
        return text


class TransposedPlan(NamedTuple):
    """The plan of a transposed convolution: ``conv``, the ``ConvPlan`` of the convolution it
    transposes, whose ∂L/∂X pass is this layer's forward and whose forward is its ∂L/∂X."""
    conv: ConvPlan

    def describe(self) -> str:
        return (f"transposed convolution: forward = ∂L/∂X of the convolution it transposes, "
                f"{INPUT_GRAD_LABELS[self.conv.input_grad]}; ∂L/∂X = its forward, {LABELS[self.conv.forward]}; "
                f"∂L/∂W: {LABELS[self.conv.kernel_grad]}")


_forced = None      # None, an algorithm's name or a ConvPlan: see use_conv_algorithm


@contextlib.contextmanager
def use_conv_algorithm(algorithm):
    """Run every convolution decided inside on ``algorithm``: 'im2col', 'implicit_gemm' or
    'winograd' for all three passes (∂L/∂X of a strided convolution on 'implicit_gemm': 'sub_pixel',
    or col2im for a kernel smaller than the strides),
    or a ``ConvPlan`` naming each pass; None: chosen from the shapes.  A convolution the
    algorithm cannot run raises ValueError naming it (its layer) and why."""
    global _forced
    if algorithm is not None and not isinstance(algorithm, ConvPlan) and algorithm not in ALGORITHMS:
        raise ValueError(f"use_conv_algorithm: expected one of {ALGORITHMS}, a ConvPlan or None, "
                         f"received {algorithm!r}")
    previous, _forced = _forced, algorithm
    try:
        yield
    finally:
        _forced = previous


def forced():
    """The algorithm ``use_conv_algorithm`` forces now (None: none)."""
    return _forced


def output_size(x_shape, kernel_shape, strides, pads):
    """(oh, ow) of the convolution of an input of ``x_shape`` padded by (top, bottom, left, right)."""
    (_, h, w, _), (kh, kw) = x_shape, kernel_shape[:2]
    return (h + pads[0] + pads[1] - kh) // strides[0] + 1, (w + pads[2] + pads[3] - kw) // strides[1] + 1


def choose(x_shape, kernel_shape, strides, pads, family, who="conv2d", dtype="float32") -> ConvPlan:
    """The algorithm of each pass for an input of ``x_shape`` (n, h, w, c) and ``dtype``, a
    kernel of ``kernel_shape`` (kh, kw, c, f), ``strides`` and ``pads`` (top, bottom, left,
    right) on the kernel ``family`` ('numba', 'numpy' or 'cuda': ``dispatch.family``).  Only
    the Numba kernels have the implicit GEMM and Winograd; there a pass takes the fastest that
    applies (the thresholds above)::

        forward, ∂L/∂W:  Winograd   float32, 3×3, stride 1, c and f ≥ WINOGRAD_FROM_CHANNELS,
                                    n·oh·ow·kh·kw·c·f ≥ IMPLICIT_GEMM_FROM
                         implicit GEMM  n·oh·ow·kh·kw·c·f ≥ IMPLICIT_GEMM_FROM
                         else im2col
        ∂L/∂X:           stride 1, h·w ≤ FULL_CONV_MAX_OVERWORK·oh·ow and n·h·w·kh·kw·c·f ≥
                         IMPLICIT_GEMM_FROM: the full convolution on Winograd (as the forward's
                         test, channels swapped) or, with c ≥ IMPLICIT_INPUT_GRAD_FROM_CHANNELS,
                         on the implicit GEMM, a 1×1 kernel's in ∂L/∂W's pass (one pass) with
                         c·f ≤ ONE_PASS_MAX_WEIGHTS, f ≥ ONE_PASS_FROM_FILTERS and n·h·w ≥
                         ONE_PASS_FROM_PIXELS;
                         strides > 1, every phase with taps (kh ≥ sh,
                         kw ≥ sw), n·oh·ow·kh·kw·c·f ≥ IMPLICIT_GEMM_FROM,
                         c ≥ IMPLICIT_INPUT_GRAD_FROM_CHANNELS and at most
                         FULL_CONV_MAX_OVERWORK times col2im's multiply-adds: one per phase
                         (sub-pixel); else col2im

    Winograd's transforms mix a tile's pixels, so an output whose window reads only zeros
    comes out as a rounding error (±1e-16 relative in float64), not 0, and a ReLU after it
    opens where the direct sum keeps it shut.  float64 is asked for to compare exactly (with
    TensorFlow, with the references), so it runs the direct sums, as PyTorch and TensorFlow
    do in float64; ``use_conv_algorithm('winograd')`` still runs it."""
    strides = tuple(strides)
    if _forced is not None:
        return check(_forced_plan(_forced, kernel_shape, strides), x_shape, kernel_shape, strides, family, who)
    if family != "numba":
        return ConvPlan("im2col", "col2im", "im2col")
    n, h, w, c = x_shape
    kh, kw, _, f = kernel_shape
    oh, ow = output_size(x_shape, kernel_shape, strides, pads)
    winograd_shape = ((kh, kw) == (3, 3) and strides == (1, 1) and min(c, f) >= WINOGRAD_FROM_CHANNELS
                      and np.dtype(dtype) == np.float32)
    large = n * oh * ow * kh * kw * c * f >= IMPLICIT_GEMM_FROM
    forward = "winograd" if large and winograd_shape else "implicit_gemm" if large else "im2col"
    input_grad = "col2im"
    if strides != (1, 1) and phases_have_taps(kernel_shape, strides) and large and c >= IMPLICIT_INPUT_GRAD_FROM_CHANNELS:
        from . import sub_pixel                     # (the Numba kernels' modules load where they run)
        if sub_pixel.overwork(x_shape, (kh, kw), strides, pads, (oh, ow)) <= FULL_CONV_MAX_OVERWORK:
            input_grad = "sub_pixel"
    elif strides == (1, 1) and h * w <= FULL_CONV_MAX_OVERWORK * oh * ow and n * h * w * kh * kw * c * f >= IMPLICIT_GEMM_FROM:
        if winograd_shape:
            input_grad = "winograd"
        elif c >= IMPLICIT_INPUT_GRAD_FROM_CHANNELS:
            one_pass = ((kh, kw) == (1, 1) and c * f <= ONE_PASS_MAX_WEIGHTS and f >= ONE_PASS_FROM_FILTERS
                        and n * h * w >= ONE_PASS_FROM_PIXELS)
            input_grad = "one_pass" if one_pass and forward == "implicit_gemm" else "implicit_gemm"
    return ConvPlan(forward, input_grad, forward)


def phases_have_taps(kernel_shape, strides):
    """Whether every phase of the strides meets a tap of the kernel (``kernels/sub_pixel.py``)."""
    return kernel_shape[0] >= strides[0] and kernel_shape[1] >= strides[1]


def _forced_plan(algorithm, kernel_shape, strides) -> ConvPlan:
    if isinstance(algorithm, ConvPlan):
        return algorithm
    if algorithm == "im2col":
        return ConvPlan("im2col", "col2im", "im2col")
    input_grad = (algorithm if strides == (1, 1) or algorithm == "winograd" else
                  "sub_pixel" if phases_have_taps(kernel_shape, strides) else "col2im")
    return ConvPlan(algorithm, input_grad, algorithm)


def check(plan, x_shape, kernel_shape, strides, family, who="conv2d") -> ConvPlan:
    """``plan`` if every pass of it can run this convolution, else ValueError naming ``who``,
    the pass, the algorithm and why."""
    strides = tuple(strides)
    for name, allowed, algorithm in zip(("forward", "∂L/∂X", "∂L/∂W"),
                                        (ALGORITHMS, INPUT_GRAD_ALGORITHMS, ALGORITHMS), plan):
        why = None
        if algorithm not in allowed:
            why = f"expected one of {allowed}"
        elif algorithm in NEEDS_NUMBA and family != "numba":
            why = f"it runs on the Numba kernels only (mc.set_kernels('numba') on a host array), the kernels here: {family!r}"
        elif algorithm == "winograd" and (tuple(kernel_shape[:2]) != (3, 3) or strides != (1, 1)):
            why = (f"Winograd F(4x4, 3x3) needs a 3×3 kernel and stride 1, received kernel "
                   f"{tuple(kernel_shape[:2])}, strides {strides}")
        elif name == "∂L/∂X" and algorithm not in ("col2im", "sub_pixel") and strides != (1, 1):
            why = f"∂L/∂X as a full convolution needs stride 1, received strides {strides}"
        elif algorithm == "one_pass" and (tuple(kernel_shape[:2]) != (1, 1)
                                          or plan.kernel_grad != "implicit_gemm"):
            why = (f"∂L/∂X in ∂L/∂W's pass needs a 1×1 kernel and ∂L/∂W on 'implicit_gemm', received kernel "
                   f"{tuple(kernel_shape[:2])}, ∂L/∂W on {plan.kernel_grad!r}")
        elif algorithm == "sub_pixel" and not phases_have_taps(kernel_shape, strides):
            why = (f"one convolution per phase of the strides needs a kernel at least as large as the strides, "
                   f"received kernel {tuple(kernel_shape[:2])}, strides {strides}")
        if why:
            raise ValueError(f"{who}: cannot run the {name} pass on {algorithm!r} (input shape {tuple(x_shape)}): {why}")
    return plan
