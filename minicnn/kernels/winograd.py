"""Winograd's minimal filtering F(4×4, 3×3): a 3×3, stride-1 convolution with 4× fewer
multiplications (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).

Cut the output into 4×4 tiles.  Each tile's 16 outputs, for one input and one output
channel, come from the 6×6 input patch ``d`` under it and the 3×3 kernel ``g``::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A          (⊙: elementwise, on 6×6 matrices)

        Bᵀ = [4  0 -5  0  1  0]     G = [ 1/4     0     0  ]     Aᵀ = [1  1  1  1  1  0]
             [0 -4 -4  1  1  0]         [-1/6  -1/6  -1/6  ]          [0  1 -1  2 -2  0]
             [0  4 -4 -1  1  0]         [-1/6   1/6  -1/6  ]          [0  1  1  4  4  0]
             [0 -2 -1  2  1  0]         [1/24  1/12   1/6  ]          [0  1 -1  8 -8  1]
             [0  2 -1 -2  1  0]         [1/24 -1/12   1/6  ]
             [0  4  0 -5  0  1]         [ 0     0     1    ]

36 multiplications for 16 outputs where the direct sum takes 144.  Bᵀ and Aᵀ have small
integer entries (exact in floating point); G's fractions are applied once per step, to
the kernel and to ∂L/∂U.  Summed over the input channels, with ``U = G g Gᵀ`` (the kernel) and
``V = Bᵀ d B`` (each patch), the 36 positions ξ of the 6×6 products are 36 independent
matrix products::

    M[ξ] (tiles, f) = V[ξ] (tiles, c) @ U[ξ] (c, f)          then   Y = Aᵀ M A per tile

The backward is the adjoint of the same three steps::

    ∂L/∂x = the forward of pad(∂L/∂y) with rot180(W), channel axes swapped  (``kernels/conv.py``)
    ∂L/∂U[ξ] = Σ_tiles V[ξ]ᵀ @ ∂L/∂M[ξ],   ∂L/∂M = A (∂L/∂Y) Aᵀ per tile,   ∂L/∂g = Gᵀ (∂L/∂U) G

On the Numba kernels each block of about SUB tiles (``block_tiles``) is transformed into a
scratch ``V`` small enough to stay in the cache, multiplied on the implicit GEMM's register tiles
(``register_tiles.tile_products``, with V's rows as the "pixels" and the channels as the
"taps"), and transformed back: V and M never leave the cache.  An output whose height or
width is not a multiple of 4 ends in tiles that reach past it: their patches read zeros
there and their outputs past the edge are not stored (a 14×14 output takes 16×16 of tiles,
1.31× the products).  The zero padding is never written out: a tile whose patch lies
inside the input reads it there, one that reaches into the padding first copies its patch,
zeros included, into a small scratch ``P``.

The transforms run over the channels, contiguous in NHWC, as SIMD: each 6×6 transform is
two passes through a small scratch ``T`` (down the columns, then along the rows), each
pass a loop that reads 6 streams and writes 6 (written as one loop making all 36 values,
LLVM leaves it scalar; ``docs/performance.md``).
Indices the loops compute are unsigned: Numba checks a signed index for being negative,
which turned the loads into gathers.  Each scratch has one view in a kernel: V flat
(``_at_v``), ∂L/∂M as panels (``_at_dm``).  Numba compiles a ``prange`` body into a
function whose array arguments LLVM is told do not alias (which lets it vectorize without
run-time overlap checks); two views of one buffer passed into it, one written and one
read, would break that promise.
``parts`` own disjoint runs of consecutive blocks, each its own scratch (reused, in the
cache, across its blocks) and, for ∂L/∂U, its own partial sum, which its first block starts
and its later blocks add to.  ∂L/∂U's count follows from the shape alone (``block_parts``:
about TILES_PER_PART tiles a part, as each partial sum costs a pass over memory to add up),
so its result does not depend on the thread count; the forward, which sums nothing across
parts, takes at least one part per thread.  (Runs, not every parts-th block: each thread
then reads x in order.)
"""
from __future__ import annotations

import functools

import numba
import numpy as np
from numba import njit, prange

