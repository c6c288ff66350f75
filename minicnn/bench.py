"""The benchmark suite (``minicnn bench``; ``benchmarks/run_benchmarks.py``).

In ONE run on one machine, each seed architecture is trained (and the MNIST CNN run
for inference) by every configuration, each in its own subprocess so that environment
settings take effect and peak memory is its own:

* minicnn with the NumPy kernels and with the Numba kernels;
* PyTorch CPU, default and tuned (channels_last + glibc allocator settings);
* TF-Keras, default and with oneDNN (``TF_ENABLE_ONEDNN_OPTS=1``).

Each worker warms up, checks its result is finite (minicnn also checks its kernels
against the NumPy path on the same batch), then times steps and reports ms/step,
images/s and peak RSS.  A missing peer is reported as missing, never as a number.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

CASES = [  # (model, input shape, batch, mode)
    ("face_cnn", (64, 64, 1), 5, "train"),
    ("mnist_deconstructed", (28, 28, 1), 256, "train"),
    ("mnist_convnet", (28, 28, 1), 64, "train"),
    ("cifar_six_conv", (32, 32, 3), 32, "train"),
    ("cats_dogs_cnn", (150, 150, 3), 20, "train"),
    ("mnist_deconstructed", (28, 28, 1), 1024, "infer"),
]
CONFIGS = {
    "minicnn-numpy": ("minicnn", {"MINICNN_KERNELS": "numpy"}),
    "minicnn-numba": ("minicnn", {"MINICNN_KERNELS": "numba"}),
    "torch-default": ("torch", {}),
    "torch-tuned": ("torch", {"BENCH_CHANNELS_LAST": "1", "MALLOC_MMAP_THRESHOLD_": "4294967296",
                              "MALLOC_TRIM_THRESHOLD_": "4294967296"}),
    "keras-default": ("keras", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "keras-onednn": ("keras", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's,
    as Linux keeps it across fork and exec)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def classes_of(model_name):
    return 1 if model_name.startswith(("face", "cats")) else 10


def time_steps(step, steps, repeats=3):
    """Best over ``repeats`` of the mean time of ``steps`` calls (after the warm-up)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t) / steps)
    return best


def data(shape, batch, classes, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (batch, *shape)).astype("float32")
    y = rng.integers(0, 2, (batch, 1)).astype("float32") if classes == 1 else \
        np.eye(classes, dtype="float32")[rng.integers(0, classes, batch)]
    return x, y


def worker_minicnn(name, shape, batch, mode, steps):
    import numpy as np
    import minicnn as mc
    from minicnn import architectures
    t0 = time.perf_counter()
    mc.set_seed(0)
    model = architectures.SEED_MODELS[name](shape)
    loss = "binary_crossentropy" if classes_of(name) == 1 else "categorical_crossentropy"
    model.compile(mc.optimizers.RMSprop(1e-4), loss)
    x, y = data(shape, batch, classes_of(name))
    reference = model.predict(x[:2])                      # check the kernels before timing
    with mc.use_kernels("numpy"):
        np.testing.assert_allclose(reference, model.predict(x[:2]), rtol=1e-4, atol=1e-5)
    step = (lambda: model.train_on_batch(x, y)) if mode == "train" else (lambda: model.predict(x, batch_size=batch))
    first = time.perf_counter()
    step()
    compile_s = time.perf_counter() - first
    step()
    if mode == "train" and not np.isfinite(model.evaluate(x, y, batch_size=batch, verbose=0)):
        raise RuntimeError("non-finite loss")
    return time_steps(step, steps), {"first_step_s": compile_s, "setup_s": first - t0,
                                     "threads": mc.threads.thread_settings(), "kernels": mc.get_kernels()}


