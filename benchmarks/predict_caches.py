"""``predict`` with and without the backward's caches: MNIST 24/48/64
(``architectures.mnist_deconstructed``) on the Numba kernels, batch 1024.

Two variants of the same weights and inputs: ``forward_only`` (what ``predict`` runs: each
step's caches dropped once it has run, the fused conv + ReLU + pool writing no switches,
``minicnn/inference.py``) and ``kept`` (``predict`` with that switched off, every cache kept
as a training forward keeps it).  For each: the best of ``--repeats`` calls after one warm-up,
and the peak resident memory of a fresh process running only that variant.

    python benchmarks/predict_caches.py [--batch 1024] [--repeats 5]
"""
import argparse
import subprocess
import sys

RUN = """
import contextlib, json, resource, sys, time
import numpy as np
import minicnn as mc
from minicnn import architectures, training
variant, batch, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if variant == "kept":
    training.forward_only = contextlib.nullcontext
mc.set_kernels("numba")
mc.set_seed(0)
model = architectures.mnist_deconstructed()
x = np.random.default_rng(0).uniform(0, 1, (batch, 28, 28, 1)).astype("float32")
model.predict(x, batch_size=batch)
times = []
for _ in range(repeats):
    start = time.perf_counter()
    model.predict(x, batch_size=batch)
    times.append(time.perf_counter() - start)
print(json.dumps({"variant": variant, "best_ms": 1e3 * min(times),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for variant in ("kept", "forward_only"):
        out = subprocess.run([sys.executable, "-c", RUN, variant, str(args.batch), str(args.repeats)],
                             check=True, capture_output=True, text=True).stdout
        print(out.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
