// im2col for NHWC input, as ops/im2col.py:
//   cols[(b, p, q), (i, j, ch)] = x_pad[b, p*sh + i, q*sw + j, ch]   (0 in the padding)
//
// Thread -> element mapping: one thread per element of cols (n*oh*ow rows, K = kh*kw*c
// columns), grid-stride loop over t = row*K + col.  Consecutive threads write consecutive
// columns of one row, and (for c > 1) read consecutive channels: both coalesced.
template <typename T>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ cols, int n, int h, int w, int c,
                       int kh, int kw, int sh, int sw, int top, int left, int oh, int ow) {
    const long long K = (long long)kh * kw * c;
    const long long total = (long long)n * oh * ow * K;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const long long row = t / K;
        const int col = (int)(t % K);
        const int ch = col % c, j = (col / c) % kw, i = col / (c * kw);
        const int q = (int)(row % ow), p = (int)((row / ow) % oh);
        const long long b = row / ((long long)ow * oh);
        const int y = p * sh + i - top, xx = q * sw + j - left;
        cols[t] = (y >= 0 && y < h && xx >= 0 && xx < w) ? x[((b * h + y) * w + xx) * c + ch] : T(0);
    }
}

template __global__ void im2col<float>(const float*, float*, int, int, int, int, int, int, int, int, int, int,
                                       int, int);
template __global__ void im2col<double>(const double*, double*, int, int, int, int, int, int, int, int, int,
                                        int, int, int);