from . import jit
from .numba_epilogue import bias_act
from .register_tiles import register_tile, strided_rows, three_row_tile, tile_for, tile_products
from .winograd_transforms import G, a, at, bt, kernel_transform, sandwich
from .workspace import scratch

SUB = 36        # tiles per block, about: V and M of one block stay in the L2 cache
PARTS = 16      # blocks are split into at most this many runs (parts), each with its own scratch
MIN_PARTS, TILES_PER_PART = 4, 1024        # ``block_parts`` (measured on 2 cores: docs/performance.md)


def block_tiles(rows):
    """The tiles of a block for a register tile of ``rows`` rows: SUB rounded up to a multiple
    of them (36 for 3 and 4 rows, 40 for 8), so that every block but the last fills its tiles."""
    return -(-SUB // rows) * rows


@njit(inline="always")
def _tile_origin(t, tiles_h, tiles_w):
    """(image, row, column) of tile t's top-left output pixel (= its input patch's in the
    padded input)."""
    b, r = t // (tiles_h * tiles_w), t % (tiles_h * tiles_w)
    return b, 4 * (r // tiles_w), 4 * (r % tiles_w)


@njit(inline="always")
def _next_tile(b, y0, x0, oh, ow):
    """The origin of the tile after (b, y0, x0) in an output of oh × ow: ``_tile_origin(t + 1)``
    from ``_tile_origin(t)`` without its divisions (64-bit divisions are slow)."""
    x0 += 4
    if x0 >= ow:
        x0, y0 = 0, y0 + 4
        if y0 >= oh:
            y0, b = 0, b + 1
    return b, y0, x0


@njit(inline="always")
def _at_v(part, xi, t, c, sub):
    """Where V[part, ξ, t, 0] lies in the flat scratch V (parts, 36, sub, c): unsigned, so
    that the channel loops are not checked for negative indices (which made them scalar)."""
    return np.uint64(((part * 36 + xi) * sub + t) * c)


@njit(inline="always")
def _transform_patch(x, b, y0, x0, T, V, part, t, sub):
    """V[part, 6i + j, t, :] = (Bᵀ d B)[i, j] of the 6×6 patch d of x at (y0, x0), every channel
    (V flat, ``_at_v``): Bᵀ down each column of d into T[part], then Bᵀ along each row of T
    (= times B).  Each loop reads 6 streams and writes 6, over the channels: SIMD (one loop
    for all 36 values, LLVM left scalar)."""
    c = x.shape[3]
    for j in range(6):
        for ch in range(c):
            column = bt(x[b, y0, x0 + j, ch], x[b, y0 + 1, x0 + j, ch], x[b, y0 + 2, x0 + j, ch],
                         x[b, y0 + 3, x0 + j, ch], x[b, y0 + 4, x0 + j, ch], x[b, y0 + 5, x0 + j, ch])
            for i in range(6):
                T[part, 6 * i + j, ch] = column[i]
    o, step = _at_v(part, 0, t, c, sub), _at_v(0, 1, 0, c, sub)
    for i in range(6):
        for ch in range(np.uint64(c)):
            row = bt(T[part, 6 * i, ch], T[part, 6 * i + 1, ch], T[part, 6 * i + 2, ch],
                      T[part, 6 * i + 3, ch], T[part, 6 * i + 4, ch], T[part, 6 * i + 5, ch])
            v = o + np.uint64(6 * i) * step + ch
            for j in range(6):
                V[v + np.uint64(j) * step] = row[j]


@njit(inline="always")
def _copy_patch(x, b, r0, c0, size, P, part):
    """P[part] = the size × size patch of x at (r0, c0), zeros where it lies outside x."""
    for i in range(size):
        for j in range(size):
            if 0 <= r0 + i < x.shape[1] and 0 <= c0 + j < x.shape[2]:
                for ch in range(x.shape[3]):
                    P[part, i, j, ch] = x[b, r0 + i, c0 + j, ch]
            else:
                for ch in range(x.shape[3]):
                    P[part, i, j, ch] = 0


@njit(inline="always")
def _transform_input(x, top, left, b, y0, x0, P, T, V, part, t, sub):
    """``_transform_patch`` of the tile at (y0, x0) of the padded input, x padded by (top,
    left): read in x, or, when the patch reaches into the padding (or past it, for a tile
    past the output's edge), from P[part], a copy of it with zeros outside x."""
    r0, c0 = y0 - top, x0 - left
    if 0 <= r0 and r0 + 6 <= x.shape[1] and 0 <= c0 and c0 + 6 <= x.shape[2]:
        _transform_patch(x, b, r0, c0, T, V, part, t, sub)
    else:
        _copy_patch(x, b, r0, c0, 6, P, part)
        _transform_patch(P, part, 0, 0, T, V, part, t, sub)


@njit(inline="always")
def _row_out(T, part, i, k):
    """Aᵀ along row i of T[part] (Aᵀ M down the columns), output channel k: the four outputs."""
    return at(T[part, 6 * i, k], T[part, 6 * i + 1, k], T[part, 6 * i + 2, k],
               T[part, 6 * i + 3, k], T[part, 6 * i + 4, k], T[part, 6 * i + 5, k])


@njit(inline="always")
def _store(M, part, t, T, E, bias, relu, y, b, y0, x0):
    """The tile's outputs Aᵀ M A (4×4, M[i, j] = M[part, 6i + j, t, :]), plus the bias and
    through the ReLU when ``relu``, into y at (y0, x0): Aᵀ down each column of M into T[part],
    then along each row, stored as act(v + b) (the layer's epilogue, ``kernels/epilogue.py``).
    Rows and columns past y's edge are not stored (a tile's row is stored through E[part]
    when some of its columns are)."""
    f = y.shape[3]
    for j in range(6):
        for k in range(f):
            column = at(M[part, j, t, k], M[part, 6 + j, t, k], M[part, 12 + j, t, k],
                         M[part, 18 + j, t, k], M[part, 24 + j, t, k], M[part, 30 + j, t, k])
            for i in range(4):
                T[part, 6 * i + j, k] = column[i]
    columns = min(4, y.shape[2] - x0)
    for i in range(min(4, y.shape[1] - y0)):
        if columns == 4:
            for k in range(f):
                out = _row_out(T, part, i, k)
                for j in range(4):
                    y[b, y0 + i, x0 + j, k] = bias_act(out[j], bias[k], relu)
        else:
            for k in range(f):
                out = _row_out(T, part, i, k)
                for j in range(4):
                    E[part, j, k] = out[j]
            for j in range(columns):
                for k in range(f):
                    y[b, y0 + i, x0 + j, k] = bias_act(E[part, j, k], bias[k], relu)


@functools.cache
def _forward_kernel(ROWS, PANEL):
    """The Winograd forward compiled for one register tile, ROWS × PANEL."""
    @jit.kernel(fastmath={"contract"})
    def winograd_forward(x, top, left, panels, bias, relu, y, P, T, E, V, M):
        """y = act(the 'valid' 3×3 convolution of x padded by (top, left, …) with the kernel
        (``kernel_transform``'s panels) + bias), act the ReLU when ``relu``, else the identity.
        Per block of ``sub`` tiles (M's third axis, a multiple of ROWS): V = Bᵀ d B of each
        patch, M[ξ] = V[ξ] @ U[ξ] on the register tiles, Y = Aᵀ M A."""
        tiles_h, tiles_w = -(-y.shape[1] // 4), -(-y.shape[2] // 4)
        tiles, c = x.shape[0] * tiles_h * tiles_w, x.shape[3]
        parts, sub, n_panels = M.shape[0], M.shape[2], panels.shape[0] // 36
        tap, step = np.arange(c).astype(np.uint64), np.uint64(c)
        blocks = -(-tiles // sub)
        for part in prange(parts):
            for blk in range(part * blocks // parts, (part + 1) * blocks // parts):
                first, count = blk * sub, min(sub, tiles - blk * sub)
                b, y0, x0 = _tile_origin(first, tiles_h, tiles_w)
                for t in range(count):
                    _transform_input(x, top, left, b, y0, x0, P, T, V, part, t, sub)
                    b, y0, x0 = _next_tile(b, y0, x0, y.shape[1], y.shape[2])
                for t in range(count, -(-count // ROWS) * ROWS):    # read by the last register tile, not stored
                    for xi in range(36):
                        for ch in range(np.uint64(c)):
                            V[_at_v(part, xi, t, c, sub) + ch] = 0
                for xi in range(36):
                    for r0 in range(0, count, ROWS):
                        o = _at_v(part, xi, r0, c, sub)
                        for p in range(n_panels):
                            acc = register_tile((ROWS, PANEL), y.dtype)
                            tile_products(acc, V, strided_rows(o, step, 0, ROWS - 1), tap, panels, xi * n_panels + p)
                            for i in range(ROWS):
                                for j in range(PANEL):
                                    M[part, xi, r0 + i, p * PANEL + j] = acc[i, j]
                b, y0, x0 = _tile_origin(first, tiles_h, tiles_w)
                for t in range(count):
                    _store(M, part, t, T, E, bias, relu, y, b, y0, x0)
                    b, y0, x0 = _next_tile(b, y0, x0, y.shape[1], y.shape[2])
    return winograd_forward


@njit(inline="always")
def _at_dm(part, xi, p, n_panels):
    """Which of dM's panels is part's (ξ, panel p): dM (parts·36·n_panels, sub, PANEL) holds
    ∂L/∂M as the panels that ``_tile_products`` reads."""
    return (part * 36 + xi) * n_panels + p


@njit(inline="always")
def _transform_grad_patch(g, b, y0, x0, T, dM, bias_sum, part, t):
    """dM[_at_dm(part, 6i + j, panel), t, column] = (A g Aᵀ)[i, j] of the 4×4 of g at (y0, x0),
    for output channel panel·PANEL + column: A down each column of g into T[part], then
    along each row; and the 4×4's sum, (A g Aᵀ)[1, 1], added to bias_sum[part, channel]."""
    f, width = g.shape[3], dM.shape[2]
    for j in range(4):
        for k in range(f):
            column = a(g[b, y0, x0 + j, k], g[b, y0 + 1, x0 + j, k], g[b, y0 + 2, x0 + j, k], g[b, y0 + 3, x0 + j, k])
            for i in range(6):
                T[part, 4 * i + j, k] = column[i]
    n_panels = -(-f // width)
    step = np.uint64(n_panels)                      # from ξ's panel to ξ + 1's
    for p in range(n_panels):
        q = np.uint64(_at_dm(part, 0, p, n_panels))
        for i in range(6):
            r = q + np.uint64(6 * i) * step
            for j in range(min(width, f - p * width)):  # indices unsigned: not checked for being negative, so SIMD
                k = np.uint64(p * width + j)
                row = a(T[part, 4 * i, k], T[part, 4 * i + 1, k], T[part, 4 * i + 2, k], T[part, 4 * i + 3, k])
                for jj in range(6):
                    dM[r + np.uint64(jj) * step, t, j] = row[jj]
        for j in range(min(width, f - p * width)):
            bias_sum[part, np.uint64(p * width + j)] += dM[q + np.uint64(7) * step, t, j]


@njit(inline="always")
def _transform_output_grad(dy, b, y0, x0, Q, T, dM, bias_sum, part, t):
    """``_transform_grad_patch`` of the tile at (y0, x0): read in dy, or, for a tile past
    the output's edge, from Q[part], a copy of its 4×4 with zeros outside dy."""
    if y0 + 4 <= dy.shape[1] and x0 + 4 <= dy.shape[2]:
        _transform_grad_patch(dy, b, y0, x0, T, dM, bias_sum, part, t)
    else:
        _copy_patch(dy, b, y0, x0, 4, Q, part)
        _transform_grad_patch(Q, part, 0, 0, T, dM, bias_sum, part, t)


@functools.cache
def _kernel_grad_kernel(ROWS, PANEL):
    """∂L/∂U's kernel compiled for one register tile, ROWS (channels) × PANEL (filters)."""
    @jit.kernel(fastmath={"contract"})
    def winograd_kernel_grad(x, top, left, dy, P, Q, T, V, dM, partial, bias_sum):
        """partial[part, ξ] = Σ over the part's tiles of V[ξ]ᵀ @ ∂L/∂M[ξ], with V = Bᵀ d B of
        each patch and ∂L/∂M = A (∂L/∂Y) Aᵀ of each tile's 4×4 of dy, then partial[0] = Σ over
        the parts (∂L/∂U, parallel over ξ); bias_sum[part] = Σ over the part's tiles of their dy
        (∂L/∂b's share, summed as dy is read);
        ∂L/∂M is laid out as panels (``_at_dm``) so that the register tiles read it as they
        read the kernel's panels in the forward."""
        f = dy.shape[3]
        tiles_h, tiles_w = -(-dy.shape[1] // 4), -(-dy.shape[2] // 4)
        tiles, c = x.shape[0] * tiles_h * tiles_w, x.shape[3]
        parts, n_panels, rows, sub = partial.shape[0], -(-f // PANEL), partial.shape[2], dM.shape[1]
        tap = (np.arange(sub) * c).astype(np.uint64)        # from one tile's row of V to the next
        blocks, last = -(-tiles // sub), c - 1
        for part in prange(parts):
            for k in range(f):
                bias_sum[part, k] = 0
            for xi in range(36):
                for t in range(sub):                        # the last panel's columns past f
                    for k in range(f, n_panels * PANEL):
                        dM[_at_dm(part, xi, n_panels - 1, n_panels), t, k % PANEL] = 0
            first_blk = part * blocks // parts
            for blk in range(first_blk, (part + 1) * blocks // parts):
                first, count = blk * sub, min(sub, tiles - blk * sub)
                b, y0, x0 = _tile_origin(first, tiles_h, tiles_w)
                for t in range(sub):
                    if t < count:
                        _transform_input(x, top, left, b, y0, x0, P, T, V, part, t, sub)
                        _transform_output_grad(dy, b, y0, x0, Q, T, dM, bias_sum, part, t)
                        b, y0, x0 = _next_tile(b, y0, x0, dy.shape[1], dy.shape[2])
                    else:                                   # past the last tile: adds nothing
                        for xi in range(36):
                            for ch in range(np.uint64(c)):
                                V[_at_v(part, xi, t, c, sub) + ch] = 0
                            for p in range(n_panels):
                                for j in range(PANEL):
                                    dM[_at_dm(part, xi, p, n_panels), t, j] = 0
                for xi in range(36):
                    for c0 in range(0, rows, ROWS):
                        o = _at_v(part, xi, 0, c, sub)
                        for p in range(n_panels):
                            acc = register_tile((ROWS, PANEL), partial.dtype)
                            if blk > first_blk:                 # the sum so far (the first block starts from the
                                for i in range(ROWS):           # zeroed tile): loaded into the registers, not added
                                    for j in range(PANEL):      # to after (one pass over ``partial``, not two)
                                        acc[i, j] = partial[part, xi, c0 + i, p * PANEL + j]
                            tile_products(acc, V, strided_rows(o, np.uint64(1), c0, last), tap, dM,
                                          _at_dm(part, xi, p, n_panels))
                            for i in range(ROWS):
                                for j in range(PANEL):
                                    partial[part, xi, c0 + i, p * PANEL + j] = acc[i, j]
        for xi in prange(36):                   # the parts' sums into part 0's, in part order
            for part in range(1, parts):
                for ch in range(rows):
                    for k in range(n_panels * PANEL):
                        partial[0, xi, ch, k] += partial[part, xi, ch, k]
    return winograd_kernel_grad


def _tile_count(out_shape):
    """The 4×4 tiles of an output (n, oh, ow, f): its edge tiles may reach past it."""
    return out_shape[0] * -(-out_shape[1] // 4) * -(-out_shape[2] // 4)


def block_parts(tiles, sub):
    """How many parts the blocks of ``tiles`` tiles (``sub`` a block) are split into.  Each
    part has its own scratch, in the cache only while its blocks run, and, in ∂L/∂U, its own
    partial sum, whose every element takes one multiply-add per tile of the part and costs a
    pass over memory (written by the part, read as the parts are added up).  So a part gets
    about TILES_PER_PART tiles; there are at least MIN_PARTS (for the threads to share; below
    (MIN_PARTS + 1)·TILES_PER_PART tiles also at most, so at most that many threads work on
    ∂L/∂U), at most PARTS, never more than the blocks.  From the shape alone, so the result
    does not depend on the thread count."""
    return min(PARTS, -(-tiles // sub), max(MIN_PARTS, tiles // TILES_PER_PART))


def _scratch(workspace, name, shape, dtype):
    """A scratch buffer named after its shape too: the forward's and ∂L/∂x's (of other
    channel counts) then each keep their own across steps."""
    return scratch(workspace, f"winograd_{name}_{'x'.join(map(str, shape))}", shape, dtype)


def _check_padding(x, pads, out_hw, caller):
    padded_hw = (x.shape[1] + pads[0] + pads[1], x.shape[2] + pads[2] + pads[3])
    if padded_hw != (out_hw[0] + 2, out_hw[1] + 2):
        raise ValueError(f"winograd.{caller}: expected a padded input 2 larger than the output, got input "
                         f"{x.shape[1:3]} padded by {tuple(pads)}, output {tuple(out_hw)}")


def conv2d(x, pads, W, y, workspace=None, bias=None, relu=False):
    """y (n, oh, ow, f) = act(the 'valid' convolution of x (n, h, w, c) zero-padded by pads =
    (top, bottom, left, right) to (oh + 2, ow + 2) with W (3, 3, c, f) + bias), act the ReLU
    when ``relu``, else the identity (no bias: None).  Scratch (P, T, E, V, M) in
    ``workspace``."""
    _check_padding(x, pads, y.shape[1:3], "conv2d")
    c, f = W.shape[2:]
    tile = tile_for(f, three_row_tile(), whole_registers=True)     # on a tie: the products' depth, c, is short
    sub = block_tiles(tile[0])
    tiles = _tile_count(y.shape)
    parts = min(max(block_parts(tiles, sub), numba.get_num_threads()), -(-tiles // sub))
    P = _scratch(workspace, "P", (parts, 6, 6, c), y.dtype)
    T = _scratch(workspace, "T", (parts, 36, max(c, f)), y.dtype)
    E = _scratch(workspace, "E", (parts, 4, f), y.dtype)
    V = _scratch(workspace, "V", (parts * 36 * sub * c,), y.dtype)
    M = _scratch(workspace, "M", (parts, 36, sub, -(-f // tile[1]) * tile[1]), y.dtype)
    bias = np.zeros(f, y.dtype) if bias is None else bias
    _forward_kernel(*tile)(np.ascontiguousarray(x), pads[0], pads[2], kernel_transform(W, tile[1], workspace), bias, relu, y,
                   P, T, E, V, M)
    return y


def conv2d_kernel_grad(x, pads, dy, workspace=None):
    """(∂L/∂W (3, 3, c, f), ∂L/∂b (f,)) of ``conv2d`` given dy (n, oh, ow, f): ∂L/∂W = Gᵀ
    (Σ_parts partial, summed by the kernel) G in dy's dtype, and ∂L/∂b = Σ_parts bias_sum, in float64 and cast back.
    Split into ``block_parts`` parts, each of at least one block (a part without one would
    add a partial sum it never started)."""
    _check_padding(x, pads, dy.shape[1:3], "conv2d_kernel_grad")
    c, f = x.shape[3], dy.shape[3]
    tile = tile_for(f, three_row_tile())     # on a tie: the products' depth, c, is short
    n_panels = -(-f // tile[1])
    sub = block_tiles(tile[0])
    tiles = _tile_count(dy.shape)
    parts = block_parts(tiles, sub)
    P = _scratch(workspace, "P", (parts, 6, 6, c), dy.dtype)
    Q = _scratch(workspace, "Q", (parts, 4, 4, f), dy.dtype)
    T = _scratch(workspace, "T", (parts, 36, max(c, f)), dy.dtype)
    V = _scratch(workspace, "V", (parts * 36 * sub * c,), dy.dtype)
    dM = _scratch(workspace, "dM", (parts * 36 * n_panels, sub, tile[1]), dy.dtype)
    partial = _scratch(workspace, "dU", (parts, 36, -(-c // tile[0]) * tile[0], n_panels * tile[1]), dy.dtype)
    bias_sum = _scratch(workspace, "db", (parts, f), np.float64)
    _kernel_grad_kernel(*tile)(np.ascontiguousarray(x), pads[0], pads[2], np.ascontiguousarray(dy), P, Q, T, V, dM, partial,
                       bias_sum)
    dU = partial[0, :, :c, :f].reshape(6, 6, c, f)
    return sandwich(G.T.astype(dy.dtype), dU), bias_sum.sum(axis=0).astype(dy.dtype)
