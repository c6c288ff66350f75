"""Loop-based reference implementations — the oracle for every fast kernel.

They are written to read like the equations, one output element at a time, and are
slow on purpose.  NHWC input ``x (n, h, w, c)``, HWIO kernel ``W (kh, kw, c, f)``.
"""
from __future__ import annotations

import numpy as np

from .geometry import window_geometry


def _padded(x, pads, value=0.0):
    top, bottom, left, right = pads
    n, h, w, c = x.shape
    out = np.full((n, h + top + bottom, w + left + right, c), value, dtype=x.dtype)
    out[:, top:top + h, left:left + w, :] = x
    return out


def conv2d_forward(x, W, b, strides=(1, 1), padding="valid"):
    """y[b,p,q,o] = Σ_{i,j,ch} x_pad[b, p·sh+i, q·sw+j, ch] · W[i,j,ch,o] + b[o]"""
    n, h, w, c = x.shape
    kh, kw, _, f = W.shape
    (sh, sw) = strides
    oh, ow, pads = window_geometry(h, w, (kh, kw), strides, padding)
    xp = _padded(x, pads)
    y = np.zeros((n, oh, ow, f), dtype=x.dtype)
    for bi in range(n):
        for p in range(oh):
            for q in range(ow):
                for o in range(f):
                    total = 0.0 if b is None else b[o]
                    for i in range(kh):
                        for j in range(kw):
                            for ch in range(c):
                                total += xp[bi, p * sh + i, q * sw + j, ch] * W[i, j, ch, o]
                    y[bi, p, q, o] = total
    return y


def conv2d_backward(x, W, dy, strides=(1, 1), padding="valid"):
    """(dx, dW, db):
    dW[i,j,ch,o] = Σ_{b,p,q} x_pad[b, p·sh+i, q·sw+j, ch] · dy[b,p,q,o]
    dx_pad[b, p·sh+i, q·sw+j, ch] += W[i,j,ch,o] · dy[b,p,q,o]
    db[o] = Σ_{b,p,q} dy[b,p,q,o]"""
    n, h, w, c = x.shape
    kh, kw, _, f = W.shape
    (sh, sw) = strides
    oh, ow, pads = window_geometry(h, w, (kh, kw), strides, padding)
    xp = _padded(x, pads)
    dxp = np.zeros_like(xp)
    dW = np.zeros_like(W)
    db = np.zeros(f, dtype=dy.dtype)
    for bi in range(n):
        for p in range(oh):
            for q in range(ow):
                for o in range(f):
                    g = dy[bi, p, q, o]
                    db[o] += g
                    for i in range(kh):
                        for j in range(kw):
                            for ch in range(c):
                                dW[i, j, ch, o] += xp[bi, p * sh + i, q * sw + j, ch] * g
                                dxp[bi, p * sh + i, q * sw + j, ch] += W[i, j, ch, o] * g
    top, _, left, _ = pads
    return dxp[:, top:top + h, left:left + w, :], dW, db


def maxpool_forward(x, pool=(2, 2), strides=None, padding="valid"):
    """y[b,p,q,ch] = max over the window (−inf padding); returns (y, argmax (row, col))."""
    strides = strides or pool
    n, h, w, c = x.shape
    oh, ow, pads = window_geometry(h, w, pool, strides, padding)
    xp = _padded(x, pads, -np.inf)
    y = np.zeros((n, oh, ow, c), dtype=x.dtype)
    where = np.zeros((n, oh, ow, c, 2), dtype=np.int64)
    for bi in range(n):
        for p in range(oh):
            for q in range(ow):
                for ch in range(c):
                    best, arg = -np.inf, (0, 0)
                    for i in range(pool[0]):          # row-major scan, strict '>' keeps the first max
                        for j in range(pool[1]):
                            v = xp[bi, p * strides[0] + i, q * strides[1] + j, ch]
                            if v > best:
                                best, arg = v, (p * strides[0] + i, q * strides[1] + j)
                    y[bi, p, q, ch] = best
                    where[bi, p, q, ch] = arg
    return y, where


def maxpool_backward(x, dy, pool=(2, 2), strides=None, padding="valid"):
    """dx_pad[b, argmax, ch] += dy[b,p,q,ch] for every window."""
    strides = strides or pool
    n, h, w, c = x.shape
    _, where = maxpool_forward(x, pool, strides, padding)
    _, _, pads = window_geometry(h, w, pool, strides, padding)
    dxp = np.zeros((n, h + pads[0] + pads[1], w + pads[2] + pads[3], c), dtype=dy.dtype)
    for bi in range(n):
        for p in range(dy.shape[1]):
            for q in range(dy.shape[2]):
                for ch in range(c):
                    r, s = where[bi, p, q, ch]
                    dxp[bi, r, s, ch] += dy[bi, p, q, ch]
    return dxp[:, pads[0]:pads[0] + h, pads[2]:pads[2] + w, :]


