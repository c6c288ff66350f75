"""Numba CPU kernels for the copy-heavy ops and conv's matrix products (explicit, and
implicit: read from the padded input); the math is that of the NumPy versions (and of BLAS).

Parallelism (``prange``) is only ever over an axis whose iterations write disjoint
outputs, so there are no races and results are deterministic:

* ``im2col``: over (image, output row) — each owns its rows of ``cols``;
* ``col2im``: a *gather* over (image, input row) — each input pixel sums the column
  entries that were copied from it (no scatter, no atomics);
* max-pool forward: over (image, output row); backward: over images (each image's
  windows only touch that image's ``dx``);
* ReLU backward from the output (``dz = da · [a > 0]`` in one pass): over elements;
* bias + activation forward (``kernels/epilogue.py``): over rows; ReLU backward fused with
  the bias gradient: over a fixed number of row blocks, each summing its own rows;
* softmax–cross-entropy from the logits: over samples (each owns its row of ∂L/∂z);
* the RMSprop and Adam updates (``optimizers.py``): over elements;
* the implicit-GEMM convolution (``kernels/conv.py``; a matrix product, ``kernels/matmul.py``,
  is its 1×1 case): over (row block, column panel) tiles, each owning its tile of the
  output; its ∂L/∂W: over (block of pixels, tile of ∂L/∂W) pairs, each writing its own
  partial sum;
* zero padding: over (image, padded row).

The channel axis is innermost (NHWC), so every inner loop is a contiguous run of values.

Compiled on first use for each dtype and cached on disk (``cache=True``).
"""
from __future__ import annotations

import functools

import numpy as np
from numba import carray, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import jit

IM2COL_PIXELS_FROM_CHANNELS = 8    # measured: below this, copying whole window rows is faster


@jit.kernel()
def _im2col_pixels(x, cols, kh, kw, sh, sw, top, left, oh, ow):
    """For many channels: one pixel (c contiguous values) at a time, through row views."""
    n, h, w, c = x.shape
    for task in prange(n * oh):
        b, p = task // oh, task % oh
        for q in range(ow):
            row = cols[(b * oh + p) * ow + q]           # this output pixel's row of cols
            x0 = q * sw - left
            for i in range(kh):
                y = p * sh + i - top
                for j in range(kw):
                    xx, d = x0 + j, (i * kw + j) * c
                    if 0 <= y < h and 0 <= xx < w:
                        pixel = x[b, y, xx]             # c contiguous values (NHWC)
                        for ch in range(c):
                            row[d + ch] = pixel[ch]
                    else:                               # zero padding
                        for ch in range(c):
                            row[d + ch] = 0


@jit.kernel()
def _im2col_window_rows(x, cols, kh, kw, sh, sw, top, left, oh, ow):
    """For few channels: a window row inside the image is kw·c contiguous values of x."""
    n, h, w, c = x.shape
    xf, cf = x.reshape(-1), cols.reshape(-1)            # flat views: plain offset arithmetic
    k_size = kh * kw * c
    for task in prange(n * oh):
        b, p = task // oh, task % oh
        for q in range(ow):
            dst = ((b * oh + p) * ow + q) * k_size
            x0 = q * sw - left
            for i in range(kh):
                y = p * sh + i - top
                d = dst + i * kw * c
                if 0 <= y < h and 0 <= x0 and x0 + kw <= w:     # the kernel row lies inside: kw·c
                    src, dst_row = np.uint64(((b * h + y) * w + x0) * c), np.uint64(d)   # contiguous values
                    for k in range(np.uint64(kw * c)):          # (unsigned: no negative-index check)
                        cf[dst_row + k] = xf[src + k]
                    continue
                for j in range(kw):
                    xx = x0 + j
                    if 0 <= y < h and 0 <= xx < w:
                        src = ((b * h + y) * w + xx) * c
                        for ch in range(c):
                            cf[d + j * c + ch] = xf[src + ch]
                    else:
                        for ch in range(c):
                            cf[d + j * c + ch] = 0


