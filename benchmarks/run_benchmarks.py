"""Run the whole benchmark suite (same as ``minicnn bench``): training and inference of the
seed architectures with minicnn (NumPy / Numba kernels), PyTorch (default / tuned) and
TF-Keras (default / oneDNN), plus the per-layer GFLOP/s table; writes
benchmarks/results/<machine class>/benchmark.{json,md,png} (``bench_harness.machine_class``: the
vector ISA and the CPU's vendor, e.g. avx512-intel).

    python benchmarks/run_benchmarks.py [--quick] [--out DIR] [--baseline CHECKOUT]
"""
import argparse

import minicnn  # noqa: F401  (first: sets the thread-pool spin policy before NumPy loads)
from bench_harness import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 steps, 5 cases; writes under OUT/quick")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--baseline", metavar="CHECKOUT", help="another minicnn checkout, timed beside this one")
    args = parser.parse_args()
    main(quick=args.quick, out=args.out, baseline=args.baseline)
