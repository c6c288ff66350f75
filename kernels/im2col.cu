// im2col for NHWC input, as ops/im2col.py:
//   cols[(b, p, q), (i, j, ch)] = x_pad[b, p*sh + i, q*sw + j, ch]   (0 in the padding)
//
// Thread -> element mapping: a block of (IM2COL_LANES, rows per block) threads; each thread
// row takes one row of cols at a time (a grid-stride loop over rows), its lanes the columns
// col = lane, lane + IM2COL_LANES, ...  Consecutive lanes write consecutive columns of one row,
// and (for c > 1) read consecutive channels: both coalesced.  The row's coordinates (b, p, q)
// are split once per row; a column's (i, j, ch) in 32-bit arithmetic, since 64-bit division
// per element costs more than the copy itself.
template <typename T>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ cols, int n, int h, int w, int c,
                       int kh, int kw, int sh, int sw, int top, int left, int oh, int ow) {
    const int K = kh * kw * c;
    const long long rows = (long long)n * oh * ow;
    for (long long row = blockIdx.x * (long long)blockDim.y + threadIdx.y; row < rows;
         row += (long long)gridDim.x * blockDim.y) {
        const int q = (int)(row % ow), p = (int)((row / ow) % oh);
        const long long b = row / ((long long)ow * oh);
        const T* __restrict__ image = x + b * h * w * c;
        T* __restrict__ out = cols + row * K;
        for (int col = threadIdx.x; col < K; col += blockDim.x) {
            const int tap = col / c, ch = col - tap * c;
            const int i = tap / kw, j = tap - i * kw;
            const int y = p * sh + i - top, xx = q * sw + j - left;
            out[col] = (y >= 0 && y < h && xx >= 0 && xx < w) ? image[((long long)y * w + xx) * c + ch] : T(0);
        }
    }
}

template __global__ void im2col<float>(const float*, float*, int, int, int, int, int, int, int, int, int, int,
                                       int, int);
template __global__ void im2col<double>(const double*, double*, int, int, int, int, int, int, int, int, int,
                                        int, int, int);