@jit.kernel()
def _col2im(cols, dx, kh, kw, sh, sw, top, left, oh, ow):
    n, h, w, c = dx.shape
    for task in prange(n * h):
        b, y = task // h, task % h
        row = dx[b, y]                                  # (w, c): this task's input row
        row[:] = 0
        for i in range(kh):
            t = y + top - i                             # the output row p that read input row y
            if t < 0 or t % sh != 0 or t // sh >= oh:   # through kernel row i has p·sh = t
                continue
            first = (b * oh + t // sh) * ow             # its first row of cols
            for q in range(ow):
                src = cols[first + q]
                for j in range(kw):
                    xx = q * sw + j - left
                    if 0 <= xx < w:
                        base = (i * kw + j) * c
                        for ch in range(c):
                            row[xx, ch] += src[base + ch]


@jit.kernel()
def _maxpool_forward(x, y, switches, ph, pw, sh, sw, top, left):
    """Over flat views with unsigned offsets (no negative-index check: measured 1.7× faster)."""
    n, h, w, c = x.shape
    _, oh, ow, _ = y.shape
    xf, yf, sf, channels = x.reshape(-1), y.reshape(-1), switches.reshape(-1), np.uint64(c)
    for task in prange(n * oh):
        b, p = task // oh, task % oh
        for q in range(ow):
            o = np.uint64(((b * oh + p) * ow + q) * c)     # this window's running max and argmax,
            inside = max(0, top - p * sh) * pw + max(0, left - q * sw)   # over all channels at once;
            for ch in range(channels):                      # the argmax starts inside the image
                yf[o + ch] = -np.inf
                sf[o + ch] = inside
            for i in range(ph):
                yy = p * sh + i - top
                if yy < 0 or yy >= h:
                    continue
                for j in range(pw):
                    xx = q * sw + j - left
                    if xx < 0 or xx >= w:
                        continue
                    k, pixel = np.int32(i * pw + j), np.uint64(((b * h + yy) * w + xx) * c)
                    for ch in range(channels):              # branchless, so the loop vectorizes
                        better = xf[pixel + ch] > yf[o + ch]    # strict '>' keeps the first maximum
                        yf[o + ch] = xf[pixel + ch] if better else yf[o + ch]
                        sf[o + ch] = k if better else sf[o + ch]


@jit.kernel()
def _maxpool_backward(dy, switches, y, relu_gate, dx, routed, ph, pw, sh, sw, top, left):
    """Each window adds its gradient at the pixel its switch names: switch k = i·pw + j
    lies ``offset[k] = (i·w + j)·c`` values after the window's first pixel (a table
    made once, so no division per element).  With ``relu_gate`` the gradient is first
    gated by [y > 0] (the backward of a ReLU below the pool, ``kernels/pool.py``);
    ``routed[b, ch]`` sums what image b routed.  Unsigned offsets, as in the forward (a
    window's first pixel may lie in the padding, before its image: the unsigned sum
    wraps back into it)."""
    n, h, w, c = dx.shape
    _, oh, ow, _ = dy.shape
    offset = np.empty(ph * pw, np.uint64)
    for k in range(ph * pw):
        offset[k] = ((k // pw) * w + k % pw) * c
    gf, sf, yf, df, channels = dy.reshape(-1), switches.reshape(-1), y.reshape(-1), dx.reshape(-1), np.uint64(c)
    for b in prange(n):                             # each image owns its slice of dx
        df[b * h * w * c:(b + 1) * h * w * c] = 0
        routed[b] = 0
        for p in range(oh):
            for q in range(ow):
                o = np.uint64(((b * oh + p) * ow + q) * c)
                first = np.uint64(((b * h + p * sh - top) * w + q * sw - left) * c)   # the window's (0, 0)
                for ch in range(channels):          # += : overlapping windows add up
                    g = gf[o + ch] if not relu_gate or yf[o + ch] > 0 else 0
                    df[first + offset[sf[o + ch]] + ch] += g
                    routed[b, ch] += g


@jit.kernel()
def relu_backward(da, a, dz):
    """dz = da · [a > 0] (a = relu output, so a > 0 exactly where z > 0), flat arrays."""
    for i in prange(da.size):
        dz[i] = da[i] if a[i] > 0 else 0


@jit.kernel()
def _pad(x, out, top, left):
    """out = x framed by zeros (top rows, left columns, and the rest after); over
    (image, row of out)."""
    n, h, w, _ = x.shape
    hp = out.shape[1]
    for task in prange(n * hp):
        b, y = task // hp, task % hp
        row = out[b, y]
        if y < top or y >= top + h:
            row[:] = 0
        else:
            row[:left] = 0
            row[left:left + w] = x[b, y - top]
            row[left + w:] = 0


def pad(x, pads, out):
    """x (n, h, w, c) zero-padded by (top, bottom, left, right) into ``out``."""
    _pad(np.ascontiguousarray(x), out, pads[0], pads[2])
    return out


def im2col(x, kernel, strides, pads, out_hw, out=None):
    n, _, _, c = x.shape
    if out is None:
        out = np.empty((n * out_hw[0] * out_hw[1], kernel[0] * kernel[1] * c), dtype=x.dtype)
    kernel_fn = _im2col_pixels if c >= IM2COL_PIXELS_FROM_CHANNELS else _im2col_window_rows
    kernel_fn(np.ascontiguousarray(x), out, kernel[0], kernel[1], strides[0], strides[1],
              pads[0], pads[2], out_hw[0], out_hw[1])
    return out


def col2im(cols, x_shape, kernel, strides, pads, out_hw, out=None):
    dx = out if out is not None else np.empty(x_shape, dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), dx, kernel[0], kernel[1], strides[0], strides[1],
            pads[0], pads[2], out_hw[0], out_hw[1])
    return dx


def maxpool_forward(x, pool, strides, pads, out_hw, out=None):
    n, _, _, c = x.shape
    y, switches = out if out is not None else (np.empty((n, *out_hw, c), dtype=x.dtype),
                                               np.empty((n, *out_hw, c), dtype=np.int32))
    _maxpool_forward(np.ascontiguousarray(x), y, switches, pool[0], pool[1],
                     strides[0], strides[1], pads[0], pads[2])
    return y, switches


def maxpool_backward(dy, switches, x_shape, pool, strides, pads, out=None, relu_output=None):
    """dx (x_shape) from dy.  With ``relu_output`` (the pool's output, when its input is a
    ReLU's output) the ReLU's backward too: ``(dz, ∂L/∂b)`` (see ``kernels/pool.py``)."""
    dx = out if out is not None else np.empty(x_shape, dtype=dy.dtype)
    routed = np.empty((x_shape[0], x_shape[3]), np.float64)
    gated = relu_output is not None
    y = relu_output if gated else dy                # (ungated: y is not read)
    _maxpool_backward(np.ascontiguousarray(dy), switches, y, gated, dx, routed,
                      pool[0], pool[1], strides[0], strides[1], pads[0], pads[2])
    return (dx, routed.sum(axis=0).astype(dy.dtype)) if gated else dx


TILES = ((4, 16), (3, 24))    # register tiles (rows, panel columns): 4·16 or 3·24 accumulators, 8 or 9 AVX2
                              # registers of float32, as in a BLAS micro-kernel


def tile_for(n, on_a_tie=TILES[0]):
    """The tile whose panels pad n columns the least (``on_a_tie`` when both pad alike).
    Measured: 3 × 24 runs the 24-column products 1.3–1.5× faster; elsewhere 4 × 16 is as
    fast or faster on the implicit GEMM."""
    return min(TILES, key=lambda tile: (-(-n // tile[1]) * tile[1], tile != on_a_tie))


def _panels(b, width, dtype):
    """b (…, depth, n) packed into zero-padded panels (…, n_panels, depth, width) of its columns
    (one allocation: a padded copy and its transpose were two more of b's size per step)."""
    *batch, depth, n = b.shape
    n_panels = -(-n // width)
    panels = np.zeros((*batch, n_panels, depth, width), dtype=dtype)
    for p in range(n_panels):
        columns = b[..., p * width:(p + 1) * width]
        panels[..., p, :, :columns.shape[-1]] = columns
    return panels


@functools.lru_cache(maxsize=64)
def window_offsets(x_pad_shape, kernel, strides, out_hw):
    """(origin, tap) with ``cols[pixel, k] = x_pad.flat[origin[pixel] + tap[k]]``: where
    each output pixel's window starts in the padded input, and where each tap lies in it::

        origin[(b, p, q)] = ((b·hp + p·sh)·wp + q·sw)·c
        tap[(i, j, ch)]   = (i·wp + j)·c + ch

    Unsigned, so the kernels' indexing needs no negative-index check (measured: 12–18%
    faster).  Made once per shape (read-only)."""
    n, hp, wp, c = x_pad_shape
    (kh, kw), (sh, sw), (oh, ow) = kernel, strides, out_hw
    origin = ((np.arange(n)[:, None, None] * hp + np.arange(oh)[:, None] * sh) * wp + np.arange(ow) * sw) * c
    tap = (np.arange(kh)[:, None, None] * wp + np.arange(kw)[:, None]) * c + np.arange(c)
    origin, tap = origin.ravel().astype(np.uint64), tap.ravel().astype(np.uint64)
    origin.flags.writeable = tap.flags.writeable = False
    return origin, tap


TILE_CAPACITY = max(rows * columns for rows, columns in TILES)    # accumulators in a register tile, at most


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
    might alias the arrays the loop reads, so each multiply-add loaded and stored it
    (measured: the 3 × 24 tile's products 2.4× faster, 26 against 10.7 GFLOP/s on one core).
    ``shape`` is one of TILES, which TILE_CAPACITY holds.  (No check here: a ``prange`` loop
    that can raise is compiled to run serially.)"""
    acc = carray(_stack_values(dtype), shape)
    for i in range(shape[0]):
        for j in range(shape[1]):
            acc[i, j] = 0
    return acc


@njit(inline="always", fastmath={"contract"})     # contract: a·b + c may be one FMA
def _tile_products(acc, x_flat, o0, o1, o2, o3, tap, panels, panel):
    """The implicit GEMM's inner loops, inlined into the kernels that use them, for a
    register tile ``acc`` of ROWS (3 or 4) × PANEL accumulators (sizes known when it is
    inlined): ``acc += cols[rows] @ panel``, the rows of cols read from x at ``o0 … o3``
    (a fourth row when ROWS = 4) plus each tap.

    The accumulators stay in registers through the whole depth loop: per depth step,
    ROWS values of cols (one per row), one row of the panel, ROWS·PANEL multiply-adds.
    The panel (depth × PANEL values) stays in the L1/L2 cache across row blocks."""
    rows, width = acc.shape
    for k in range(panels.shape[1]):
        t = tap[k]
        a0, a1, a2, a3 = x_flat[o0 + t], x_flat[o1 + t], x_flat[o2 + t], x_flat[o3 + t]
        for j in range(width):
            w = panels[panel, k, j]
            acc[0, j] += a0 * w
            acc[1, j] += a1 * w
            acc[2, j] += a2 * w
            if rows == 4:
                acc[3, j] += a3 * w


def _implicit_gemm_kernel(ROWS, PANEL):
    """The implicit GEMM compiled for one register tile, ROWS (3 or 4) × PANEL."""
    @jit.kernel(fastmath={"contract"})
    def implicit_gemm(x_flat, origin, tap, panels, out):
        """out = cols @ W2 without writing cols: ``cols[pixel, k] = x_flat[origin[pixel] + tap[k]]``
        (``window_offsets``), W2 packed into panels (n_panels, depth, PANEL) of its columns
        (``_panels``).  Over (row block, panel) tiles, each owning its tile of out."""
        m, f = out.shape
        n_panels = panels.shape[0]
        last = m - 1                                # rows past the end repeat the last (not stored)
        for task in prange(-(-m // ROWS) * n_panels):
            r0, panel = task // n_panels * ROWS, task % n_panels
            c0 = panel * PANEL
            acc = register_tile((ROWS, PANEL), out.dtype)
            _tile_products(acc, x_flat, origin[r0], origin[min(r0 + 1, last)], origin[min(r0 + 2, last)],
                          origin[min(r0 + ROWS - 1, last)], tap, panels, panel)
            rows, cols = min(ROWS, m - r0), min(PANEL, f - c0)
            if rows == ROWS and cols == PANEL:      # (fixed trip counts: vector stores)
                for i in range(ROWS):
                    for j in range(PANEL):
                        out[r0 + i, c0 + j] = acc[i, j]
            else:
                for i in range(rows):
                    for j in range(cols):
                        out[r0 + i, c0 + j] = acc[i, j]
    return implicit_gemm


_IMPLICIT_GEMM = {tile: _implicit_gemm_kernel(*tile) for tile in TILES}


def conv2d(x_pad, W, strides, out):
    """out (n, oh, ow, f), C-contiguous, = the 'valid' convolution of the (already padded)
    x_pad with W (kh, kw, c, f), by the implicit GEMM above on the tile for f."""
    kh, kw, c, f = W.shape
    if not out.flags.c_contiguous:
        raise ValueError("conv2d: expected a C-contiguous out (the kernel writes through a flat view)")
    x_pad = np.ascontiguousarray(x_pad)
    origin, tap = window_offsets(x_pad.shape, (kh, kw), tuple(strides), out.shape[1:3])
    tile = tile_for(f)
    panels = _panels(W.reshape(kh * kw * c, f), tile[1], x_pad.dtype)
    _IMPLICIT_GEMM[tile](x_pad.reshape(-1), origin, tap, panels, out.reshape(-1, f))
    return out


POOLED_TILE = TILES[0]    # 4 × 16: one 2×2 pooling window per tile, its 4 pixels the tile's rows


@njit(inline="always")
def _relu_max_of_4(acc, j, b):
    """(max, first arg-max) over the tile's 4 rows of relu(acc[r, j] + b), branch-free."""
    best, arg = max(acc[0, j] + b, 0), np.int32(0)
    for r in range(1, 4):
        v = max(acc[r, j] + b, 0)
        arg = np.int32(r) if v > best else arg      # strict '>' keeps the first maximum
        best = v if v > best else best
    return best, arg


def _implicit_gemm_relu_maxpool_kernel():
    PANEL = POOLED_TILE[1]

    @jit.kernel(fastmath={"contract"})
    def implicit_gemm_relu_maxpool(x_flat, windows, tap, panels, bias, y, switches):
        """y[w] = max over the 4 pixels of 2×2 window w of relu(cols[pixel] @ W2 + b), and
        the window index (0 … 3) of that maximum in ``switches[w]``: the implicit GEMM with
        the window's pixels ``windows[w]`` (their origins) as the tile's rows, and the
        bias, ReLU and max-pool applied to the accumulators instead of storing them.
        Over (window, panel) tiles, each owning its (window, panel) part of y."""
        m, f = y.shape
        n_panels = panels.shape[0]
        for task in prange(m * n_panels):
            w, panel = task // n_panels, task % n_panels
            c0 = panel * PANEL
            acc = register_tile(POOLED_TILE, y.dtype)
            _tile_products(acc, x_flat, windows[w, 0], windows[w, 1], windows[w, 2], windows[w, 3],
                          tap, panels, panel)
            if c0 + PANEL <= f:                     # (a fixed trip count: vector code)
                for j in range(PANEL):
                    y[w, c0 + j], switches[w, c0 + j] = _relu_max_of_4(acc, j, bias[c0 + j])
            else:
                for j in range(f - c0):
                    y[w, c0 + j], switches[w, c0 + j] = _relu_max_of_4(acc, j, bias[c0 + j])
    return implicit_gemm_relu_maxpool


_IMPLICIT_GEMM_RELU_MAXPOOL = _implicit_gemm_relu_maxpool_kernel()


@functools.lru_cache(maxsize=64)
def window_pixels(x_pad_shape, kernel, strides, out_hw):
    """The origins (``window_offsets``) of the 4 conv output pixels of each 2×2 pooling
    window, (n·ph·pw, 4) in the window's row-major order (its switch numbering); a last
    odd row or column of pixels, in no window, is left out.  Read-only."""
    origin, _ = window_offsets(x_pad_shape, kernel, strides, out_hw)
    (oh, ow), n = out_hw, x_pad_shape[0]
    ph, pw = oh // 2, ow // 2
    pixels = origin.reshape(n, oh, ow)[:, :2 * ph, :2 * pw].reshape(n, ph, 2, pw, 2)
    windows = np.ascontiguousarray(pixels.transpose(0, 1, 3, 2, 4)).reshape(n * ph * pw, 4)
    windows.flags.writeable = False
    return windows


def conv2d_relu_maxpool(x_pad, W, b, strides, conv_hw, y, switches):
    """y (n, ph, pw, f) = maxpool2×2(relu(conv(x_pad, W) + b)) of the conv's (oh, ow) =
    ``conv_hw`` output pixels, with the pool's switches, without forming that output."""
    kh, kw, c, f = W.shape
    x_pad = np.ascontiguousarray(x_pad)
    windows = window_pixels(x_pad.shape, (kh, kw), tuple(strides), tuple(conv_hw))
    _, tap = window_offsets(x_pad.shape, (kh, kw), tuple(strides), tuple(conv_hw))
    panels = _panels(W.reshape(kh * kw * c, f), POOLED_TILE[1], x_pad.dtype)
    _IMPLICIT_GEMM_RELU_MAXPOOL(x_pad.reshape(-1), windows, tap, panels, b, y.reshape(-1, f), switches.reshape(-1, f))
    return y, switches


def matmul(a, b, out=None):
    """out = a @ b for 2-D a (m, depth) and b (depth, n): the 1×1 convolution of m one-pixel
    images of ``depth`` channels with b as its kernel (then cols is ``a`` itself)."""
    (m, depth), n = a.shape, b.shape[1]
    out = out if out is not None else np.empty((m, n), dtype=a.dtype)
    if not out.flags.c_contiguous:
        raise ValueError("matmul: expected a C-contiguous out (the kernel writes through a flat view)")
    conv2d(a.reshape(m, 1, 1, depth), b.reshape(1, 1, depth, n), (1, 1), out.reshape(m, 1, 1, n))
    return out


KERNEL_GRAD_PIXELS = 512     # output pixels per partial sum of ∂L/∂W, at most (measured: their
                             # ∂L/∂O and input rows stay in the L2 cache)


def _kernel_grad_kernel(ROWS, PANEL):
    """∂L/∂W's blocked implicit GEMM compiled for one register tile, ROWS (3 or 4) × PANEL."""
    @jit.kernel(fastmath={"contract"})
    def kernel_grad(x_flat, origin, tap, dy, partial):
        """partial[blk] = colsᵀ @ dY over the pixels of block ``blk`` (one of ``len(partial)``
        equal runs of consecutive output pixels), cols read through the offsets as in the
        implicit GEMM; ∂L/∂W2 = Σ_blk partial[blk].  Parallel over (block, ROWS rows of
        ∂L/∂W2, panel of PANEL columns) tiles, each owning its tile of ``partial``; the block
        count depends on the shape only, so the sum's order, and its result, do not depend
        on the thread count.  When f is not a multiple of PANEL the last panel ends at column
        f, overlapping the one before, and stores only the columns that one did not."""
        m, f = dy.shape
        blocks, depth, _ = partial.shape
        n_panels, row_blocks = -(-f // PANEL), -(-depth // ROWS)
        last = depth - 1                            # rows past the end repeat the last (not stored)
        for task in prange(blocks * row_blocks * n_panels):
            blk, tile = task // (row_blocks * n_panels), task % (row_blocks * n_panels)
            k0, first = tile // n_panels * ROWS, tile % n_panels * PANEL
            done = first - min(first, f - PANEL)    # columns the panel before already computed
            c0 = np.uint64(first - done)
            t0, t1, t2, t3 = tap[k0], tap[min(k0 + 1, last)], tap[min(k0 + 2, last)], tap[min(k0 + ROWS - 1, last)]
            acc = register_tile((ROWS, PANEL), partial.dtype)
            for pixel in range(blk * m // blocks, (blk + 1) * m // blocks):
                o = origin[pixel]
                a0, a1, a2, a3 = x_flat[o + t0], x_flat[o + t1], x_flat[o + t2], x_flat[o + t3]
                for j in range(PANEL):
                    g = dy[np.uint64(pixel), c0 + np.uint64(j)]
                    acc[0, j] += a0 * g
                    acc[1, j] += a1 * g
                    acc[2, j] += a2 * g
                    if ROWS == 4:
                        acc[ROWS - 1, j] += a3 * g
            for i in range(min(ROWS, depth - k0)):
                for j in range(done, PANEL):
                    partial[blk, k0 + i, c0 + np.uint64(j)] = acc[i, j]
    return kernel_grad


_KERNEL_GRAD = {tile: _kernel_grad_kernel(*tile) for tile in TILES}


def conv2d_kernel_grad(x_pad, dy, kernel, strides, workspace=None):
    """∂L/∂W2 (kh·kw·c, f) = colsᵀ @ dY of the 'valid' convolution of x_pad, by the
    blocked implicit GEMM above on the tile for f (f narrower than its panel: ∂L/∂O
    zero-padded to one panel first).  The partial sums live in ``workspace``'s buffer
    ``'dW_blocks'`` when given."""
    n, oh, ow, f = dy.shape
    tile = tile_for(f)

    def buffer(name, shape):
        return workspace.get(name, shape, dy.dtype) if workspace is not None else np.empty(shape, dy.dtype)

    if f < tile[1]:                                 # one panel, its extra columns dropped from the result
        padded = buffer("dy_panel", (n, oh, ow, tile[1]))
        padded[..., :f] = dy
        padded[..., f:] = 0                         # (not garbage: denormals would slow the products)
        dy = padded
    x_pad = np.ascontiguousarray(x_pad)
    origin, tap = window_offsets(x_pad.shape, tuple(kernel), tuple(strides), (oh, ow))
    partial = buffer("dW_blocks", (-(-n * oh * ow // KERNEL_GRAD_PIXELS), tap.size, dy.shape[-1]))
    _KERNEL_GRAD[tile](x_pad.reshape(-1), origin, tap, np.ascontiguousarray(dy).reshape(-1, dy.shape[-1]), partial)
    return partial.sum(axis=0)[:, :f]


@njit(inline="always")
def bias_act(v, b, relu):
    """act(v + b) of one value: the ReLU when ``relu``, else the identity (the epilogue,
    ``kernels/epilogue.py``; also applied by the Winograd forward as it stores)."""
    v = v + b
    return max(v, 0) if relu else v


@jit.kernel()
def bias_act_forward(z, b, relu):
    """z ← act(z + b) in place, z (m, f): linear, or ReLU when ``relu``; over rows."""
    m, f = z.shape
    for r in prange(m):
        for k in range(f):
            z[r, k] = bias_act(z[r, k], b[k], relu)


@jit.kernel()
def bias_grad_blocks(da, a, dz, partial, relu):
    """∂L/∂b as per-block column sums ``partial[blk] = Σ_{rows of blk} dz`` (float64), with
    dz = da · [a > 0] written into ``dz`` in the same pass when ``relu``, else dz = da (``a``
    and ``dz`` then unused); over a fixed number of row blocks, so the order of the sum, and
    its result, do not depend on the thread count."""
    m, f = da.shape
    blocks = partial.shape[0]
    for blk in prange(blocks):
        partial[blk] = 0
        for r in range(blk * m // blocks, (blk + 1) * m // blocks):
            for k in range(f):
                g = da[r, k]
                if relu:
                    g = g if a[r, k] > 0 else 0
                    dz[r, k] = g
                partial[blk, k] += g


@jit.kernel()
def _softmax_cross_entropy(z, y, loss, dz):
    """Per row b (stable, through e^{z − max z}), in one pass over the row::

        loss[b] = logsumexp(z_b) · Σ_k y_bk − Σ_k y_bk z_bk
        dz[b]   = (softmax(z_b) · Σ_k y_bk − y_b) / n
    """
    n, k = z.shape
    for b in prange(n):
        m = z[b, 0]
        for j in range(1, k):
            m = max(m, z[b, j])
        total, y_sum, yz = 0.0, 0.0, 0.0
        for j in range(k):
            e = np.exp(z[b, j] - m)
            dz[b, j] = e
            total += e
            y_sum += y[b, j]
            yz += y[b, j] * z[b, j]
        loss[b] = (m + np.log(total)) * y_sum - yz
        for j in range(k):
            dz[b, j] = (dz[b, j] / total * y_sum - y[b, j]) / n


def softmax_cross_entropy(z, y):
    """(mean loss, ∂L/∂z) for logits z (n, k) and targets y (n, k), fused (see above)."""
    z = np.ascontiguousarray(z)
    loss, dz = np.empty(z.shape[0], dtype=z.dtype), np.empty_like(z)
    _softmax_cross_entropy(z, np.ascontiguousarray(y, dtype=z.dtype), loss, dz)
    return loss.sum() / z.shape[0], dz


@jit.kernel()
def _rmsprop(w, g, v, lr, rho, one_minus_rho, eps):
    for i in prange(w.size):
        v[i] = rho * v[i] + one_minus_rho * g[i] * g[i]
        w[i] -= lr * g[i] / np.sqrt(v[i] + eps)


def rmsprop_update(w, g, v, learning_rate, rho, epsilon):
    """In one pass, in place (flat, C-contiguous w and v): ``v ← ρ·v + (1 − ρ)·g²``,
    ``w ← w − η·g / sqrt(v + ε)`` (RMSprop without momentum).  The scalars are cast to
    w's dtype first, as NumPy does, so the result is the NumPy expressions', bit for bit."""
    t = w.dtype.type
    _rmsprop(w.reshape(-1), np.ascontiguousarray(g, w.dtype).reshape(-1), v.reshape(-1),
             t(learning_rate), t(rho), t(1 - rho), t(epsilon))


@jit.kernel()
def _adam(w, g, m, v, step, one_minus_beta_1, one_minus_beta_2, eps):
    for i in prange(w.size):
        m[i] += one_minus_beta_1 * (g[i] - m[i])
        v[i] += one_minus_beta_2 * (g[i] * g[i] - v[i])
        w[i] -= step * m[i] / (np.sqrt(v[i]) + eps)


def adam_update(w, g, m, v, step_size, beta_1, beta_2, epsilon):
    """In one pass, in place (flat, C-contiguous w, m, v): ``m ← m + (1 − β₁)(g − m)``,
    ``v ← v + (1 − β₂)(g² − v)``, ``w ← w − α·m / (sqrt(v) + ε)``; scalars cast as above."""
    t = w.dtype.type
    _adam(w.reshape(-1), np.ascontiguousarray(g, w.dtype).reshape(-1), m.reshape(-1), v.reshape(-1),
          t(step_size), t(1 - beta_1), t(1 - beta_2), t(epsilon))