def dense_forward(x, W, b):
    """y[..., u] = Σ_k x[..., k] W[k, u] + b[u]"""
    x2 = x.reshape(-1, x.shape[-1])
    y = np.zeros((x2.shape[0], W.shape[1]), dtype=x.dtype)
    for r in range(x2.shape[0]):
        for u in range(W.shape[1]):
            y[r, u] = sum(x2[r, k] * W[k, u] for k in range(W.shape[0])) + (0 if b is None else b[u])
    return y.reshape(*x.shape[:-1], W.shape[1])


def dense_backward(x, W, dy):
    """dW[k,u] = Σ_r x[r,k] dy[r,u];  db[u] = Σ_r dy[r,u];  dx[r,k] = Σ_u dy[r,u] W[k,u]"""
    x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    dW = np.zeros_like(W)
    dx2 = np.zeros_like(x2)
    for r in range(x2.shape[0]):
        for k in range(W.shape[0]):
            for u in range(W.shape[1]):
                dW[k, u] += x2[r, k] * dy2[r, u]
                dx2[r, k] += dy2[r, u] * W[k, u]
    return dx2.reshape(x.shape), dW, dy2.sum(axis=0)


def batchnorm_forward(x, gamma, beta, mean=None, var=None, epsilon=1e-3):
    """Channels last.  y[..., c] = γ[c]·(x[..., c] − μ[c]) / √(σ²[c] + ε) + β[c], with μ, σ²
    the batch's (biased) statistics over every other axis when ``mean``/``var`` are None;
    returns (y, μ, σ²)."""
    c = x.shape[-1]
    rows = x.reshape(-1, c)
    m = rows.shape[0]
    y = np.zeros_like(rows)
    mus, variances = np.zeros(c), np.zeros(c)
    for ch in range(c):
        mu = sum(rows[r, ch] for r in range(m)) / m if mean is None else mean[ch]
        v = sum((rows[r, ch] - mu) ** 2 for r in range(m)) / m if var is None else var[ch]
        for r in range(m):
            y[r, ch] = gamma[ch] * (rows[r, ch] - mu) / np.sqrt(v + epsilon) + beta[ch]
        mus[ch], variances[ch] = mu, v
    return y.reshape(x.shape), mus, variances


def batchnorm_backward(x, gamma, dy, epsilon=1e-3):
    """Training mode, channels last, staged one node at a time (the graph of
    ``docs/backprop.md``): μ, xc = x − μ, v = Σxc²/m, s = √(v + ε), x̂ = xc/s, y = γx̂ + β;
    returns (dx, dγ, dβ)."""
    c = x.shape[-1]
    rows, drows = x.reshape(-1, c), dy.reshape(-1, c)
    m = rows.shape[0]
    dx = np.zeros_like(rows)
    dgamma, dbeta = np.zeros(c), np.zeros(c)
    for ch in range(c):
        mu = sum(rows[r, ch] for r in range(m)) / m
        xc = [rows[r, ch] - mu for r in range(m)]
        s = np.sqrt(sum(v * v for v in xc) / m + epsilon)
        dxhat = [drows[r, ch] * gamma[ch] for r in range(m)]
        dgamma[ch] = sum(drows[r, ch] * xc[r] / s for r in range(m))
        dbeta[ch] = sum(drows[r, ch] for r in range(m))
        ds = sum(-dxhat[r] * xc[r] / s ** 2 for r in range(m))          # x̂ = xc / s
        dv = ds / (2 * s)                                                # s = √(v + ε)
        dxc = [dxhat[r] / s + dv * 2 * xc[r] / m for r in range(m)]      # through x̂ and v
        dmu = -sum(dxc)                                                  # xc = x − μ
        for r in range(m):
            dx[r, ch] = dxc[r] + dmu / m
    return dx.reshape(x.shape), dgamma, dbeta


def avgpool_forward(x, pool=(2, 2), strides=None, padding="valid"):
    """y[b,p,q,ch] = the mean of the window's cells that lie inside the image."""
    strides = strides or pool
    n, h, w, c = x.shape
    oh, ow, (top, _, left, _) = window_geometry(h, w, pool, strides, padding)
    y = np.zeros((n, oh, ow, c), dtype=x.dtype)
    for bi in range(n):
        for p in range(oh):
            for q in range(ow):
                for ch in range(c):
                    cells = [x[bi, r, s, ch] for r in range(p * strides[0] - top, p * strides[0] - top + pool[0])
                             for s in range(q * strides[1] - left, q * strides[1] - left + pool[1])
                             if 0 <= r < h and 0 <= s < w]
                    y[bi, p, q, ch] = sum(cells) / len(cells)
    return y


