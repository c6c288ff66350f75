// Fused softmax + categorical cross-entropy from logits z (n, k) and targets y (n, k):
//   loss[r]  = logsumexp(z[r]) * sum_k y[r, k] - sum_k y[r, k] z[r, k]
//   dz[r, k] = (softmax(z[r])_k * sum_k y[r, k] - y[r, k]) / n
//
// Thread -> element mapping: one thread per ROW r (grid-stride loop); the thread makes three
// passes over its row (max, sum of exponentials, outputs).  Rows are independent.
template <typename T>
__global__ void softmax_xent(const T* __restrict__ z, const T* __restrict__ y, T* __restrict__ loss,
                             T* __restrict__ dz, int n, int k) {
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < n; r += blockDim.x * gridDim.x) {
        const T* zr = z + (long long)r * k;
        const T* yr = y + (long long)r * k;
        T m = zr[0];
        for (int j = 1; j < k; ++j) m = zr[j] > m ? zr[j] : m;
        T s = T(0), ysum = T(0), yz = T(0);
        for (int j = 0; j < k; ++j) { s += exp(zr[j] - m); ysum += yr[j]; yz += yr[j] * zr[j]; }
        loss[r] = (m + log(s)) * ysum - yz;
        for (int j = 0; j < k; ++j) dz[(long long)r * k + j] = (exp(zr[j] - m) / s * ysum - yr[j]) / n;
    }
}

template __global__ void softmax_xent<float>(const float*, const float*, float*, float*, int, int);
template __global__ void softmax_xent<double>(const double*, const double*, double*, double*, int, int);
