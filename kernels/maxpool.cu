// Max pooling with arg-max switches, as ops/pool.py.
//
// maxpool_forward — thread -> element: one thread per OUTPUT element (b, p, q, ch); it scans
//   its ph x pw window row-major and keeps the FIRST maximum (strict '>'); padded cells are
//   skipped (they act as -inf).  Writes y and switch = i*pw + j.
// maxpool_backward — a gather, thread -> element: one thread per INPUT element (b, y, x, ch);
//   it visits every window that contains it and adds dy where that window's switch points
//   at it.  No atomics; overlapping windows (stride < pool) add deterministically.
#include <cuda/std/limits>

template <typename T>
__global__ void maxpool_forward(const T* __restrict__ x, T* __restrict__ y, int* __restrict__ switches,
                                int n, int h, int w, int c, int ph, int pw, int sh, int sw, int top, int left,
                                int oh, int ow) {
    const long long total = (long long)n * oh * ow * c;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const int ch = (int)(t % c);
        const int q = (int)((t / c) % ow);
        const int p = (int)((t / ((long long)c * ow)) % oh);
        const long long b = t / ((long long)c * ow * oh);
        T best = -cuda::std::numeric_limits<T>::infinity();
        int arg = 0;
        for (int i = 0; i < ph; ++i) {
            const int yy = p * sh + i - top;
            if (yy < 0 || yy >= h) continue;
            for (int j = 0; j < pw; ++j) {
                const int xx = q * sw + j - left;
                if (xx < 0 || xx >= w) continue;
                const T v = x[((b * h + yy) * w + xx) * c + ch];
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
        const int ch = (int)(t % c);
        const int xx = (int)((t / c) % w);
        const int y = (int)((t / ((long long)c * w)) % h);
        const long long b = t / ((long long)c * w * h);
        T sum = T(0);
        for (int i = 0; i < ph; ++i) {
            const int py = y + top - i;                 // window row p with p*sh + i = y + top
            if (py < 0 || py % sh != 0 || py / sh >= oh) continue;
            for (int j = 0; j < pw; ++j) {
                const int qx = xx + left - j;
                if (qx < 0 || qx % sw != 0 || qx / sw >= ow) continue;
                const long long o = ((b * oh + py / sh) * ow + qx / sw) * c + ch;
                if (switches[o] == i * pw + j) sum += dy[o];
            }
        }
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
