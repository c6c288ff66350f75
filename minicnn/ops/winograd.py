"""Winograd's minimal filtering F(2×2, 3×3): a 3×3, stride-1 convolution with 2.25× fewer
multiplications (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).

Cut the output into 2×2 tiles.  Each tile's four outputs, for one input and one output
channel, come from the 4×4 input patch ``d`` under it and the 3×3 kernel ``g``::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A          (⊙: elementwise, on 4×4 matrices)

        Bᵀ = [1  0 -1  0]     G = [1    0    0 ]     Aᵀ = [1  1  1  0]
             [0  1  1  0]         [1/2  1/2  1/2]          [0  1 -1 -1]
             [0 -1  1  0]         [1/2 -1/2  1/2]
             [0  1  0 -1]         [0    0    1 ]

16 multiplications for 4 outputs where the direct sum takes 36; the transforms only add
(their entries are 0, ±1 and ±1/2, exact in floating point).  Summed over the input
channels, with ``U = G g Gᵀ`` (the kernel, once per step) and ``V = Bᵀ d B`` (each
patch), the 16 positions ξ of the 4×4 products are 16 independent matrix products::

    M[ξ] (tiles, f) = V[ξ] (tiles, c) @ U[ξ] (c, f)          then   Y = Aᵀ M A per tile

The backward is the adjoint of the same three steps::

    ∂L/∂x = the forward of pad(∂L/∂y) with rot180(W), channel axes swapped  (``ops/conv.py``)
    ∂L/∂U[ξ] = Σ_tiles V[ξ]ᵀ @ ∂L/∂M[ξ],   ∂L/∂M = A (∂L/∂Y) Aᵀ per tile,   ∂L/∂g = Gᵀ (∂L/∂U) G

On the Numba kernels each block of SUB tiles is transformed into a scratch ``V`` small
enough to stay in the cache, multiplied on the implicit GEMM's register tiles
(``numba_kernels._tile_products``, with V's rows as the "pixels" and the channels as the
"taps"), and transformed back: V and M never leave the cache.  The output must have an
even height and width (whole tiles; ``ops/conv.py`` sends odd ones to the implicit GEMM).
The zero padding is never written out: a tile whose patch lies inside the input reads it
there, one that reaches into the padding first copies its patch, zeros included, into a
small scratch ``P`` (measured on the conv layer case: the padded copies of x and ∂L/∂y
took 2.6 of its 37 ms).
Each scratch has one view in a kernel: V flat (``_at_v``), ∂L/∂M as panels (``_at_dm``).
Numba compiles a ``prange`` body into a function whose array arguments LLVM is told do not
alias, so that it vectorizes the channel loops without run-time overlap checks; two views of
one buffer passed into it, one written and one read, would break that promise.
``parts`` (a fixed count) own disjoint runs of consecutive blocks, each its own scratch
and, for ∂L/∂U, its own partial sum: results do not depend on the thread count.  (Runs,
not every parts-th block: each thread then reads x in order, and the two threads get the
same number of blocks; measured on the conv layer case, forward 9.7 → 9.2 ms.)

Why not F(4×4, 3×3), with 36 products per 16 outputs (2.25 per output, against 4 here)?
Measured on the conv layer case, one thread: its products took 10.2 ms of the forward
against 13.7 here, but its 6×6 transforms, which Numba compiled to scalar code (one
channel at a time, also when written as loops over 8 channels through a stack array),
cost twice what these 4×4 ones do, and 14×14 outputs take 16×16 of 4×4 tiles: forward,
∂L/∂W and ∂L/∂x 84 ms in all, against 59.  It would pay with transforms vectorized over
the channels.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import jit
from .numba_kernels import TILES, _panels, _tile_products, bias_act, register_tile, tile_for

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

SUB = 48        # tiles per block: V and M of one block stay in the L2 cache (a multiple of 3 and 4 rows)
ON_A_TIE = (3, 24)  # the register tile when both pad f alike (f = 48, 96, …); measured on 24/64/96 → 48:
                    # forward and ∂L/∂U 5–9% faster than 4 × 16 (the products' depth, c, is short)
PARTS = 16      # blocks are split into this many runs (parts), each with its own scratch


def kernel_transform(W, panel):
    """U = G g Gᵀ for every (input, output) channel pair of W (3, 3, c, f), computed in
    float64, as the 16 matrices U[ξ] (c, f) packed into panels of ``panel`` columns
    (``numba_kernels._panels``): (16·n_panels, c, panel)."""
    c, f = W.shape[2:]
    U = _sandwich(G, W.astype(np.float64)).reshape(16, c, f)
    return _panels(U, panel, W.dtype).reshape(-1, c, panel)


def _sandwich(L, X):
    """L X Lᵀ of each (c, f) slice of X: (L X Lᵀ)[a, b, c, f] = Σ_ij L[a, i] X[i, j, c, f] L[b, j],
    as two matrix products: T[a, j] = Σ_i L[a, i] X[i, j], then Σ_j L[b, j] T[a, j] for each a
    (measured 2.5× faster than two tensordots and their transpose, 3× than one einsum)."""
    k, m = X.shape[0], L.shape[0]
    T = (L @ X.reshape(k, -1)).reshape(m, k, -1)
    return (L @ T).reshape(m, m, *X.shape[2:])


@njit(inline="always")
def _tile_origin(t, tiles_h, tiles_w):
    """(image, row, column) of tile t's top-left output pixel (= its input patch's in the
    padded input)."""
    b, r = t // (tiles_h * tiles_w), t % (tiles_h * tiles_w)
    return b, 2 * (r // tiles_w), 2 * (r % tiles_w)


@njit(inline="always")
def _next_tile(b, y0, x0, oh, ow):
    """The origin of the tile after (b, y0, x0) in an output of oh × ow: ``_tile_origin(t + 1)``
    from ``_tile_origin(t)`` without its divisions (64-bit divisions, measured: 3% of the
    forward on one thread)."""
    x0 += 2
    if x0 == ow:
        x0, y0 = 0, y0 + 2
        if y0 == oh:
            y0, b = 0, b + 1
    return b, y0, x0


@njit(inline="always")
def _bt(d0, d1, d2, d3):
    """Bᵀ (d0, d1, d2, d3)."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(inline="always")
