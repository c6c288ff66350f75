// Max pooling with arg-max switches, as ops/pool.py.
//
// maxpool_forward — thread -> element: one thread per OUTPUT element (b, p, q, ch); it scans
//   its ph x pw window row-major and keeps the FIRST maximum (strict '>'); padded cells are
//   skipped (they act as -inf).  Writes y and switch = i*pw + j.
// maxpool_backward — a gather, thread -> element: one thread per INPUT element (b, y, x, ch);
//   it visits every window that contains it and adds dy where that window's switch points
//   at it.  No atomics; overlapping windows (stride < pool) add deterministically.
#include <cuda/std/limits>

#include "nhwc.cuh"

template <typename T>
__global__ void maxpool_forward(const T* __restrict__ x, T* __restrict__ y, int* __restrict__ switches,
                                int n, int h, int w, int c, int ph, int pw, int sh, int sw, int top, int left,
                                int oh, int ow) {
    const long long total = (long long)n * oh * ow * c;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const Nhwc o = split_nhwc(t, oh, ow, c);              // output pixel (p, q) = (o.y, o.x)
        T best = -cuda::std::numeric_limits<T>::infinity();
        int arg = 0;
        for (int i = 0; i < ph; ++i) {
            const int yy = o.y * sh + i - top;
            if (yy < 0 || yy >= h) continue;
            for (int j = 0; j < pw; ++j) {
                const int xx = o.x * sw + j - left;
                if (xx < 0 || xx >= w) continue;
                const T v = x[((o.b * h + yy) * w + xx) * c + o.ch];
                if (v > best) { best = v; arg = i * pw + j; }
            }
        }
        y[t] = best;
        switches[t] = arg;
    }
}

template <typename T>
__global__ void maxpool_backward(const T* __restrict__ dy, const int* __restrict__ switches, T* __restrict__ dx,
                                 int n, int h, int w, int c, int ph, int pw, int sh, int sw, int top, int left,
                                 int oh, int ow) {
    const long long total = (long long)n * h * w * c;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const Nhwc e = split_nhwc(t, h, w, c);
        T sum = T(0);
        for_each_window_reading(e.b, e.y, e.x, ph, pw, sh, sw, top, left, oh, ow, [&](int i, int j, long long row) {
            const long long o = row * c + e.ch;
            if (switches[o] == i * pw + j) sum += dy[o];
        });
        dx[t] = sum;
    }
}

template __global__ void maxpool_forward<float>(const float*, float*, int*, int, int, int, int, int, int, int, int,
                                                int, int, int, int);
template __global__ void maxpool_forward<double>(const double*, double*, int*, int, int, int, int, int, int, int,
                                                 int, int, int, int, int);
template __global__ void maxpool_backward<float>(const float*, const int*, float*, int, int, int, int, int, int,
                                                 int, int, int, int, int, int);
template __global__ void maxpool_backward<double>(const double*, const int*, double*, int, int, int, int, int, int,
                                                  int, int, int, int, int, int);
