// col2im as a GATHER (the adjoint of im2col), as ops/im2col.py:
//   dx[b, y, x, ch] = sum over taps (i, j) with p = (y + top - i)/sh, q = (x + left - j)/sw
//                     integral and in range of dcols[(b, p, q), (i, j, ch)]
//
// Thread -> element mapping: one thread per INPUT element (b, y, x, ch), grid-stride loop
// over t = ((b*h + y)*w + x)*c + ch.  Each thread owns its output element and sums its own
// contributions: no atomics, deterministic results.
template <typename T>
__global__ void col2im(const T* __restrict__ dcols, T* __restrict__ dx, int n, int h, int w, int c,
                       int kh, int kw, int sh, int sw, int top, int left, int oh, int ow) {
    const long long total = (long long)n * h * w * c;
    const long long K = (long long)kh * kw * c;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const int ch = (int)(t % c);
        const int xx = (int)((t / c) % w);
        const int y = (int)((t / ((long long)c * w)) % h);
        const long long b = t / ((long long)c * w * h);
        T sum = T(0);
        for (int i = 0; i < kh; ++i) {
            const int py = y + top - i;
            if (py < 0 || py % sh != 0 || py / sh >= oh) continue;
            for (int j = 0; j < kw; ++j) {
                const int qx = xx + left - j;
                if (qx < 0 || qx % sw != 0 || qx / sw >= ow) continue;
                const long long row = (b * oh + py / sh) * ow + qx / sw;
                sum += dcols[row * K + (i * kw + j) * c + ch];
            }
        }
        dx[t] = sum;
    }
}

template __global__ void col2im<float>(const float*, float*, int, int, int, int, int, int, int, int, int, int,
                                       int, int);
template __global__ void col2im<double>(const double*, double*, int, int, int, int, int, int, int, int, int,
                                        int, int, int);