def worker_torch(name, shape, batch, mode, steps):
    import numpy as np
    import torch
    from torch import nn
    from minicnn import architectures
    spec = architectures.SEED_MODELS[name](shape)
    channels_last = os.environ.get("BENCH_CHANNELS_LAST") == "1"
    torch.manual_seed(0)

    class ToNHWC(nn.Module):
        def forward(self, t):
            return t.permute(0, 2, 3, 1)

    modules, c, nhwc = [], shape[-1], False
    for layer in spec.layers:
        kind, cfg = type(layer).__name__, layer.get_config()
        if kind == "Conv2D":
            modules.append(nn.Conv2d(c, cfg["filters"], cfg["kernel_size"], cfg["strides"], padding=cfg["padding"]))
            c = cfg["filters"]
        elif kind == "MaxPooling2D":
            modules.append(nn.MaxPool2d(cfg["pool_size"], cfg["strides"]))
        elif kind == "Flatten":
            modules.append(nn.Flatten())
        elif kind == "Dense":
            if layer.input_shape and len(layer.input_shape) == 4 and not nhwc:
                modules.append(ToNHWC())              # Dense on the last (channel) axis, as Keras
                nhwc = True
            modules.append(nn.Linear(layer.input_shape[-1], cfg["units"]))
        elif kind == "Dropout":
            modules.append(nn.Dropout(cfg["rate"]))
        if cfg.get("activation") == "relu":           # the output softmax/sigmoid live in the loss
            modules.append(nn.ReLU())
    model = nn.Sequential(*modules)
    x_np, y_np = data(shape, batch, classes_of(name))
    x = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(y_np)
    loss_fn = nn.BCEWithLogitsLoss() if classes_of(name) == 1 else nn.CrossEntropyLoss()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-4)

    def train():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y if classes_of(name) == 1 else y.argmax(1))
        loss.backward()
        opt.step()
        return loss

    def infer():
        with torch.no_grad():
            return model(x)
    step = train if mode == "train" else infer
    first = time.perf_counter()
    out = step()
    compile_s = time.perf_counter() - first
    if not torch.isfinite(out).all():
        raise RuntimeError("non-finite result")
    step()
    return time_steps(step, steps), {"first_step_s": compile_s, "torch": torch.__version__,
                                     "threads": torch.get_num_threads(), "channels_last": channels_last,
                                     "np": np.__version__}


def worker_keras(name, shape, batch, mode, steps):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf
    from minicnn import architectures
    from minicnn.keras_bridge import to_keras
    model = to_keras(architectures.SEED_MODELS[name](shape))
    loss = "binary_crossentropy" if classes_of(name) == 1 else "categorical_crossentropy"
    import keras
    model.compile(keras.optimizers.RMSprop(1e-4), loss)
    x, y = data(shape, batch, classes_of(name))
    step = (lambda: model.train_on_batch(x, y)) if mode == "train" else (lambda: model.predict_on_batch(x))
    first = time.perf_counter()
    out = step()
    compile_s = time.perf_counter() - first
    if not np.isfinite(np.asarray(out)).all():
        raise RuntimeError("non-finite result")
    step()
    return time_steps(step, steps), {"first_step_s": compile_s, "tf": tf.__version__,
                                     "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


WORKERS = {"minicnn": worker_minicnn, "torch": worker_torch, "keras": worker_keras}


def run_worker(framework, name, shape, batch, mode, steps):
    seconds, info = WORKERS[framework](name, tuple(shape), batch, mode, steps)
    print(json.dumps({"ms_per_step": seconds * 1000, "images_per_s": batch / seconds,
                      "peak_rss_mb": peak_rss_mb(), **info}))


def run_case(config, case, steps, timeout=900):
    framework, env = CONFIGS[config]
    name, shape, batch, mode = case
    cmd = [sys.executable, "-m", "minicnn.bench", "worker", framework, name, json.dumps(list(shape)),
           str(batch), mode, str(steps)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env})
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": ("not installed: " if "No module named" in last else "") + last[-200:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


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


def conv_layer_benchmark(repeats=5):
    """The issue's reference conv: N=256, 14×14×24 → 48, 3×3 'same', forward + backward."""
    import numpy as np
    from minicnn.ops.conv import conv2d_backward, conv2d_forward
    from minicnn.ops.workspace import Workspace
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 14, 14, 24)).astype("float32")
    W = rng.standard_normal((3, 3, 24, 48)).astype("float32")
    b = np.zeros(48, "float32")
    ws = Workspace()

    def step():
        y, cache = conv2d_forward(x, W, b, (1, 1), "same", ws)
        conv2d_backward(y, cache, ws)
    step()
    best = min(_timed(step) for _ in range(repeats))
    flops = 3 * 2 * 256 * 14 * 14 * 9 * 24 * 48
    return {"ms": best * 1000, "gflops": flops / best / 1e9}


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


def machine():
    import numpy as np
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform()}


