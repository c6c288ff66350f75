"""Is data loading or augmentation ever the bottleneck?  Measures, in one run:

* loading Fashion-MNIST from its four gz files (target: < 2 s);
* augmenting a batch of 32 images of 150×150×3 with the cats-vs-dogs settings, against
  one training step of the cats-vs-dogs CNN on that batch (target: augmenting is faster).

    MINICNN_DATA=../shared/datasets python benchmarks/data_pipeline.py
"""
import json
import os
import time

import minicnn as mc  # first: thread-pool settings before NumPy loads
import numpy as np

from minicnn import architectures
from bench_harness import machine
from minicnn.datasets import fashion_mnist
from minicnn.preprocessing import ImageDataGenerator
from minicnn.saving import atomic_write_bytes


def best_of(f, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def main(out="benchmarks/results"):
    load_s = best_of(lambda: fashion_mnist.load_data(download=False), 3)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (32, 150, 150, 3)).astype(np.float32)
    y = rng.integers(0, 2, (32, 1)).astype(np.float32)
    augment = ImageDataGenerator(rescale=1 / 255, rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                                 shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
    augment_s = best_of(lambda: augment.augment(x, rng))
    mc.set_seed(0)
    model = architectures.cats_dogs_cnn()
    model.compile(mc.optimizers.RMSprop(1e-4), "binary_crossentropy")
    model.train_on_batch(x / 255, y)
    step_s = best_of(lambda: model.train_on_batch(x / 255, y), 3)
    result = {"machine": machine(), "fashion_mnist_load_s": load_s, "augment_batch32_150x150x3_s": augment_s,
              "cats_dogs_train_step_batch32_s": step_s}
    os.makedirs(out, exist_ok=True)
    atomic_write_bytes(os.path.join(out, "data_pipeline.json"), json.dumps(result, indent=1).encode())
    print(f"Fashion-MNIST load: {load_s:.2f} s (target < 2 s)")
    print(f"augment 32×150×150×3: {augment_s * 1000:.0f} ms vs one cats-vs-dogs training step on it: "
          f"{step_s * 1000:.0f} ms ({step_s / augment_s:.1f}× longer)")


if __name__ == "__main__":
    main()
