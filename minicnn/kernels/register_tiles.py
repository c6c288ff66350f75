"""Register tiles: the micro-kernel of every Numba matrix product (the implicit GEMM,
``kernels/implicit_gemm.py``; the fused conv + ReLU + pool; Winograd's 36 products).

A register tile is a ROWS × PANEL block of the output whose accumulators stay in vector
registers through the whole depth loop: per depth step, ROWS values of the left operand
(one per row, broadcast), one row of PANEL values of the right operand, ROWS·PANEL
multiply-adds (``tile_products``).  The right operand is packed beforehand into panels of
PANEL columns (``pack_panels``), which stay in the L1/L2 cache across row blocks — as in
a BLAS micro-kernel.

The tile is shaped for the vector registers of the CPU the kernels are compiled for,
decided once, at import, from the features Numba compiles with (``jit.cpu_features``: on
AVX-512, with 512-bit vectors asked for):

* AVX2: 16 registers of 256 bits (8 float32): 4 × 16 or 3 × 24 tiles, 8 or 9 registers
  of accumulators, the rest for the panel's row and the broadcast values; and 4 × 8 for
  ∂L/∂W's products of at most 8 columns (a layer of 4 filters).  Also AVX-512 told to
  prefer 256-bit vectors (``+prefer-256-bit``);
* AVX-512: 32 registers of 512 bits (16 float32): 4 × 64 (16 accumulator registers: per
  depth step 4 broadcasts and 4 panel loads feed 16 FMAs, where 4 × 32 has 4 and 2 for 8),
  for the column counts that are multiples of 64; 4 × 32 or 3 × 48, the 8 or 9 accumulator
  registers of AVX2's tiles at twice the width; 8 × 16 for 16 columns (one register a row:
  AVX2's 4 × 16 would have 4 accumulators); and AVX2's 3 × 24, for the column counts it pads
  less (24 filters, not 4 × 32's 8 empty columns), except in the Winograd forward
  (``tile_for``'s ``whole_registers``).

At least eight independent accumulators keep two FMA units busy through the FMA's 4-cycle
latency.  Each product is compiled only for the tiles it is called with
(``use_tile_set`` selects the other set, for tests).
"""
from __future__ import annotations

import contextlib

import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import jit

TILE_SETS = {    # the register tiles (rows, panel columns) of each vector ISA: the 4-row one first
    "avx2": ((4, 16), (3, 24)),
    "avx512": ((4, 64), (3, 48), (4, 32), (8, 16), (3, 24)),
}
# ∂L/∂W's extra tiles, for products of at most their width (a layer of 4 filters): there ∂L/∂Y is
# padded to the panel and the partial sums are panel-wide, so a panel of one AVX2 register halves
# that traffic; in a forward the tile's broadcasts bind and it is slower (docs/performance.md)
NARROW_TILE_SETS = {"avx2": ((4, 8),), "avx512": ()}
LANES = {"avx2": 8, "avx512": 16}       # float32 values in one vector register of each set's ISA


def vector_isa(features: str) -> str:
    """'avx512' when the features include AVX-512F and do not ask for 256-bit vectors
    (``jit.with_wide_vectors``), else 'avx2'."""
    listed = features.split(",")
    return "avx512" if "+avx512f" in listed and "+prefer-256-bit" not in listed else "avx2"


VECTOR_ISA = vector_isa(jit.cpu_features())
TILES, NARROW_TILES, TILE_LANES = TILE_SETS[VECTOR_ISA], NARROW_TILE_SETS[VECTOR_ISA], LANES[VECTOR_ISA]


@contextlib.contextmanager
def use_tile_set(isa):
    """Run the products on ``TILE_SETS[isa]`` within the block (any set computes the same
    sums on any CPU: only the speed is the machine's)."""
    global TILES, NARROW_TILES, TILE_LANES
    before, (TILES, NARROW_TILES, TILE_LANES) = (TILES, NARROW_TILES, TILE_LANES), (TILE_SETS[isa], NARROW_TILE_SETS[isa],
                                                                                 LANES[isa])
    try:
        yield
    finally:
        TILES, NARROW_TILES, TILE_LANES = before


