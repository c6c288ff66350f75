// Index helpers shared by the NHWC kernels (col2im.cu, maxpool.cu).
#pragma once

// A flat index t into an (n, h, w, c) tensor, split into its coordinates.
struct Nhwc {
    long long b;
    int y, x, ch;
};

// Three 64-bit divisions, each remainder from its quotient: 64-bit division is emulated on
// the GPU and costs more than the element's copy.
__device__ inline Nhwc split_nhwc(long long t, int h, int w, int c) {
    Nhwc e;
    const long long pixel = t / c, image_row = pixel / w;
    e.ch = (int)(t - pixel * c);
    e.x = (int)(pixel - image_row * w);
    e.b = image_row / h;
    e.y = (int)(image_row - e.b * h);
    return e;
}

// The gather at the heart of every backward pass here: for input pixel (b, y, x), call
// f(i, j, row) once for each tap (i, j) of a kh x kw window (strides sh, sw; padding top,
// left) whose window reads it, i.e. whose output pixel (p, q) has p*sh + i = y + top and
// q*sw + j = x + left; row = (b*oh + p)*ow + q is that output pixel's flat index.
template <typename F>
__device__ inline void for_each_window_reading(long long b, int y, int x, int kh, int kw, int sh, int sw,
                                               int top, int left, int oh, int ow, F f) {
    for (int i = 0; i < kh; ++i) {
        const int py = y + top - i;
        if (py < 0 || py % sh != 0 || py / sh >= oh) continue;
        for (int j = 0; j < kw; ++j) {
            const int qx = x + left - j;
            if (qx < 0 || qx % sw != 0 || qx / sw >= ow) continue;
            f(i, j, (b * oh + py / sh) * ow + qx / sw);
        }
    }
}
