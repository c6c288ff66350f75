// Fused bias + activation, in place on the GEMM output z of shape (m, f):
//   bias_act_forward:  z[r, k] <- act(z[r, k] + b[k])          act: 0 linear, 1 relu, 2 sigmoid
//   act_backward:      dz[t] = da[t] * act'(from the output a[t])  relu: [a > 0]; sigmoid: a(1 - a)
//
// Thread -> element mapping: one thread per element t = r*f + k (grid-stride loop); the bias
// index is t % f.  Element-wise, so every thread owns its element.
template <typename T>
__device__ T activate(T v, int act) {
    if (act == 1) return v > T(0) ? v : T(0);
    if (act == 2) return v >= T(0) ? T(1) / (T(1) + exp(-v)) : exp(v) / (T(1) + exp(v));
    return v;
}

template <typename T>
__global__ void bias_act_forward(T* __restrict__ z, const T* __restrict__ b, long long m, int f, int act) {
    const long long total = m * f;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        z[t] = activate(z[t] + (b ? b[t % f] : T(0)), act);
    }
}

template <typename T>
__global__ void act_backward(const T* __restrict__ da, const T* __restrict__ a, T* __restrict__ dz,
                             long long total, int act) {
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const T out = a[t];
        dz[t] = act == 1 ? (out > T(0) ? da[t] : T(0)) : act == 2 ? da[t] * out * (T(1) - out) : da[t];
    }
}

template __global__ void bias_act_forward<float>(float*, const float*, long long, int, int);
template __global__ void bias_act_forward<double>(double*, const double*, long long, int, int);
template __global__ void act_backward<float>(const float*, const float*, float*, long long, int);
template __global__ void act_backward<double>(const double*, const double*, double*, long long, int);