def four_row_tile(n=None):
    """The widest 4-row tile of the set in use, or, given n, the 4-row tile whose panels pad
    n columns the least (the fused conv + pool's: a 2×2 window per tile)."""
    fours = [tile for tile in TILES if tile[0] == 4]
    return fours[0] if n is None else min(fours, key=lambda tile: -(-n // tile[1]) * tile[1])


def three_row_tile():
    """The 3-row tile of the set in use."""
    return TILES[1]


def tile_for(n, on_a_tie=None, narrow=False, whole_registers=False):
    """The tile whose panels pad n columns the least (``on_a_tie``, by default the widest
    4-row tile, when it is among those that pad alike; else the first of them); ``narrow``:
    ∂L/∂W's products, which may also take a ``NARROW_TILES`` tile that n fits in;
    ``whole_registers``: only tiles whose rows fill whole vector registers (the Winograd
    forward's: there LLVM compiles a row of 1½ registers, AVX-512's 3 × 24, to half-width
    products merged into full-width sums, slower than the padded 4 × 32)."""
    on_a_tie = on_a_tie or four_row_tile()
    tiles = [*TILES, *(tile for tile in NARROW_TILES if narrow and n <= tile[1])]
    tiles = [tile for tile in tiles if not whole_registers or tile[1] % TILE_LANES == 0]
    return min(tiles, key=lambda tile: (-(-n // tile[1]) * tile[1], tile != on_a_tie))


def panels_shape(shape, width):
    """The shape ``pack_panels`` gives b of ``shape`` (…, depth, n): (…, n_panels, depth, width)."""
    *batch, depth, n = shape
    return (*batch, -(-n // width), depth, width)


def scratch_panels(workspace, shape, width, dtype):
    """A scratch buffer of ``workspace`` (None: no buffer) for the panels of a b of ``shape``,
    named by its shape so that ops packing differently shaped weights keep one each."""
    if workspace is None:
        return None
    shape = panels_shape(shape, width)
    return workspace.get(f"panels_{'x'.join(map(str, shape))}", shape, dtype)


def pack_panels(b, width, dtype, out=None):
    """b (…, depth, n) packed into zero-padded panels (…, n_panels, depth, width) of its columns,
    written into ``out`` when given (a buffer of ``panels_shape``, e.g. a workspace's: the
    weights are packed every step), else into a new array."""
    panels = np.empty(panels_shape(b.shape, width), dtype) if out is None else out
    n, n_panels = b.shape[-1], panels.shape[-3]
    for p in range(n_panels):
        columns = b[..., p * width:(p + 1) * width]
        panels[..., p, :, :columns.shape[-1]] = columns
    panels[..., n_panels - 1, :, n - (n_panels - 1) * width:] = 0        # the last panel's padding
    return panels


TILE_CAPACITY = max(rows * columns for tiles in TILE_SETS.values() for rows, columns in tiles)   # accumulators, at most


@intrinsic
def _stack_values(typingctx, dtype):
    """A pointer to TILE_CAPACITY uninitialised values of ``dtype`` on the calling
    function's stack (an LLVM ``alloca`` in its entry block)."""
    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(dtype.dtype), size=TILE_CAPACITY)
    return types.CPointer(dtype.dtype)(dtype), codegen


@njit(inline="always")
def register_tile(shape, dtype):
    """A zeroed (rows, columns) array of accumulators on the stack.  Nothing else can point
    into it, so LLVM keeps it in registers through a depth loop; a heap array (np.zeros)
    might alias the arrays the loop reads, so each multiply-add would load and store it.
    ``shape`` is one of TILE_SETS', which TILE_CAPACITY holds.  (No check here: a ``prange`` loop
    that can raise is compiled to run serially.)"""
    acc = carray(_stack_values(dtype), shape)
    for i in range(shape[0]):
        for j in range(shape[1]):
            acc[i, j] = 0
    return acc


@njit(inline="always")
def table_rows(table, first, last):
    """The offsets of a register tile's rows ``first`` … ``first + 7`` in ``table``, the rows
    past ``last`` repeating it (read, never stored): eight, the most rows a tile has
    (``tile_products`` reads the first ROWS)."""
    return (table[min(first, last)], table[min(first + 1, last)], table[min(first + 2, last)],
            table[min(first + 3, last)], table[min(first + 4, last)], table[min(first + 5, last)],
            table[min(first + 6, last)], table[min(first + 7, last)])


@njit(inline="always")
def strided_rows(o, step, first, last):
    """``table_rows`` of evenly spaced rows: o + min(first + i, last)·step, i = 0 … 7 (unsigned)."""
    return (o + np.uint64(min(first, last)) * step, o + np.uint64(min(first + 1, last)) * step,
            o + np.uint64(min(first + 2, last)) * step, o + np.uint64(min(first + 3, last)) * step,
            o + np.uint64(min(first + 4, last)) * step, o + np.uint64(min(first + 5, last)) * step,
            o + np.uint64(min(first + 6, last)) * step, o + np.uint64(min(first + 7, last)) * step)


@njit(inline="always")
def row_values(x_flat, rows_at, t, rows):
    """x_flat[rows_at[i] + t] for the tile's ``rows`` (3, 4 or 8) rows, as eight named values
    (the ones past ``rows`` repeat the third, unread): named, not a loop over an array, so
    that they stay in registers."""
    o0, o1, o2, o3, o4, o5, o6, o7 = rows_at
    a0, a1, a2 = x_flat[o0 + t], x_flat[o1 + t], x_flat[o2 + t]
    a3 = a4 = a5 = a6 = a7 = a2
    if rows >= 4:
        a3 = x_flat[o3 + t]
    if rows == 8:
        a4, a5, a6, a7 = x_flat[o4 + t], x_flat[o5 + t], x_flat[o6 + t], x_flat[o7 + t]
    return a0, a1, a2, a3, a4, a5, a6, a7


@njit(inline="always", fastmath={"contract"})     # contract: a·b + c may be one FMA
def multiply_add_row(acc, j, values, w):
    """acc[i, j] += values[i]·w for the tile's rows (its height a compile-time constant)."""
    rows = acc.shape[0]
    a0, a1, a2, a3, a4, a5, a6, a7 = values
    acc[0, j] += a0 * w
    acc[1, j] += a1 * w
    acc[2, j] += a2 * w
    if rows >= 4:
        acc[3, j] += a3 * w
    if rows == 8:
        acc[4, j] += a4 * w
        acc[5, j] += a5 * w
        acc[6, j] += a6 * w
        acc[7, j] += a7 * w


@njit(inline="always", fastmath={"contract"})
def tile_products(acc, x_flat, rows_at, tap, panels, panel):
    """The implicit GEMM's inner loops, inlined into the kernels that use them, for a
    register tile ``acc`` of ROWS (3, 4 or 8) × PANEL accumulators (sizes known when it is
    inlined): ``acc += cols[rows] @ panel``, the rows of cols read from x at the offsets
    ``rows_at`` (``table_rows``, ``strided_rows``) plus each tap.

    The accumulators stay in registers through the whole depth loop: per depth step,
    ROWS values of cols (one per row), one row of the panel, ROWS·PANEL multiply-adds.
    The panel (depth × PANEL values) stays in the L1/L2 cache across row blocks."""
    rows, width = acc.shape
    for k in range(panels.shape[1]):
        values = row_values(x_flat, rows_at, tap[k], rows)
        for j in range(width):
            multiply_add_row(acc, j, values, panels[panel, k, j])
