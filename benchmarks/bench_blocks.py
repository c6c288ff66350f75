"""Benchmark cases for the residual and separable blocks, in one run on one machine:

* ``small_resnet``: one training step (SGD, momentum 0.9) of ``examples/resnet.py``'s network
  with BatchNormalization, CIFAR-shaped input, batch 64;
* ``separable_layer``: one SeparableConv2D layer's forward and backward (∂L/∂x and every
  weight's gradient for a fixed ∂L/∂y), reported in GFLOP/s as well.

Each by minicnn (NumPy and Numba kernels), PyTorch and Keras, every configuration in its own
worker process, timed in interleaved rounds by ``bench_harness.run_case`` (see there).
Results go to ``benchmarks/results/blocks.json`` and ``blocks.md``.

    python benchmarks/bench_blocks.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

RESNET = ("small_resnet", (32, 32, 3), 64, "train")
SEPARABLE = ("separable_layer", (28, 28, 64), 32, "layer")
SEPARABLE_FILTERS = 128


def separable_gflops(shape, batch, ms):
    """Three passes (forward, ∂L/∂x, ∂L/∂W), each 2·n·h·w·c·(9 + f) operations: the 3×3
    depthwise step's 9 per channel and the pointwise step's f."""
    h, w, c = shape
    return 3 * 2 * batch * h * w * c * (9 + SEPARABLE_FILTERS) / (ms / 1000) / 1e9


def _data(shape, batch, out_channels):
    import numpy as np
    rng = np.random.default_rng(0)
    return (rng.standard_normal((batch, *shape)).astype("float32"),
            rng.standard_normal((batch, *shape[:2], out_channels)).astype("float32"))


def _labels(batch):
    import numpy as np
    return np.random.default_rng(1).integers(0, 10, batch)


def _resnet_module():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
    import resnet
    return resnet


def minicnn_resnet(shape, batch):
    import numpy as np
    import minicnn as mc
    from bench_workers import _first_steps
    mc.set_seed(0)
    model = _resnet_module().small_resnet(mc, shape)
    model.compile(mc.optimizers.SGD(0.02, momentum=0.9), "sparse_categorical_crossentropy")
    x, y = _data(shape, batch, 1)[0], _labels(batch)
    return _first_steps(lambda: model.train_on_batch(x, y), lambda out: np.isfinite(out).all(),
                        {"threads": mc.threads.thread_settings(), "kernels": mc.get_kernels()})


def keras_resnet(shape, batch):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf
    from bench_workers import _first_steps
    keras.utils.set_random_seed(0)
    model = _resnet_module().small_resnet(keras, shape)
    model.compile(keras.optimizers.SGD(0.02, momentum=0.9), "sparse_categorical_crossentropy")
    x, y = _data(shape, batch, 1)[0], _labels(batch)
    return _first_steps(lambda: model.train_on_batch(x, y), lambda out: np.isfinite(np.asarray(out)).all(),
                        {"tf": tf.__version__, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")})


def torch_resnet(shape, batch):
    """The same network in PyTorch (NCHW; BatchNorm2d with Keras's ε and momentum 0.9 ≙ 0.1)."""
    import torch
    from torch import nn
    from bench_workers import _first_steps

    def conv(c_in, c_out, k=3, stride=1):
        return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=False),
                             nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.1))

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.branch = nn.Sequential(conv(c_in, c_out, 3, stride), nn.ReLU(), conv(c_out, c_out))
            self.shortcut = nn.Identity() if stride == 1 else conv(c_in, c_out, 1, stride)

        def forward(self, t):
            return torch.relu(self.branch(t) + self.shortcut(t))

    torch.manual_seed(0)
    channels_last = os.environ.get("BENCH_CHANNELS_LAST") == "1"
    widths = (16, 32, 64)
    model = nn.Sequential(conv(shape[-1], widths[0]), nn.ReLU(), Block(16, 16, 1), Block(16, 32, 2),
                          Block(32, 64, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    x = torch.from_numpy(_data(shape, batch, 1)[0]).permute(0, 3, 1, 2).contiguous()
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(_labels(batch))
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return _first_steps(step, lambda out: bool(torch.isfinite(out)), {"torch": torch.__version__,
                                                                       "threads": torch.get_num_threads(),
                                                                       "channels_last": channels_last})


def minicnn_separable(shape, batch):
    import minicnn as mc
    from bench_workers import minicnn_layer_steps
    mc.set_seed(0)
    x, dy = _data(shape, batch, SEPARABLE_FILTERS)
    return minicnn_layer_steps(mc.layers.SeparableConv2D(SEPARABLE_FILTERS, 3, padding="same"), x, dy)


def torch_separable(shape, batch):
    import torch
    from torch import nn
    from bench_workers import _first_steps
    c = shape[-1]
    layer = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.Conv2d(c, SEPARABLE_FILTERS, 1))
    x_np, dy_np = _data(shape, batch, SEPARABLE_FILTERS)
    x, dy = (torch.from_numpy(a).permute(0, 3, 1, 2).contiguous() for a in (x_np, dy_np))
    if os.environ.get("BENCH_CHANNELS_LAST") == "1":
        layer = layer.to(memory_format=torch.channels_last)
        x, dy = (t.contiguous(memory_format=torch.channels_last) for t in (x, dy))
    x.requires_grad_(True)

    def step():
        x.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x).backward(dy)
        return x.grad
    return _first_steps(step, lambda dx: bool(torch.isfinite(dx).all()), {"torch": torch.__version__})


