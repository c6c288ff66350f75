"""Run the whole benchmark suite (same as ``minicnn bench``): training and inference of the
seed architectures with minicnn (NumPy / Numba kernels), PyTorch (default / tuned) and
TF-Keras (default / oneDNN), plus the per-layer GFLOP/s table; writes
benchmarks/results/benchmark.{json,md,png}.

    python benchmarks/run_benchmarks.py [--quick] [--out DIR]
"""
import argparse

import minicnn  # noqa: F401  (first: sets the thread-pool spin policy before NumPy loads)
from bench_harness import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 steps, 4 cases; writes under OUT/quick")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    main(quick=args.quick, out=args.out)
