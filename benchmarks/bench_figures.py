"""The figures a benchmark run measures beside its cases (``bench_harness.main``): the sgemm
ceiling, the per-layer table of the MNIST CNN and the Numba kernels' compile times (the cold
start).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time


def gemm_ceiling(size=2048, repeats=5):
    import numpy as np
    a = np.random.default_rng(0).standard_normal((size, size)).astype("float32")
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def layer_table(repeats=5):
    """GFLOP/s of each layer of the MNIST CNN (batch 256), forward and backward, Numba kernels."""
    import numpy as np
    import minicnn as mc
    from minicnn import architectures
    mc.set_seed(0)
    mc.set_kernels("numba")
    model = architectures.mnist_deconstructed()
    x = np.random.default_rng(0).uniform(0, 1, (256, 28, 28, 1)).astype("float32")
    rows, a = [], x
    for layer in model.layers:
        inp = a
        a = layer.forward(inp, training=True)
        dy = np.ones_like(a)
        fwd = min(_timed(lambda: layer.forward(inp, training=True)) for _ in range(repeats))
        bwd = min(_timed(lambda: (layer.forward(inp, training=True), layer.backward(dy))) for _ in range(repeats)) - fwd
        flops = 0
        if hasattr(layer, "kernel_size"):
            n, oh, ow, f = a.shape
            flops = 2 * n * oh * ow * layer.kernel_size[0] * layer.kernel_size[1] * inp.shape[-1] * f
        elif type(layer).__name__ == "Dense":
            flops = 2 * np.prod(inp.shape) * layer.units
        rows.append({"layer": layer.name, "type": type(layer).__name__, "forward_ms": fwd * 1000,
                     "backward_ms": bwd * 1000, "forward_gflops": flops / fwd / 1e9 if flops else None,
                     "backward_gflops": 2 * flops / bwd / 1e9 if flops and bwd > 0 else None})
    return rows


_FIRST_STEP = ("import time, numpy as np, minicnn as mc; from minicnn import architectures; "
               "m = architectures.mnist_convnet(); m.compile('rmsprop', 'sparse_categorical_crossentropy'); "
               "x = np.zeros((8, 28, 28, 1), 'float32'); y = np.zeros(8, 'int64'); t = time.perf_counter(); "
               "m.train_on_batch(x, y); m.predict(x, verbose=0); print(time.perf_counter() - t)")


def jit_compile_times():
    """Seconds of a first training step + prediction (MNIST convnet, Numba kernels) in a
    fresh process: with an empty kernel cache (every kernel it uses is compiled), then in
    a second process that finds the cache the first one wrote (``cache=True``)."""
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "MINICNN_KERNELS": "numba"}
        cold, cached = [float(subprocess.run([sys.executable, "-c", _FIRST_STEP], env=env, check=True,
                                             capture_output=True, text=True).stdout.split()[-1])
                        for _ in range(2)]
    return {"cold_cache_s": cold, "warm_cache_s": cached}
