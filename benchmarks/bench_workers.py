"""The benchmark's worker processes (``bench_harness.py`` starts and times them): each
sets up one configuration on one case — minicnn, PyTorch or TF-Keras — warms up, checks
that its result is finite, then serves timing requests on its stdin (``serve``).

    python benchmarks/bench_workers.py FRAMEWORK MODEL SHAPE BATCH MODE STEPS
"""
from __future__ import annotations

import minicnn  # noqa: F401  (first: sets the thread-pool spin policy before NumPy loads)

import json
import os
import resource
import sys
import time

CONV_LAYER_FILTERS = 48     # the "layer" case: one Conv2D 24 → 48, 3×3 'same', forward + backward (∂L/∂x,
                            # ∂L/∂W, ∂L/∂b) on a fixed ∂L/∂y, as in the reference figure


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


def data(shape, batch, classes, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (batch, *shape)).astype("float32")
    y = rng.integers(0, 2, (batch, 1)).astype("float32") if classes == 1 else \
        np.eye(classes, dtype="float32")[rng.integers(0, classes, batch)]
    return x, y


def worker_minicnn(name, shape, batch, mode):
    import numpy as np
    import minicnn as mc
    if mode == "layer":
        return _minicnn_conv_layer(shape, batch)
    t0 = time.perf_counter()
    model, x, y = minicnn_seed_case(name, shape, batch)
    equal_to_numpy_kernels(lambda: model.predict(x[:2], verbose=0))
    step = (lambda: model.train_on_batch(x, y)) if mode == "train" else (lambda: model.predict(x, batch_size=batch))
    return _first_steps(step, lambda out: np.isfinite(out).all(), {
        "setup_s": time.perf_counter() - t0, "threads": mc.threads.thread_settings(), "kernels": mc.get_kernels()})


def minicnn_seed_case(name, shape, batch):
    """(model, x, y) of a seed model's case, the model compiled as the benchmark trains it."""
    import minicnn as mc
    from minicnn import architectures
    mc.set_seed(0)
    model = architectures.SEED_MODELS[name](shape)
    model.compile(mc.optimizers.RMSprop(1e-4), "binary_crossentropy" if classes_of(name) == 1 else "categorical_crossentropy")
    return (model, *data(shape, batch, classes_of(name)))


def _minicnn_conv_layer(shape, batch):
    import minicnn as mc
    mc.set_seed(0)
    x, dy = layer_data(shape, batch)
    return minicnn_layer_steps(mc.layers.Conv2D(CONV_LAYER_FILTERS, 3, padding="same"), x, dy)


def minicnn_layer_steps(layer, x, dy):
    """A minicnn layer's forward + backward as the timed step, checked against the NumPy
    kernels before timing."""
    import numpy as np
    import minicnn as mc
    equal_to_numpy_kernels(lambda: layer.forward(x[:2], training=True))

    def step():
        layer.forward(x, training=True)
        return layer.backward(dy)
    return _first_steps(step, lambda dx: np.isfinite(dx).all(), {"threads": mc.threads.thread_settings(),
                                                                 "kernels": mc.get_kernels()})


def equal_to_numpy_kernels(compute):
    """Check, before timing, that ``compute()`` gives on the configured kernels what it gives
    on the NumPy kernels."""
    import numpy as np
    import minicnn as mc
    reference = compute()
    with mc.use_kernels("numpy"):
        np.testing.assert_allclose(reference, compute(), rtol=1e-4, atol=1e-5)


def layer_data(shape, batch, seed=0):
    """The "layer" case's input and its fixed ∂L/∂y."""
    import numpy as np
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, *shape)).astype("float32"),
            rng.standard_normal((batch, *shape[:2], CONV_LAYER_FILTERS)).astype("float32"))


def _first_steps(step, finite, info):
    """Time the first step (compilation, allocation), check the result, run a second step;
    returns (step, info with "first_step_s")."""
    first = time.perf_counter()
    out = step()
    compile_s = time.perf_counter() - first
    if not finite(out):
        raise RuntimeError("non-finite result")
    step()
    return step, {"first_step_s": compile_s, **info}


def _torch_conv_layer(shape, batch, channels_last):
    import torch
    from torch import nn
    x_np, dy_np = layer_data(shape, batch)
    layer = nn.Conv2d(shape[-1], CONV_LAYER_FILTERS, 3, padding="same")
    x = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous()
    dy = torch.from_numpy(dy_np).permute(0, 3, 1, 2).contiguous()
    if channels_last:
        layer = layer.to(memory_format=torch.channels_last)
        x, dy = (t.contiguous(memory_format=torch.channels_last) for t in (x, dy))
    x.requires_grad_(True)

    def step():
        x.grad = layer.weight.grad = layer.bias.grad = None
        layer(x).backward(dy)
        return x.grad
    return _first_steps(step, lambda dx: bool(torch.isfinite(dx).all()),
                        {"torch": torch.__version__, "threads": torch.get_num_threads(), "channels_last": channels_last})


