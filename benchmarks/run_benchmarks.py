"""Run the whole benchmark suite (same as ``minicnn bench``): training and inference of the
seed architectures with minicnn (NumPy / Numba kernels), PyTorch (default / tuned) and
TF-Keras (default / oneDNN), plus the per-layer GFLOP/s table; writes
benchmarks/results/benchmark.{json,md,png}.

    python benchmarks/run_benchmarks.py [--quick]
"""
import sys

import minicnn  # noqa: F401  (first: sets the thread-pool spin policy before NumPy loads)
from minicnn.bench import main

if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