def _at(m0, m1, m2, m3):
    """Aᵀ (m0, m1, m2, m3)."""
    return m0 + m1 + m2, m1 - m2 - m3


@njit(inline="always")
def _a(g0, g1):
    """A (g0, g1): the adjoint of Aᵀ."""
    return g0, g0 + g1, g0 - g1, -g1


@njit(inline="always")
def _at_v(part, xi, t, c):
    """Where V[part, ξ, t, 0] lies in the flat scratch V (parts, 16, SUB, c): unsigned, so
    that the channel loops are not checked for negative indices (which made them scalar)."""
    return np.uint64(((part * 16 + xi) * SUB + t) * c)


@njit(inline="always")
def _transform_patch(x, b, y0, x0, V, part, t):
    """V[part, 4i + j, t, :] = (Bᵀ d B)[i, j] of the 4×4 patch d of x at (y0, x0), every channel
    (V flat, ``_at_v``): Bᵀ down each column of d, then Bᵀ along each row of the result (= times B)."""
    o, step = _at_v(part, 0, t, x.shape[3]), _at_v(0, 1, 0, x.shape[3])
    for ch in range(np.uint64(x.shape[3])):
        c0 = _bt(x[b, y0, x0, ch], x[b, y0 + 1, x0, ch], x[b, y0 + 2, x0, ch], x[b, y0 + 3, x0, ch])
        c1 = _bt(x[b, y0, x0 + 1, ch], x[b, y0 + 1, x0 + 1, ch],
                 x[b, y0 + 2, x0 + 1, ch], x[b, y0 + 3, x0 + 1, ch])
        c2 = _bt(x[b, y0, x0 + 2, ch], x[b, y0 + 1, x0 + 2, ch],
                 x[b, y0 + 2, x0 + 2, ch], x[b, y0 + 3, x0 + 2, ch])
        c3 = _bt(x[b, y0, x0 + 3, ch], x[b, y0 + 1, x0 + 3, ch],
                 x[b, y0 + 2, x0 + 3, ch], x[b, y0 + 3, x0 + 3, ch])
        for i in range(4):
            v = o + np.uint64(4 * i) * step + ch
            V[v], V[v + step], V[v + np.uint64(2) * step], V[v + np.uint64(3) * step] = _bt(c0[i], c1[i], c2[i], c3[i])


@njit(inline="always")
def _transform_input(x, top, left, b, y0, x0, P, V, part, t):
    """``_transform_patch`` of the tile at (y0, x0) of the padded input, x padded by (top,
    left): read in x, or, when the patch reaches into the padding, from P[part], a copy of
    it with zeros where the padding is."""
    r0, c0 = y0 - top, x0 - left
    if 0 <= r0 and r0 + 4 <= x.shape[1] and 0 <= c0 and c0 + 4 <= x.shape[2]:
        _transform_patch(x, b, r0, c0, V, part, t)
        return
    for i in range(4):
        for j in range(4):
            if 0 <= r0 + i < x.shape[1] and 0 <= c0 + j < x.shape[2]:
                for ch in range(x.shape[3]):
                    P[part, i, j, ch] = x[b, r0 + i, c0 + j, ch]
            else:
                for ch in range(x.shape[3]):
                    P[part, i, j, ch] = 0
    _transform_patch(P, part, 0, 0, V, part, t)


