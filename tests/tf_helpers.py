"""Helpers for comparing minicnn with TensorFlow/Keras on the same weights."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The reference is TensorFlow's plain kernels: its oneDNN ones reorder sums and, on degenerate
# shapes (a 1×2 kernel, stride 2, 'same', on a 1-pixel-wide input), return wrong values.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402, F401  (re-exported to the tests)

TOL = {"float64": 1e-9, "float32": 1e-4}


def rel(a, b):
    """‖a − b‖ / max(‖a‖ + ‖b‖, 1): relative for O(1) tensors, absolute when both are ~0
    (e.g. a softmax over one unit, whose gradient is exactly 0 but noise in TF)."""
    a, b = np.ravel(np.asarray(a, dtype=np.float64)), np.ravel(np.asarray(b, dtype=np.float64))
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1.0))


def tf_layer_gradients(tf_layer, x, upstream):
    """(y, dx, [d params in Keras order]) for L = Σ y·G under tf.GradientTape."""
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf_layer(xt)
        loss = tf.reduce_sum(y * tf.constant(upstream, dtype=y.dtype))
    grads = tape.gradient(loss, [xt, *tf_layer.trainable_weights])
    return y.numpy(), grads[0].numpy(), [g.numpy() for g in grads[1:]]
