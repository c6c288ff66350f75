"""Visualization speed, minicnn beside the same recipe in TensorFlow, in one run:

* a Grad-CAM map for one 150×150×3 image on the cats-vs-dogs CNN (last conv layer);
* 16 filter patterns × 40 gradient-ascent steps on the MNIST 24/48/64 CNN (conv2d_2).

Both use the same weights (copied into the Keras twin).

    python benchmarks/viz_speed.py
"""
import json
import os
import time

import minicnn as mc  # first: thread-pool settings before NumPy loads
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from minicnn import architectures  # noqa: E402
from bench_harness import machine  # noqa: E402
from minicnn.keras_bridge import to_keras  # noqa: E402
from minicnn.saving import atomic_write_bytes  # noqa: E402
from minicnn.viz import attribution, maximize  # noqa: E402


def timed(f, repeats=3):
    f()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - start)
    return best


def tf_grad_cam(twin, x, layer_name):
    import keras
    import tensorflow as tf
    inputs = keras.Input(x.shape[1:])
    h, conv_out = inputs, None
    for layer in twin.layers:
        h = layer(h)
        if layer.name == layer_name:
            conv_out = h
    grad_model = keras.Model(inputs, [conv_out, h])

    @tf.function
    def cam(xt):
        with tf.GradientTape() as tape:
            A, out = grad_model(xt)
            score = out[:, 0]
        G = tape.gradient(score, A)
        weights = tf.reduce_mean(G, axis=(1, 2))
        return tf.nn.relu(tf.einsum("nijk,nk->nij", A, weights))
    return lambda: cam(tf.constant(x)).numpy()


def tf_patterns(twin, layer_name, steps=40, count=16):
    import keras
    import tensorflow as tf
    inputs = keras.Input(twin.input_shape[1:])
    h = inputs
    for layer in twin.layers:
        h = layer(h)
        if layer.name == layer_name:
            break
    feature = keras.Model(inputs, h)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = feature(x)
            score = tf.reduce_sum(tf.linalg.diag_part(tf.reduce_mean(out, axis=(1, 2))[:, :count]))
        g = tape.gradient(score, x)
        g = g / (tf.sqrt(tf.reduce_mean(g ** 2, axis=(1, 2, 3), keepdims=True)) + 1e-5)
        return tf.clip_by_value(x + 0.05 * g, 0, 1)

    def run():
        x = tf.constant(np.random.default_rng(0).uniform(0.4, 0.6, (count, *twin.input_shape[1:])).astype("float32"))
        for _ in range(steps):
            x = step(x)
        return x.numpy()
    return run


def main(out="benchmarks/results"):
    mc.set_seed(0)
    cats = architectures.cats_dogs_cnn()
    x = np.random.default_rng(0).uniform(0, 1, (1, 150, 150, 3)).astype("float32")
    ours_cam = timed(lambda: attribution.grad_cam(cats, x, 0, layer="conv2d_3"))
    theirs_cam = timed(tf_grad_cam(to_keras(cats), x, "conv2d_3"))
    mnist = architectures.mnist_deconstructed()
    ours_max = timed(lambda: maximize.maximize(mnist, "conv2d_2", list(range(16)), steps=40), repeats=1)
    theirs_max = timed(tf_patterns(to_keras(mnist), "conv2d_2"), repeats=1)
    result = {"machine": machine(), "grad_cam_150x150x3_s": {"minicnn": ours_cam, "tensorflow": theirs_cam},
              "filter_patterns_16x40_s": {"minicnn": ours_max, "tensorflow": theirs_max}}
    os.makedirs(out, exist_ok=True)
    atomic_write_bytes(os.path.join(out, "viz_speed.json"), json.dumps(result, indent=1).encode())
    print(f"Grad-CAM, one 150×150×3 image, cats-vs-dogs CNN: minicnn {ours_cam:.2f} s, TensorFlow {theirs_cam:.2f} s")
    print(f"16 filter patterns × 40 steps, MNIST CNN: minicnn {ours_max:.2f} s, TensorFlow {theirs_max:.2f} s")


if __name__ == "__main__":
    main()