@njit(inline="always")
def _untransform(M, part, t, k):
    """The tile's outputs (y00, y01, y10, y11) = Aᵀ M A for output channel k, M[i, j] =
    M[part, 4i + j, t, k]: Aᵀ down each column, then along each row."""
    c0 = _at(M[part, 0, t, k], M[part, 4, t, k], M[part, 8, t, k], M[part, 12, t, k])
    c1 = _at(M[part, 1, t, k], M[part, 5, t, k], M[part, 9, t, k], M[part, 13, t, k])
    c2 = _at(M[part, 2, t, k], M[part, 6, t, k], M[part, 10, t, k], M[part, 14, t, k])
    c3 = _at(M[part, 3, t, k], M[part, 7, t, k], M[part, 11, t, k], M[part, 15, t, k])
    return _at(c0[0], c1[0], c2[0], c3[0]) + _at(c0[1], c1[1], c2[1], c3[1])


@njit(inline="always")
def _store(M, part, t, bias, relu, y, b, y0, x0):
    """The tile's four outputs, plus the bias and through the ReLU when ``relu``, into y at
    (y0, x0): the layer's epilogue, fused into the store (``ops/epilogue.py``)."""
    for k in range(y.shape[3]):
        y00, y01, y10, y11 = _untransform(M, part, t, k)
        y[b, y0, x0, k], y[b, y0, x0 + 1, k] = bias_act(y00, bias[k], relu), bias_act(y01, bias[k], relu)
        y[b, y0 + 1, x0, k], y[b, y0 + 1, x0 + 1, k] = bias_act(y10, bias[k], relu), bias_act(y11, bias[k], relu)