def markdown(results):
    configs = list(CONFIGS)
    lines = ["| model | batch | mode | " + " | ".join(configs) + " | minicnn-numba / best peer |",
             "|---|---|---|" + "---|" * (len(configs) + 1)]
    for r in results["cases"]:
        cells, peers = [], []
        for c in configs:
            m = r["configs"].get(c, {})
            if "images_per_s" in m:
                cells.append(f"{m['images_per_s']:,.0f} img/s ({m['ms_per_step']:.1f} ms, {m['peak_rss_mb']:.0f} MB)")
                if not c.startswith("minicnn"):
                    peers.append(m["images_per_s"])
            else:
                cells.append(m.get("error", "—")[:60])
        ours = r["configs"].get("minicnn-numba", {}).get("images_per_s")
        ratio = f"{ours / max(peers):.2f}×" if ours and peers else "—"
        lines.append(f"| {r['model']} | {r['batch']} | {r['mode']} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from minicnn.viz.plots import save_figure
    configs = list(CONFIGS)
    labels = [f"{r['model']}\nb{r['batch']} {r['mode']}" for r in results["cases"]]
    fig, ax = plt.subplots(figsize=(13, 4))
    width = 0.8 / len(configs)
    for i, c in enumerate(configs):
        values = [r["configs"].get(c, {}).get("images_per_s", 0) for r in results["cases"]]
        ax.bar(np.arange(len(labels)) + i * width, values, width, label=c)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("images / s")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def main(quick=False, out="benchmarks/results", configs=None):
    from minicnn.saving import atomic_write_bytes
    steps = 3 if quick else 10
    if quick:
        out = os.path.join(out, "quick")         # never overwrite a full run's results
    results = {"machine": machine(), "gemm_ceiling_gflops": gemm_ceiling(), "cases": []}
    print(f"GEMM ceiling (numpy float32 2048³): {results['gemm_ceiling_gflops']:.0f} GFLOP/s")
    results["conv_layer"] = conv_layer_benchmark()
    print(f"conv layer N=256 14×14×24→48 fwd+bwd: {results['conv_layer']['ms']:.1f} ms, "
          f"{results['conv_layer']['gflops']:.0f} GFLOP/s")
    results["layers"] = layer_table()
    results["jit"] = jit_compile_times()
    print(f"first Numba step: {results['jit']['cold_cache_s']:.1f} s with an empty kernel cache, "
          f"{results['jit']['warm_cache_s']:.1f} s with the cache", flush=True)
    cases = CASES[:2] + CASES[-1:] if quick else CASES
    for case in cases:
        entry = {"model": case[0], "shape": case[1], "batch": case[2], "mode": case[3], "configs": {}}
        for config in configs or CONFIGS:
            entry["configs"][config] = run_case(config, case, steps)
            m = entry["configs"][config]
            print(f"{case[0]:20s} b{case[2]:<5d} {case[3]:5s} {config:14s} " +
                  (f"{m['images_per_s']:9.0f} img/s {m['ms_per_step']:8.1f} ms/step {m['peak_rss_mb']:6.0f} MB"
                   if "images_per_s" in m else m["error"]), flush=True)
        results["cases"].append(entry)
    results["gemm_ceiling_end_gflops"] = gemm_ceiling()    # the machine's speed did not drift?
    os.makedirs(out, exist_ok=True)
    atomic_write_bytes(os.path.join(out, "benchmark.json"), json.dumps(results, indent=1).encode())
    table = markdown(results)
    start, end = results["gemm_ceiling_gflops"], results["gemm_ceiling_end_gflops"]
    drift = abs(end - start) / max(start, end)
    notes = (f"\nGEMM ceiling {start:.0f} GFLOP/s at the start of the run, {end:.0f} at the end" +
             (f" — **{drift:.0%} apart: the machine was not quiet, compare with care**" if drift > 0.15 else "") +
             f".\nFirst Numba training step + prediction in a fresh process (MNIST convnet): "
             f"{results['jit']['cold_cache_s']:.1f} s with an empty kernel cache, "
             f"{results['jit']['warm_cache_s']:.1f} s with the on-disk cache.\n")
    atomic_write_bytes(os.path.join(out, "benchmark.md"), (table + "\n" + notes).encode())
    chart(results, os.path.join(out, "benchmark.png"))
    print(table)
    return results


if __name__ == "__main__":
    if len(sys.argv) != 8 or sys.argv[1] != "worker":
        sys.exit("usage: python -m minicnn.bench worker FRAMEWORK MODEL SHAPE BATCH MODE STEPS "
                 "(run by minicnn bench; use that, or benchmarks/run_benchmarks.py)")
    framework, name, shape, batch, mode, steps = sys.argv[2:8]
    run_worker(framework, name, json.loads(shape), int(batch), mode, int(steps))
