"""The graph-model and block cases of the benchmark (``bench_harness.CASES``), each by minicnn,
PyTorch and Keras:

* ``residual_net``: the functional API's case (issue 30): a 3×3 stem convolution and two
  residual blocks of two 3×3 convolutions, 32 channels, on 32×32×3, then global average
  pooling and a softmax; RMSprop as the seed cases; training and inference;
* ``small_resnet``: one training step (SGD, momentum 0.9) of ``examples/resnet.py``'s network
  with BatchNormalization, CIFAR-shaped input, batch 64;
* ``separable_layer``: one SeparableConv2D layer's forward and backward (∂L/∂x and every
  weight's gradient for a fixed ∂L/∂y), reported in GFLOP/s as well.

The workers are found by ``bench_workers.serve`` through ``WORKERS``.
"""
from __future__ import annotations

import os
import sys

SEPARABLE_FILTERS = 128
RESIDUAL_WIDTH = 32


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


def residual_net(lib, shape, width=RESIDUAL_WIDTH, classes=10):
    """The functional case in either library (``lib`` is ``minicnn`` or ``keras``: the same calls)."""
    L = lib.layers
    inputs = lib.Input(shape)
    x = L.Conv2D(width, 3, padding="same", activation="relu")(inputs)
    for _ in range(2):
        branch = L.Conv2D(width, 3, padding="same", activation="relu")(x)
        branch = L.Conv2D(width, 3, padding="same")(branch)
        x = L.Activation("relu")(L.Add()([x, branch]))
    x = L.GlobalAveragePooling2D()(x)
    return lib.Model(inputs, L.Dense(classes, activation="softmax")(x))


def _library_steps(lib, model, optimizer, loss, x, y, mode):
    """minicnn or Keras (the same calls): ``model`` compiled, then its training step or its
    prediction as the timed step; minicnn's kernels are checked against NumPy's first."""
    import numpy as np
    model.compile(optimizer, loss)
    from bench_workers import _first_steps, equal_to_numpy_kernels
    if lib.__name__ == "minicnn":
        equal_to_numpy_kernels(lambda: model.predict(x[:2], verbose=0))
        info = {"threads": lib.threads.thread_settings(), "kernels": lib.get_kernels()}
    else:
        import tensorflow as tf
        info = {"tf": tf.__version__, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}
    step = (lambda: model.train_on_batch(x, y)) if mode == "train" else (lambda: model.predict_on_batch(x))
    return _first_steps(step, lambda out: np.isfinite(np.asarray(out)).all(), info)


def _library(framework):
    """minicnn, or Keras with its seed set (TensorFlow quiet)."""
    if framework == "minicnn":
        import minicnn as lib
        lib.set_seed(0)
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras as lib
        lib.utils.set_random_seed(0)
    return lib


def residual_case(lib, shape, batch):
    """residual_net's training case in ``lib``: (model, optimizer, loss, x, y)."""
    from bench_workers import data
    return (residual_net(lib, shape), lib.optimizers.RMSprop(1e-4), "categorical_crossentropy", *data(shape, batch, 10))


def resnet_case(lib, shape, batch):
    """small_resnet's training case in ``lib``: (model, optimizer, loss, x, y)."""
    return (_resnet_module().small_resnet(lib, shape), lib.optimizers.SGD(0.02, momentum=0.9),
            "sparse_categorical_crossentropy", _data(shape, batch, 1)[0], _labels(batch))


BLOCK_TRAINING_CASES = {"residual_net": residual_case, "small_resnet": resnet_case}


def library_worker(framework, case):
    """The worker of ``BLOCK_TRAINING_CASES[case]`` in minicnn or Keras."""
    def worker(shape, batch, mode):
        lib = _library(framework)
        return _library_steps(lib, *BLOCK_TRAINING_CASES[case](lib, shape, batch), mode)
    return worker


def torch_residual(shape, batch, mode):
    """The same network in PyTorch (NCHW; the softmax left to the loss)."""
    import torch
    from torch import nn
    from bench_workers import _first_steps, data, torch_steps
    width = RESIDUAL_WIDTH

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.branch = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                        nn.Conv2d(width, width, 3, padding=1))

        def forward(self, t):
            return torch.relu(t + self.branch(t))

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(shape[-1], width, 3, padding=1), nn.ReLU(), Block(), Block(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))
    x_np, y_np = data(shape, batch, 10)
    x = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous()
    channels_last = os.environ.get("BENCH_CHANNELS_LAST") == "1"
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    train, infer = torch_steps(model, x, torch.from_numpy(y_np).argmax(1), nn.CrossEntropyLoss())
    return _first_steps(train if mode == "train" else infer, lambda out: bool(torch.isfinite(out).all()),
                        {"torch": torch.__version__, "threads": torch.get_num_threads(),
                         "channels_last": channels_last})


def torch_resnet(shape, batch, mode):
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


def minicnn_separable(shape, batch, mode):
    import minicnn as mc
    from bench_workers import minicnn_layer_steps
    mc.set_seed(0)
    x, dy = _data(shape, batch, SEPARABLE_FILTERS)
    return minicnn_layer_steps(mc.layers.SeparableConv2D(SEPARABLE_FILTERS, 3, padding="same"), x, dy)


def torch_separable(shape, batch, mode):
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


def keras_separable(shape, batch, mode):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from bench_workers import keras_layer_step
    return keras_layer_step(keras.layers.SeparableConv2D(SEPARABLE_FILTERS, 3, padding="same"),
                            *_data(shape, batch, SEPARABLE_FILTERS))


WORKERS = {("minicnn", "residual_net"): library_worker("minicnn", "residual_net"), ("torch", "residual_net"): torch_residual,
           ("keras", "residual_net"): library_worker("keras", "residual_net"),
           ("minicnn", "small_resnet"): library_worker("minicnn", "small_resnet"), ("torch", "small_resnet"): torch_resnet,
           ("keras", "small_resnet"): library_worker("keras", "small_resnet"), ("minicnn", "separable_layer"): minicnn_separable,
           ("torch", "separable_layer"): torch_separable, ("keras", "separable_layer"): keras_separable}