def _forward_kernel(ROWS, PANEL):
    """The Winograd forward compiled for one register tile, ROWS × PANEL."""
    @jit.kernel(fastmath={"contract"})
    def winograd_forward(x, top, left, panels, bias, relu, y, P, V, M):
        """y = act(the 'valid' 3×3 convolution of x padded by (top, left, …) with the kernel
        (``kernel_transform``'s panels) + bias), act the ReLU when ``relu``, else the identity.
        Per block of SUB tiles: V = Bᵀ d B of each patch, M[ξ] = V[ξ] @ U[ξ] on the register
        tiles, Y = Aᵀ M A."""
        tiles_h, tiles_w = y.shape[1] // 2, y.shape[2] // 2
        tiles, c = x.shape[0] * tiles_h * tiles_w, x.shape[3]
        parts, n_panels = M.shape[0], panels.shape[0] // 16
        tap, step = np.arange(c).astype(np.uint64), np.uint64(c)
        blocks = -(-tiles // SUB)
        for part in prange(parts):
            for blk in range(part * blocks // parts, (part + 1) * blocks // parts):
                first, count = blk * SUB, min(SUB, tiles - blk * SUB)
                b, y0, x0 = _tile_origin(first, tiles_h, tiles_w)
                for t in range(count):
                    _transform_input(x, top, left, b, y0, x0, P, V, part, t)
                    b, y0, x0 = _next_tile(b, y0, x0, y.shape[1], y.shape[2])
                for t in range(count, -(-count // ROWS) * ROWS):    # read by the last register tile, not stored
                    for xi in range(16):
                        for ch in range(np.uint64(c)):
                            V[_at_v(part, xi, t, c) + ch] = 0
                for xi in range(16):
                    for r0 in range(0, count, ROWS):
                        o = _at_v(part, xi, r0, c)
                        for p in range(n_panels):
                            acc = register_tile((ROWS, PANEL), y.dtype)
                            _tile_products(acc, V, o, o + step, o + np.uint64(2) * step,
                                           o + np.uint64(ROWS - 1) * step, tap, panels, xi * n_panels + p)
                            for i in range(ROWS):
                                for j in range(PANEL):
                                    M[part, xi, r0 + i, p * PANEL + j] = acc[i, j]
                b, y0, x0 = _tile_origin(first, tiles_h, tiles_w)
                for t in range(count):
                    _store(M, part, t, bias, relu, y, b, y0, x0)
                    b, y0, x0 = _next_tile(b, y0, x0, y.shape[1], y.shape[2])
    return winograd_forward


_FORWARD = {tile: _forward_kernel(*tile) for tile in TILES}


@njit(inline="always")
def _at_dm(part, xi, p, n_panels):
    """Which of dM's panels is part's (ξ, panel p): dM (parts·16·n_panels, SUB, PANEL) holds
    ∂L/∂M as the panels that ``_tile_products`` reads."""
    return (part * 16 + xi) * n_panels + p


@njit(inline="always")
def _transform_output_grad(dy, b, y0, x0, dM, bias_sum, part, t):
    """dM[_at_dm(part, 4i + j, panel), t, column] = (A g Aᵀ)[i, j] of the tile's 2×2 of dy, g,
    for output channel panel·PANEL + column; and the 2×2's sum added to bias_sum[part, channel]."""
    f, width = dy.shape[3], dM.shape[2]
    n_panels = -(-f // width)
    step = np.uint64(n_panels)                      # from ξ's panel to ξ + 1's
    for p in range(n_panels):
        q = np.uint64(_at_dm(part, 0, p, n_panels))
        for j in range(min(width, f - p * width)):  # indices unsigned: not checked for being negative, so SIMD
            k = np.uint64(p * width + j)
            c0 = _a(dy[b, y0, x0, k], dy[b, y0 + 1, x0, k])
            c1 = _a(dy[b, y0, x0 + 1, k], dy[b, y0 + 1, x0 + 1, k])
            for i in range(4):
                r = q + np.uint64(4 * i) * step
                m0, m1, m2, m3 = _a(c0[i], c1[i])
                dM[r, t, j], dM[r + step, t, j] = m0, m1
                dM[r + np.uint64(2) * step, t, j], dM[r + np.uint64(3) * step, t, j] = m2, m3
        for j in range(min(width, f - p * width)):     # (A g Aᵀ)[1, 1] = the 2×2's sum; apart, so that the
            bias_sum[part, np.uint64(p * width + j)] += dM[q + np.uint64(5) * step, t, j]  # loop above: float32 only


def _kernel_grad_kernel(ROWS, PANEL):
    """∂L/∂U's kernel compiled for one register tile, ROWS (channels) × PANEL (filters)."""
    @jit.kernel(fastmath={"contract"})
    def winograd_kernel_grad(x, top, left, dy, P, V, dM, partial, bias_sum):
        """partial[part, ξ] = Σ over the part's tiles of V[ξ]ᵀ @ ∂L/∂M[ξ], with V = Bᵀ d B of
        each patch and ∂L/∂M = A (∂L/∂Y) Aᵀ of each tile's 2×2 of dy; bias_sum[part] = Σ over
        the part's tiles of their dy (∂L/∂b's share, summed as dy is read);
        ∂L/∂M is laid out as panels (``_at_dm``) so that the register tiles read it as they
        read the kernel's panels in the forward."""
        f = dy.shape[3]
        tiles_h, tiles_w = dy.shape[1] // 2, dy.shape[2] // 2
        tiles, c = x.shape[0] * tiles_h * tiles_w, x.shape[3]
        parts, n_panels, rows = partial.shape[0], -(-f // PANEL), partial.shape[2]
        tap = (np.arange(SUB) * c).astype(np.uint64)        # from one tile's row of V to the next
        blocks, last = -(-tiles // SUB), c - 1
        for part in prange(parts):
            for k in range(f):
                bias_sum[part, k] = 0
            for xi in range(16):
                for ch in range(rows):
                    for k in range(n_panels * PANEL):
                        partial[part, xi, ch, k] = 0
                for t in range(SUB):                        # the last panel's columns past f
                    for k in range(f, n_panels * PANEL):
                        dM[_at_dm(part, xi, n_panels - 1, n_panels), t, k % PANEL] = 0
            for blk in range(part * blocks // parts, (part + 1) * blocks // parts):
                first, count = blk * SUB, min(SUB, tiles - blk * SUB)
                b, y0, x0 = _tile_origin(first, tiles_h, tiles_w)
                for t in range(SUB):
                    if t < count:
                        _transform_input(x, top, left, b, y0, x0, P, V, part, t)
                        _transform_output_grad(dy, b, y0, x0, dM, bias_sum, part, t)
                        b, y0, x0 = _next_tile(b, y0, x0, dy.shape[1], dy.shape[2])
                    else:                                   # past the last tile: adds nothing
                        for xi in range(16):
                            for ch in range(np.uint64(c)):
                                V[_at_v(part, xi, t, c) + ch] = 0
                            for p in range(n_panels):
                                for j in range(PANEL):
                                    dM[_at_dm(part, xi, p, n_panels), t, j] = 0
                for xi in range(16):
                    for c0 in range(0, rows, ROWS):
                        o = _at_v(part, xi, 0, c)
                        for p in range(n_panels):
                            acc = register_tile((ROWS, PANEL), partial.dtype)
                            for i in range(ROWS):               # the sum so far: loaded into the registers,
                                for j in range(PANEL):          # not added to after (measured: 7% of the kernel)
                                    acc[i, j] = partial[part, xi, c0 + i, p * PANEL + j]
                            _tile_products(acc, V, o + np.uint64(c0), o + np.uint64(min(c0 + 1, last)),
                                           o + np.uint64(min(c0 + 2, last)), o + np.uint64(min(c0 + ROWS - 1, last)),
                                           tap, dM, _at_dm(part, xi, p, n_panels))
                            for i in range(ROWS):
                                for j in range(PANEL):
                                    partial[part, xi, c0 + i, p * PANEL + j] = acc[i, j]
    return winograd_kernel_grad


_KERNEL_GRAD = {tile: _kernel_grad_kernel(*tile) for tile in TILES}


def _scratch(workspace, name, shape, dtype):
    """A scratch buffer named after its shape too: the forward's and ∂L/∂x's (of other
    channel counts) then each keep their own across steps."""
    if workspace is None:
        return np.empty(shape, dtype)
    return workspace.get(f"winograd_{name}_{'x'.join(map(str, shape))}", shape, dtype)


def _check_whole_tiles(x, pads, out_hw, caller):
    padded_hw = (x.shape[1] + pads[0] + pads[1], x.shape[2] + pads[2] + pads[3])
    if out_hw[0] % 2 or out_hw[1] % 2 or padded_hw != (out_hw[0] + 2, out_hw[1] + 2):
        raise ValueError(f"winograd.{caller}: expected an output of even height and width (whole 2×2 tiles) "
                         f"from a padded input 2 larger, got input {x.shape[1:3]} padded by {tuple(pads)}, "
                         f"output {tuple(out_hw)}")


def conv2d(x, pads, W, y, workspace=None, bias=None, relu=False):
    """y (n, oh, ow, f) = act(the 'valid' convolution of x (n, h, w, c) zero-padded by pads =
    (top, bottom, left, right) to (oh + 2, ow + 2) with W (3, 3, c, f) + bias), oh and ow even,
    act the ReLU when ``relu``, else the identity (no bias: None).  Scratch (P, V, M) in
    ``workspace``."""
    _check_whole_tiles(x, pads, y.shape[1:3], "conv2d")
    c, f = W.shape[2:]
    tile = tile_for(f, ON_A_TIE)
    P = _scratch(workspace, "P", (PARTS, 4, 4, c), y.dtype)
    V = _scratch(workspace, "V", (PARTS * 16 * SUB * c,), y.dtype)
    M = _scratch(workspace, "M", (PARTS, 16, SUB, -(-f // tile[1]) * tile[1]), y.dtype)
    bias = np.zeros(f, y.dtype) if bias is None else bias
    _FORWARD[tile](np.ascontiguousarray(x), pads[0], pads[2], kernel_transform(W, tile[1]), bias, relu, y, P, V, M)
    return y


def conv2d_kernel_grad(x, pads, dy, workspace=None):
    """(∂L/∂W (3, 3, c, f), ∂L/∂b (f,)) of ``conv2d`` given dy (n, oh, ow, f): ∂L/∂W = Gᵀ
    (Σ_parts partial) G and ∂L/∂b = Σ_parts bias_sum, in float64 and cast back."""
    _check_whole_tiles(x, pads, dy.shape[1:3], "conv2d_kernel_grad")
    c, f = x.shape[3], dy.shape[3]
    tile = tile_for(f, ON_A_TIE)
    n_panels = -(-f // tile[1])
    P = _scratch(workspace, "P", (PARTS, 4, 4, c), dy.dtype)
    V = _scratch(workspace, "V", (PARTS * 16 * SUB * c,), dy.dtype)
    dM = _scratch(workspace, "dM", (PARTS * 16 * n_panels, SUB, tile[1]), dy.dtype)
    partial = _scratch(workspace, "dU", (PARTS, 16, -(-c // tile[0]) * tile[0], n_panels * tile[1]), dy.dtype)
    bias_sum = _scratch(workspace, "db", (PARTS, f), np.float64)
    _KERNEL_GRAD[tile](np.ascontiguousarray(x), pads[0], pads[2], np.ascontiguousarray(dy), P, V, dM, partial,
                       bias_sum)
    dU = partial.sum(axis=0)[:, :c, :f].reshape(4, 4, c, f).astype(np.float64)
    return _sandwich(G.T, dU).astype(dy.dtype), bias_sum.sum(axis=0).astype(dy.dtype)