def torch_sequential(spec, shape):
    """The PyTorch twin of the minicnn model ``spec`` (input ``shape``, NHWC): NCHW layers, the
    output softmax / sigmoid left to the loss (also used by ``gpu_bench.py``)."""
    from torch import nn

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
    return nn.Sequential(*modules)


def torch_steps(model, x, y, loss_fn):
    """(train, infer): one RMSprop step (learning rate 1e-4, as minicnn's) returning the loss,
    and the outputs without gradients (also used by ``gpu_bench.py``)."""
    import torch
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-4)

    def train():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    def infer():
        with torch.no_grad():
            return model(x)
    return train, infer


def worker_torch(name, shape, batch, mode):
    import numpy as np
    import torch
    from torch import nn
    from minicnn import architectures
    channels_last = os.environ.get("BENCH_CHANNELS_LAST") == "1"
    torch.manual_seed(0)
    if mode == "layer":
        return _torch_conv_layer(shape, batch, channels_last)
    model = torch_sequential(architectures.SEED_MODELS[name](shape), shape)
    x_np, y_np = data(shape, batch, classes_of(name))
    x = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(y_np)
    loss_fn = nn.BCEWithLogitsLoss() if classes_of(name) == 1 else nn.CrossEntropyLoss()
    train, infer = torch_steps(model, x, y if classes_of(name) == 1 else y.argmax(1), loss_fn)
    return _first_steps(train if mode == "train" else infer, lambda out: bool(torch.isfinite(out).all()),
                        {"torch": torch.__version__, "threads": torch.get_num_threads(),
                         "channels_last": channels_last, "np": np.__version__})


def _keras_conv_layer(shape, batch):
    import keras
    return keras_layer_step(keras.layers.Conv2D(CONV_LAYER_FILTERS, 3, padding="same"), *layer_data(shape, batch))


def keras_layer_step(layer, x_np, dy_np):
    """A Keras layer's forward and backward for a fixed ∂L/∂y, as one compiled graph."""
    import numpy as np
    import tensorflow as tf
    x, dy = tf.constant(x_np), tf.constant(dy_np)
    layer.build(x.shape)

    @tf.function
    def step_graph():                   # returns y and every gradient: a graph drops what it does not return
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return [y, *tape.gradient(y, [x, *layer.trainable_variables], output_gradients=dy)]
    return _first_steps(step_graph, lambda out: all(np.isfinite(t.numpy()).all() for t in out),
                        {"tf": tf.__version__, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")})


def worker_keras(name, shape, batch, mode):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf
    from minicnn import architectures
    from minicnn.keras_bridge import to_keras
    if mode == "layer":
        return _keras_conv_layer(shape, batch)
    model = to_keras(architectures.SEED_MODELS[name](shape))
    loss = "binary_crossentropy" if classes_of(name) == 1 else "categorical_crossentropy"
    import keras
    model.compile(keras.optimizers.RMSprop(1e-4), loss)
    x, y = data(shape, batch, classes_of(name))
    step = (lambda: model.train_on_batch(x, y)) if mode == "train" else (lambda: model.predict_on_batch(x))
    return _first_steps(step, lambda out: np.isfinite(np.asarray(out)).all(),
                        {"tf": tf.__version__, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")})


WORKERS = {"minicnn": worker_minicnn, "torch": worker_torch, "keras": worker_keras}


REPLY = "@bench "     # marks the worker's protocol lines on its stdout (a library may print there too)
MIN_ROUND_S = 0.5     # a timed round runs at least this long (the face CNN's steps take ~2 ms)


def serve(framework, name, shape, batch, mode, steps):
    """The worker process: sets up the step (warm-up and checks included) and replies with
    its facts; then, per ``time`` line on stdin, runs one untimed step (to wake its threads
    and caches after waiting) and replies with the mean seconds of the next ``steps`` steps,
    or of as many more as make ``MIN_ROUND_S``; at the end (any other line), with its peak RSS."""
    from bench_blocks import WORKERS as BLOCK_WORKERS          # the block cases (bench_blocks.py)
    if (framework, name) in BLOCK_WORKERS:
        step, info = BLOCK_WORKERS[framework, name](tuple(shape), batch, mode)
    else:
        step, info = WORKERS[framework](name, tuple(shape), batch, mode)
    _reply(info)
    for line in sys.stdin:
        if line.strip() != "time":
            break
        step()
        done, t = 0, time.perf_counter()
        while done < steps or time.perf_counter() - t < MIN_ROUND_S:
            step()
            done += 1
        _reply({"seconds": (time.perf_counter() - t) / done, "steps": done})
    _reply({"peak_rss_mb": peak_rss_mb()})


def _reply(message):
    print(REPLY + json.dumps(message), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit("usage: python benchmarks/bench_workers.py FRAMEWORK MODEL SHAPE BATCH MODE STEPS "
                 "(started by the benchmark harness: run minicnn bench or benchmarks/run_benchmarks.py)")
    framework, name, shape, batch, mode, steps = sys.argv[1:7]
    serve(framework, name, json.loads(shape), int(batch), mode, int(steps))
