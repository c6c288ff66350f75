// col2im as a GATHER (the adjoint of im2col), as ops/im2col.py:
//   dx[b, y, x, ch] = sum over taps (i, j) with p = (y + top - i)/sh, q = (x + left - j)/sw
//                     integral and in range of dcols[(b, p, q), (i, j, ch)]
//
// Thread -> element mapping: one thread per INPUT element (b, y, x, ch), grid-stride loop
// over t = ((b*h + y)*w + x)*c + ch.  Each thread owns its output element and sums its own
// contributions: no atomics, deterministic results.
#include "nhwc.cuh"

template <typename T>
__global__ void col2im(const T* __restrict__ dcols, T* __restrict__ dx, int n, int h, int w, int c,
                       int kh, int kw, int sh, int sw, int top, int left, int oh, int ow) {
    const long long total = (long long)n * h * w * c;
    const long long K = (long long)kh * kw * c;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const Nhwc e = split_nhwc(t, h, w, c);
        T sum = T(0);
        for_each_window_reading(e.b, e.y, e.x, kh, kw, sh, sw, top, left, oh, ow, [&](int i, int j, long long row) {
            sum += dcols[row * K + (i * kw + j) * c + e.ch];
        });
        dx[t] = sum;
    }
}

template __global__ void col2im<float>(const float*, float*, int, int, int, int, int, int, int, int, int, int,
                                       int, int);
template __global__ void col2im<double>(const double*, double*, int, int, int, int, int, int, int, int, int,
                                        int, int, int);
