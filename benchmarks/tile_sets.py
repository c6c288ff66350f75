"""The register tiles of each vector ISA, side by side on this machine (``kernels/register_tiles.py``):
the issue-34 cases — the conv layer (24 → 48, 3×3, 14×14, batch 256, forward + backward),
the MNIST 24/48/64 CNN's training step at batch 256 and its prediction at batch 1024 —
each timed on the AVX2 tiles and on the AVX-512 ones, in interleaved rounds (round r of
both sets before round r + 1 of either), in one process; the figure is each set's best
round.  Both sets run on an AVX-512 CPU (the AVX2 tiles are then today's kernels compiled
for it); on an AVX2-only CPU only the AVX2 set is timed.

    python benchmarks/tile_sets.py [--rounds 5] [--out FILE]   (default: results/<machine class>/tile_sets.json)
"""
import argparse
import json
import os
import time

import minicnn as mc  # first: thread-pool settings before NumPy loads
import numpy as np

from bench_figures import gemm_ceiling
from bench_harness import machine, machine_class
from minicnn import architectures
from minicnn.kernels import register_tiles
from minicnn.saving import atomic_write_bytes

LAYER_FLOPS = 3 * 2 * 256 * 14 * 14 * 9 * 24 * 48      # forward, ∂L/∂x, ∂L/∂W as direct sums


def cases():
    """name -> a step function (each set up once, its kernels compiled on first call)."""
    rng = np.random.default_rng(0)
    mc.set_seed(0)
    x = rng.standard_normal((256, 14, 14, 24)).astype("float32")
    layer = mc.layers.Conv2D(48, 3, padding="same")
    dy = rng.standard_normal((256, 14, 14, 48)).astype("float32")

    def conv_layer():
        layer.forward(x, training=True)
        layer.backward(dy)
    model = architectures.mnist_deconstructed((28, 28, 1))
    model.compile(mc.optimizers.RMSprop(1e-4), "categorical_crossentropy")
    images = rng.uniform(0, 1, (1024, 28, 28, 1)).astype("float32")
    labels = np.eye(10, dtype="float32")[rng.integers(0, 10, 1024)]
    return {"conv_layer b256": conv_layer,
            "mnist_deconstructed b256 train": lambda: model.train_on_batch(images[:256], labels[:256]),
            "mnist_deconstructed b1024 infer": lambda: model.predict(images, batch_size=1024, verbose=0)}


def seconds(step, min_s=0.3):
    """Mean seconds of one step over at least ``min_s`` (after one untimed step)."""
    step()
    done, t = 0, time.perf_counter()
    while done < 3 or time.perf_counter() - t < min_s:
        step()
        done += 1
    return (time.perf_counter() - t) / done


def main(rounds, out):
    sets = ["avx2", "avx512"] if register_tiles.VECTOR_ISA == "avx512" else ["avx2"]
    steps = cases()
    times = {(s, name): [] for s in sets for name in steps}
    for r in range(rounds):
        for s in sets[r % len(sets):] + sets[:r % len(sets)]:
            with register_tiles.use_tile_set(s):
                for name, step in steps.items():
                    times[s, name].append(seconds(step) * 1000)
                    print(f"round {r}: {name:34s} {s:7s} {times[s, name][-1]:8.1f} ms", flush=True)
    results = {"machine": machine(), "gemm_ceiling_gflops": gemm_ceiling(), "rounds": rounds, "cases": {}}
    for (s, name), ms in times.items():
        entry = {"ms": min(ms), "rounds_ms": ms}
        if name.startswith("conv_layer"):
            entry["gflops"] = LAYER_FLOPS / min(ms) / 1e6
        results["cases"].setdefault(name, {})[s] = entry
        print(f"{name:34s} {s:7s} {min(ms):8.1f} ms" + (f"  {entry['gflops']:.0f} GFLOP/s" if "gflops" in entry else "")
              + f"   rounds {' '.join(f'{t:.1f}' for t in ms)}", flush=True)
    print(f"sgemm ceiling {results['gemm_ceiling_gflops']:.0f} GFLOP/s")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    atomic_write_bytes(out, json.dumps(results, indent=1).encode())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out")
    args = parser.parse_args()
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    main(args.rounds, args.out or os.path.join(results, machine_class(machine()), "tile_sets.json"))
