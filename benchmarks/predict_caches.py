"""``predict`` with and without the backward's caches: MNIST 24/48/64
(``architectures.mnist_deconstructed``) on the Numba kernels, batch 1024.

Two variants of the same weights and inputs: ``forward_only`` (what ``predict`` runs: each
step's caches dropped once it has run, the fused conv + ReLU + pool writing no switches,
``minicnn/inference.py``) and ``kept`` (``predict`` with that switched off, every cache kept
as a training forward keeps it).  Times: the best of ``--repeats`` calls of each, in one
process, the two variants taking turns (so that a load from elsewhere hits both alike).
CPU seconds as well as wall seconds (on a shared machine the wall time counts others' work
too).  Peak resident memory: a fresh process per variant, the peak of one call after a
warm-up (Linux's VmHWM, reset through /proc/self/clear_refs).

    python benchmarks/predict_caches.py [--batch 1024] [--repeats 5]
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)            # this checkout's minicnn, also in the child processes (cwd)

VARIANT = """
import contextlib, json, sys
import numpy as np
import minicnn as mc
from minicnn import architectures, training
if sys.argv[1] == "kept":
    training.forward_only = contextlib.nullcontext
mc.set_kernels("numba")
mc.set_seed(0)
model = architectures.mnist_deconstructed()
x = np.random.default_rng(0).uniform(0, 1, (int(sys.argv[2]), 28, 28, 1)).astype("float32")
model.predict(x, batch_size=len(x))                 # kernels loaded, buffers made
with open("/proc/self/clear_refs", "w") as f:       # the peak (VmHWM) starts again from now
    f.write("5")
model.predict(x, batch_size=len(x))
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"peak_rss_mb": int(hwm.split()[1]) / 1024}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import minicnn as mc
    from minicnn import architectures, inference, training
    mc.set_kernels("numba")
    mc.set_seed(0)
    model = architectures.mnist_deconstructed()
    x = np.random.default_rng(0).uniform(0, 1, (args.batch, 28, 28, 1)).astype("float32")
    variants = {"kept": contextlib.nullcontext, "forward_only": inference.forward_only}
    times, cpu = ({name: [] for name in variants} for _ in range(2))
    for repeat in range(args.repeats + 1):
        for name, context in variants.items():
            training.forward_only = context
            start, start_cpu = time.perf_counter(), time.process_time()
            model.predict(x, batch_size=args.batch)
            if repeat:                                   # the first round warms up
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    training.forward_only = inference.forward_only
    for name in variants:
        out = subprocess.run([sys.executable, "-c", VARIANT, name, str(args.batch)],
                             check=True, capture_output=True, text=True, cwd=REPO).stdout
        print(json.dumps({"variant": name, "best_ms": round(1e3 * min(times[name]), 1),
                          "median_ms": round(1e3 * float(np.median(times[name])), 1),
                          "best_cpu_ms": round(1e3 * min(cpu[name]), 1),
                          **json.loads(out.strip().splitlines()[-1])}))


if __name__ == "__main__":
    main()