def avgpool_backward(x_shape, dy, pool=(2, 2), strides=None, padding="valid"):
    """dx[b, r, s, ch] += dy[b,p,q,ch] / count for every window cell (r, s) inside the image."""
    strides = strides or pool
    n, h, w, c = x_shape
    _, _, (top, _, left, _) = window_geometry(h, w, pool, strides, padding)
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for bi in range(n):
        for p in range(dy.shape[1]):
            for q in range(dy.shape[2]):
                cells = [(r, s) for r in range(p * strides[0] - top, p * strides[0] - top + pool[0])
                         for s in range(q * strides[1] - left, q * strides[1] - left + pool[1])
                         if 0 <= r < h and 0 <= s < w]
                for ch in range(c):
                    for r, s in cells:
                        dx[bi, r, s, ch] += dy[bi, p, q, ch] / len(cells)
    return dx


def zero_padding2d(x, pads):
    """y[b, top + i, left + j, ch] = x[b, i, j, ch]; zeros elsewhere."""
    return _padded(x, pads)


def cropping2d(x, crops):
    """y[b, i, j, ch] = x[b, top + i, left + j, ch] for the rows and columns left."""
    top, bottom, left, right = crops
    n, h, w, c = x.shape
    y = np.zeros((n, h - top - bottom, w - left - right, c), dtype=x.dtype)
    for bi, i, j, ch in np.ndindex(*y.shape):
        y[bi, i, j, ch] = x[bi, top + i, left + j, ch]
    return y


def upsampling2d_forward(x, size):
    """y[b, i, j, ch] = x[b, i // sh, j // sw, ch]  (nearest)."""
    n, h, w, c = x.shape
    y = np.zeros((n, h * size[0], w * size[1], c), dtype=x.dtype)
    for bi, i, j, ch in np.ndindex(*y.shape):
        y[bi, i, j, ch] = x[bi, i // size[0], j // size[1], ch]
    return y


def upsampling2d_backward(dy, size):
    """dx[b, i // sh, j // sw, ch] += dy[b, i, j, ch]."""
    n, h, w, c = dy.shape
    dx = np.zeros((n, h // size[0], w // size[1], c), dtype=dy.dtype)
    for bi, i, j, ch in np.ndindex(*dy.shape):
        dx[bi, i // size[0], j // size[1], ch] += dy[bi, i, j, ch]
    return dx


def permute(x, dims):
    """y[b, i_{d1}, …, i_{dk}] = x[b, i_1, …, i_k]  (``dims`` 1-indexed, Keras)."""
    y = np.zeros((x.shape[0], *(x.shape[d] for d in dims)), dtype=x.dtype)
    for index in np.ndindex(*x.shape):
        y[(index[0], *(index[d] for d in dims))] = x[index]
    return y


def depthwise_conv2d_forward(x, W, strides=(1, 1), padding="valid", rate=(1, 1)):
    """y[b,p,q,ch·m+k] = Σ_{i,j} x_pad[b, p·sh+i·dh, q·sw+j·dw, ch] · W[i,j,ch,k]"""
    n, h, w, c = x.shape
    kh, kw, _, m = W.shape
    (sh, sw), (dh, dw) = strides, rate
    oh, ow, pads = window_geometry(h, w, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), strides, padding)
    xp = _padded(x, pads)
    y = np.zeros((n, oh, ow, c * m), dtype=x.dtype)
    for bi, p, q, ch, k in np.ndindex(n, oh, ow, c, m):
        y[bi, p, q, ch * m + k] = sum(xp[bi, p * sh + i * dh, q * sw + j * dw, ch] * W[i, j, ch, k]
                                      for i in range(kh) for j in range(kw))
    return y


def depthwise_conv2d_backward(x, W, dy, strides=(1, 1), padding="valid", rate=(1, 1)):
    """(dx, dW): dW[i,j,ch,k] = Σ_{b,p,q} x_pad[b, p·sh+i·dh, q·sw+j·dw, ch] · dy[b,p,q,ch·m+k];
    dx_pad[b, p·sh+i·dh, q·sw+j·dw, ch] += W[i,j,ch,k] · dy[b,p,q,ch·m+k]"""
    n, h, w, c = x.shape
    kh, kw, _, m = W.shape
    (sh, sw), (dh, dw) = strides, rate
    _, _, pads = window_geometry(h, w, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), strides, padding)
    xp = _padded(x, pads)
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for bi, p, q, ch, k in np.ndindex(n, dy.shape[1], dy.shape[2], c, m):
        g = dy[bi, p, q, ch * m + k]
        for i in range(kh):
            for j in range(kw):
                dW[i, j, ch, k] += xp[bi, p * sh + i * dh, q * sw + j * dw, ch] * g
                dxp[bi, p * sh + i * dh, q * sw + j * dw, ch] += W[i, j, ch, k] * g
    top, _, left, _ = pads
    return dxp[:, top:top + h, left:left + w, :], dW