def keras_separable(shape, batch):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from bench_workers import keras_layer_step
    return keras_layer_step(keras.layers.SeparableConv2D(SEPARABLE_FILTERS, 3, padding="same"),
                            *_data(shape, batch, SEPARABLE_FILTERS))


WORKERS = {("minicnn", "small_resnet"): minicnn_resnet, ("torch", "small_resnet"): torch_resnet,
           ("keras", "small_resnet"): keras_resnet, ("minicnn", "separable_layer"): minicnn_separable,
           ("torch", "separable_layer"): torch_separable, ("keras", "separable_layer"): keras_separable}


def main(quick=False, out="benchmarks/results"):
    from bench_harness import CONFIGS, gemm_ceiling, machine, machine_line, run_case
    from minicnn.saving import atomic_write_bytes
    steps, rounds = (3, 2) if quick else (10, 5)
    results = {"machine": machine(), "gemm_ceiling_gflops": gemm_ceiling(), "cases": []}
    lines = [machine_line(results), "", "| case | configuration | ms/step | images/s | GFLOP/s | peak MB |",
             "|---|---|---:|---:|---:|---:|"]
    for case in (RESNET, SEPARABLE):
        configs, waiting_cpu = run_case(case, CONFIGS, steps, rounds)
        for config, m in configs.items():
            if case is SEPARABLE and "ms_per_step" in m:
                m["gflops"] = separable_gflops(case[1], case[2], m["ms_per_step"])
            row = (f"{m['ms_per_step']:.1f} | {m['images_per_s']:.0f} | {m.get('gflops', float('nan')):.1f} | "
                   f"{m['peak_rss_mb']:.0f}" if "ms_per_step" in m else f"{m['error'][:60]} | | |")
            lines.append(f"| {case[0]} {case[1]} b{case[2]} | {config} | {row} |")
            print(lines[-1], flush=True)
        results["cases"].append({"model": case[0], "shape": case[1], "batch": case[2], "mode": case[3],
                                 "configs": configs, "waiting_workers_cpu_s": waiting_cpu})
    lines.append(f"\nEach configuration timed in {rounds} interleaved rounds of ≥ {steps} steps (ms/step: its best "
                 f"round).")
    os.makedirs(out, exist_ok=True)
    atomic_write_bytes(os.path.join(out, "blocks.json"), json.dumps(results, indent=1).encode())
    atomic_write_bytes(os.path.join(out, "blocks.md"), "\n".join(lines).encode())
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 steps × 2 rounds")
    parser.add_argument("--out", default="benchmarks/results")
    main(**vars(parser.parse_args()))
