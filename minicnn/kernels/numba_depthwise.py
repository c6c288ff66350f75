"""Numba kernels of the depthwise convolution (``kernels/depthwise.py`` holds the equations
and the NumPy twins, with the same calling convention).

Output channel ``o = ch·m + k`` reads input channel ``o // m``, so with W as ``(kh, kw, c·m)``
every loop runs innermost along the contiguous channels.  The input is read where it lies:
a tap that falls in the padding is skipped, so no padded copy of x is made or kept.

With depth multiplier 1 (every separable convolution in Keras's applications) the channels
go in blocks of ``CHANNEL_BLOCK``: four vector registers of float32, sized for the CPU the
kernels are compiled for (``register_tiles.VECTOR_ISA``).  A block's sums stay in registers
(``register_tiles.register_tile``) through every tap and are stored once, so each output
cell is written once instead of once per tap.  In the forward, two neighbouring output pixels
whose taps all lie inside the input (every pixel but a border's) go together: each tap's
weights are loaded once for both, and no tap is tested for the border.  A block's
channel index is unsigned: Numba
wraps a signed index that may be negative, which hides from LLVM that the block's loads are
consecutive (compiled for AVX-512, they became gathers).  The channels past the last full
block (for ∂L/∂W, past the last full vector), and every channel when m > 1, take a plain
loop that accumulates in memory.

Three kernels, each parallel over tasks that own what they write (no two threads write the
same cell, no atomics):

* ``depthwise_forward_rows``: over (image, output row): y[b, p] = Σ_taps x[b, row(p, i)] · W[i, j];
* ``depthwise_input_grad_rows``: over (image, input row), gathering, for each input pixel, the output
  pixels whose windows cover it: ∂L/∂x[b, r] = Σ_taps Σ_k W[i, j, ch·m + k] · dy[b, p(r, i)]; at
  stride 1 with m = 1 that is the forward of dy with the kernel turned 180° (the padding
  becomes (kh − 1)·dh − top), so ``depthwise_backward`` calls the forward's kernel there;
* ``depthwise_kernel_grad_taps``: over (image, group of nine taps, vector of channels), each
  summing its image into its own slice of ``partial`` (n, kh, kw, c·m); ∂L/∂W is the sum of the
  slices over the images, in an order fixed by the shape, so the result does not depend on the
  thread count.  The nine taps' sums stay in registers through one pass over the image's dy:
  each vector of dy is loaded once for all of them (a pass per tap read x and dy from L2
  nine times), and the windows inside x take no test per tap.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from . import jit, register_tiles
from .register_tiles import register_tile
from .workspace import scratch

CHANNEL_BLOCK = {"avx2": 32, "avx512": 64}[register_tiles.VECTOR_ISA]     # 4 vectors of float32
LANES = register_tiles.TILE_LANES       # float32 channels in one vector register
GROUP_TAPS = 9                          # taps whose ∂L/∂W sums one pass over dy keeps in registers
                                        # (group_offsets and multiply_add_taps name nine each)


@njit(inline="always")
def covering_output(t, stride, size):
    """The output index p with p·stride = t (a window at p starts t pixels before the input
    pixel, in steps of the stride), or −1 where there is none; no division at stride 1 (a
    division per tap would cost more than the tap's multiply-adds)."""
    if t < 0:
        return -1
    if stride != 1:
        if t % stride != 0:
            return -1
        t //= stride
    return t if t < size else -1


@njit(inline="always")
def covering_pixel(t, u, sh, sw, oh, ow):
    """``covering_output`` along both axes: the output pixel (p, q) whose window starts t rows
    and u columns before an input pixel, or q = −1 where there is none."""
    p = covering_output(t, sh, oh)
    return p, covering_output(u, sw, ow) if p >= 0 else -1


@njit(inline="always")
def inside_outputs(size, out_size, offset, stride, span):
    """(first, after): the outputs k in [first, after) whose taps, at k·stride + offset + 0 … span,
    all lie inside [0, size): those take no test per tap."""
    first = max(0, -(offset // stride))
    return first, min(out_size, max(first, (size - 1 - span - offset) // stride + 1))


@njit(inline="always")
def tap_offset(tap, taps, kw, row_step, col_step):
    """Where tap ``tap`` (i, j) = divmod(tap, kw) lies in x's flat index, from its window's
    corner: i·row_step + j·col_step; 0 for a tap past the last (read, never stored)."""
    return np.uint64(0) if tap >= taps else np.uint64(tap // kw * row_step + tap % kw * col_step)


@njit(inline="always")
def group_offsets(first, taps, kw, row_step, col_step):
    """``tap_offset`` of the GROUP_TAPS (nine) taps from ``first``, as named values (registers)."""
    return (tap_offset(first, taps, kw, row_step, col_step), tap_offset(first + 1, taps, kw, row_step, col_step),
            tap_offset(first + 2, taps, kw, row_step, col_step), tap_offset(first + 3, taps, kw, row_step, col_step),
            tap_offset(first + 4, taps, kw, row_step, col_step), tap_offset(first + 5, taps, kw, row_step, col_step),
            tap_offset(first + 6, taps, kw, row_step, col_step), tap_offset(first + 7, taps, kw, row_step, col_step),
            tap_offset(first + 8, taps, kw, row_step, col_step))


@njit(inline="always", fastmath={"contract"})
def multiply_add_taps(acc, o, x_flat, at, offsets, d):
    """acc[t, o] += x_flat[at + offsets[t]]·d for the nine taps of a group."""
    a0, a1, a2, a3, a4, a5, a6, a7, a8 = offsets
    acc[0, o] += x_flat[at + a0] * d
    acc[1, o] += x_flat[at + a1] * d
    acc[2, o] += x_flat[at + a2] * d
    acc[3, o] += x_flat[at + a3] * d
    acc[4, o] += x_flat[at + a4] * d
    acc[5, o] += x_flat[at + a5] * d
    acc[6, o] += x_flat[at + a6] * d
    acc[7, o] += x_flat[at + a7] * d
    acc[8, o] += x_flat[at + a8] * d


@functools.cache
def _kernels(BLOCK):
    """The three kernels compiled for channel blocks of BLOCK."""

    @jit.kernel(fastmath={"contract"})
    def depthwise_forward_rows(x, W, m, sh, sw, dh, dw, top, left, y):
        """y[b, p, q, o] = Σ_{i,j} x[b, p·sh + i·dh − top, q·sw + j·dw − left, o // m] · W[i, j, o]."""
        n, h, w, _ = x.shape
        _, oh, ow, channels = y.shape
        kh, kw, _ = W.shape
        full = channels - channels % BLOCK if m == 1 else 0
        first, after = inside_outputs(w, ow, -left, sw, (kw - 1) * dw)
        for task in prange(n * oh):
            b, p = task // oh, task % oh
            q = 0
            while q < ow:
                pair = first <= q and q + 1 < after
                for c0 in range(0, full, BLOCK):
                    acc = register_tile((2, BLOCK), y.dtype)
                    for i in range(kh):
                        row = p * sh + i * dh - top
                        if row < 0 or row >= h:
                            continue
                        for j in range(kw):
                            col = q * sw + j * dw - left
                            if pair:
                                for o in range(BLOCK):
                                    ch = np.uint64(c0 + o)
                                    tap = W[i, j, ch]
                                    acc[0, o] += x[b, row, col, ch] * tap
                                    acc[1, o] += x[b, row, col + sw, ch] * tap
                            elif 0 <= col < w:
                                for o in range(BLOCK):
                                    ch = np.uint64(c0 + o)
                                    acc[0, o] += x[b, row, col, ch] * W[i, j, ch]
                    for o in range(BLOCK):
                        y[b, p, q, np.uint64(c0 + o)] = acc[0, o]
                    if pair:
                        for o in range(BLOCK):
                            y[b, p, q + 1, np.uint64(c0 + o)] = acc[1, o]
                for pixel in range(q, q + 2 if pair else q + 1):
                    for o in range(full, channels):
                        y[b, p, pixel, o] = 0
                    for i in range(kh):
                        row = p * sh + i * dh - top
                        if row < 0 or row >= h:
                            continue
                        for j in range(kw):
                            col = pixel * sw + j * dw - left
                            if col < 0 or col >= w:
                                continue
                            for o in range(full, channels):
                                y[b, p, pixel, o] += x[b, row, col, o // m] * W[i, j, o]
                q += 2 if pair else 1

    @jit.kernel(fastmath={"contract"})
    def depthwise_input_grad_rows(dy, W, m, sh, sw, dh, dw, top, left, dx):
        """dx[b, r, s, ch] = Σ Σ_k W[i, j, ch·m + k] · dy[b, p, q, ch·m + k] over the taps (i, j)
        whose output pixel (p, q) = ((r + top − i·dh) / sh, (s + left − j·dw) / sw) exists
        (``covering_pixel``)."""
        n, h, w, c = dx.shape
        _, oh, ow, _ = dy.shape
        kh, kw, _ = W.shape
        full = c - c % BLOCK if m == 1 else 0
        for task in prange(n * h):
            b, r = task // h, task % h
            for s in range(w):
                for c0 in range(0, full, BLOCK):
                    acc = register_tile((1, BLOCK), dx.dtype)
                    for tap in range(kh * kw):
                        i, j = tap // kw, tap % kw
                        p, q = covering_pixel(r + top - i * dh, s + left - j * dw, sh, sw, oh, ow)
                        if q >= 0:
                            for o in range(BLOCK):
                                ch = np.uint64(c0 + o)
                                acc[0, o] += dy[b, p, q, ch] * W[i, j, ch]
                    for o in range(BLOCK):
                        dx[b, r, s, np.uint64(c0 + o)] = acc[0, o]
                for ch in range(full, c):
                    dx[b, r, s, ch] = 0
                for tap in range(kh * kw):
                    i, j = tap // kw, tap % kw
                    p, q = covering_pixel(r + top - i * dh, s + left - j * dw, sh, sw, oh, ow)
                    if q >= 0:
                        for ch in range(full, c):
                            for k in range(m):
                                dx[b, r, s, ch] += dy[b, p, q, ch * m + k] * W[i, j, ch * m + k]

    @jit.kernel(fastmath={"contract"})
    def depthwise_kernel_grad_taps(x, dy, m, sh, sw, dh, dw, top, left, partial):
        """partial[b, i, j, o] = Σ_{p,q} x[b, p·sh + i·dh − top, q·sw + j·dw − left, o // m] · dy[b, p, q, o]."""
        n, h, w, c = x.shape
        _, oh, ow, channels = dy.shape
        _, kh, kw, _ = partial.shape
        full = channels - channels % LANES if m == 1 else 0
        groups, vectors = -(-kh * kw // GROUP_TAPS), full // LANES
        p0, p1 = inside_outputs(h, oh, -top, sh, (kh - 1) * dh)
        q0, q1 = inside_outputs(w, ow, -left, sw, (kw - 1) * dw)
        x_flat = x.reshape(-1)
        for task in prange(n * groups * vectors):
            b, g, c0 = task // (groups * vectors), task // vectors % groups, np.uint64(task % vectors * LANES)
            first = g * GROUP_TAPS
            tap_offsets = group_offsets(first, kh * kw, kw, dh * w * c, dw * c)
            acc = register_tile((GROUP_TAPS, LANES), partial.dtype)
            for p in range(p0, p1):                 # the windows inside x: no test per tap
                for q in range(q0, q1):
                    corner = np.uint64(((b * h + p * sh - top) * w + q * sw - left) * c) + c0
                    for o in range(LANES):
                        multiply_add_taps(acc, o, x_flat, corner + np.uint64(o), tap_offsets,
                                          dy[b, p, q, c0 + np.uint64(o)])
            for t in range(GROUP_TAPS):             # the windows across the border, tap by tap
                i, j = (first + t) // kw, (first + t) % kw   # (unrolled: the tap is acc's row, a constant)
                for p in range(oh if i < kh else 0):
                    row = p * sh + i * dh - top
                    if row < 0 or row >= h:
                        continue
                    q = 0
                    while q < ow:
                        if q == q0 < q1 and p0 <= p < p1:
                            q = q1                  # (the inside, done above)
                            continue
                        col = q * sw + j * dw - left
                        if 0 <= col < w:
                            for o in range(LANES):
                                acc[t, o] += x[b, row, col, c0 + np.uint64(o)] * dy[b, p, q, c0 + np.uint64(o)]
                        q += 1
            for t in range(GROUP_TAPS):
                i, j = (first + t) // kw, (first + t) % kw
                if i < kh:
                    for o in range(LANES):
                        partial[b, i, j, c0 + np.uint64(o)] = acc[t, o]
        for task in prange(n * kh * kw):            # the channels past the last vector, and m > 1
            b, i, j = task // (kh * kw), task // kw % kh, task % kw
            for o in range(full, channels):
                partial[b, i, j, o] = 0
            for p in range(oh):
                row = p * sh + i * dh - top
                if row < 0 or row >= h:
                    continue
                for q in range(ow):
                    col = q * sw + j * dw - left
                    if col < 0 or col >= w:
                        continue
                    for o in range(full, channels):
                        partial[b, i, j, o] += x[b, row, col, o // m] * dy[b, p, q, o]

    return depthwise_forward_rows, depthwise_input_grad_rows, depthwise_kernel_grad_taps


def depthwise_forward(x, W, strides, pads, rate, out_hw, out=None):
    kh, kw, c, m = W.shape
    y = out if out is not None else np.empty((x.shape[0], *out_hw, c * m), dtype=x.dtype)
    top, _, left, _ = pads
    _kernels(CHANNEL_BLOCK)[0](np.ascontiguousarray(x), np.ascontiguousarray(W).reshape(kh, kw, c * m), m,
                               *strides, *rate, top, left, y)
    return y


def depthwise_backward(dy, x, W, strides, pads, rate, input_grad=True, out=None, workspace=None):
    kh, kw, c, m = W.shape
    forward_kernel, input_grad_kernel, kernel_grad_kernel = _kernels(CHANNEL_BLOCK)
    dy, x, W3 = np.ascontiguousarray(dy), np.ascontiguousarray(x), np.ascontiguousarray(W).reshape(kh, kw, c * m)
    top, _, left, _ = pads
    partial = scratch(workspace, "depthwise_dW_per_image", (x.shape[0], kh, kw, c * m), W.dtype)
    kernel_grad_kernel(x, dy, m, *strides, *rate, top, left, partial)
    dW = partial.sum(axis=0).reshape(W.shape)
    if not input_grad:
        return None, dW
    dx = out if out is not None else np.empty(x.shape, dtype=dy.dtype)
    if m == 1 and tuple(strides) == (1, 1):     # ∂L/∂x = pad(∂L/∂y) ⊛ rot180(W): the forward's kernel
        (dh, dw), flipped = rate, np.ascontiguousarray(W3[::-1, ::-1])
        forward_kernel(dy, flipped, 1, 1, 1, dh, dw, (kh - 1) * dh - top, (kw - 1) * dw - left, dx)
    else:
        input_grad_kernel(dy, W3, m, *strides, *rate, top, left, dx)
    return dx, dW
