"""``compare_with_keras``: one training step in minicnn and in Keras on the same weights —
forward, loss, backward, optimizer update — with the max abs/rel difference per layer and
per tensor, and the known convention gaps that can explain a difference.

TensorFlow is imported only here (an optional dependency, with a clear message).
"""
from __future__ import annotations

import numpy as np

KNOWN_GAPS = {
    "clipped_ce": "cross-entropy from probabilities is clipped to [1e-7, 1 − 1e-7]; Keras 3 uses the logits of "
                  "a final softmax/sigmoid inside a compiled fit (graph mode) but clips in eager calls",
    "rmsprop_eps": "RMSprop's epsilon: Keras 3 (and minicnn) put it inside the square root, Keras 2 / tf.keras "
                   "< 2.11 outside",
    "same_padding": "'same' padding with an even kernel or a stride > 1 puts the odd pixel bottom/right (TF); "
                    "other frameworks (PyTorch, Caffe) put it top/left",
    "pool_ties": "max-pool windows with tied maxima: minicnn routes the gradient to the first maximum; TF may "
                 "choose another",
    "glorot_fans": "initialization only: glorot fans for conv kernels are kh·kw·c_in and kh·kw·c_out (Keras)",
}


def _stats(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = np.abs(a - b)
    return float(diff.max()), float(diff.max() / max(np.abs(b).max(), 1e-12))


def _keras_optimizer(optimizer):
    import keras
    cfg = optimizer.get_config()
    name = cfg.pop("name")
    return {"sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam}[name](**cfg)


def compare_with_keras(model, keras_model_or_path=None, x=None, y=None, tol=1e-4, verbose=True):
    """Rows of (stage, layer, tensor, max abs diff, max rel diff) and the gap notes that apply."""
    try:
        import keras
        import tensorflow as tf
    except ImportError as exc:
        raise ImportError("compare_with_keras needs TensorFlow: pip install tensorflow-cpu") from exc
    from ..inline import functional_view
    from ..keras_bridge import to_keras
    if model.loss is None:
        raise ValueError("compare_with_keras: compile the minicnn model first (optimizer and loss)")
    graph = functional_view(model)            # nested models' layers compared one by one
    if keras_model_or_path is None:
        twin = to_keras(graph)
        for layer in graph.layers:            # a frozen layer (a frozen conv base) is frozen in Keras too
            twin.get_layer(layer.name).trainable = layer.trainable
    else:
        twin = keras.models.load_model(keras_model_or_path) if isinstance(keras_model_or_path, str) \
            else keras_model_or_path
        twin.set_weights(model.get_weights())
    x = np.asarray(x, dtype=np.float32)
    rows, notes = [], set()
    # forward, layer by layer (every output visible, then backward through the same pass)
    ours_outputs = list(graph.layer_outputs(x))
    probe = keras.Model(twin.inputs, [twin.get_layer(layer.name).output for layer, _ in ours_outputs])
    theirs_outputs = probe(tf.constant(x))
    for (ours, h_ours), h_theirs in zip(ours_outputs, theirs_outputs):
        rows.append(("forward", ours.name, "output", *_stats(h_ours, h_theirs.numpy())))
        if hasattr(ours, "pool_size") and len(np.unique(np.round(h_ours, 7))) < h_ours.size * 0.9:
            notes.add("pool_ties")
        if getattr(ours, "padding", None) == "same" and (any(k % 2 == 0 for k in (getattr(ours, "kernel_size", None)
                                                        or ours.pool_size)) or max(ours.strides) > 1):
            notes.add("same_padding")
    # loss and gradients (the forward above left every layer's cache ready for backward)
    loss_ours, fused = model._loss_and_seed(ours_outputs[-1][1], y)
    keras_loss = {"categorical_crossentropy": keras.losses.CategoricalCrossentropy,   # mean over the batch
                  "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
                  "binary_crossentropy": keras.losses.BinaryCrossentropy}[model.loss.name](
        from_logits=model.loss.from_logits)

    @tf.function
    def keras_step(xt, yt):
        with tf.GradientTape() as tape:
            value = keras_loss(yt, twin(xt, training=False))
        return value, tape.gradient(value, twin.trainable_weights)
    loss_theirs, grads_theirs = keras_step(tf.constant(x), tf.constant(y))
    rows.append(("loss", "-", "value", *_stats(loss_ours, loss_theirs.numpy())))
    graph.backward(model.loss.backward(), from_logits=fused)
    weights_ours = [w for layer in graph.layers for w in layer.trainable_weights]    # twin.trainable_weights' order
    grads_ours = [w.layer.grads[w.key] for w in weights_ours]
    names = [(w.layer.name, w.key) for w in weights_ours]
    for (layer, key), g_ours, g_theirs in zip(names, grads_ours, grads_theirs):
        rows.append(("gradient", layer, key, *_stats(g_ours, g_theirs.numpy())))
    if not fused:
        notes.add("clipped_ce")
    # one optimizer step each
    before = graph.get_weights()
    optimizer = _keras_optimizer(model.optimizer)
    optimizer.apply_gradients(zip(grads_theirs, twin.trainable_weights))
    from .. import optimizers
    ours_opt = optimizers.from_config(model.optimizer.get_config())
    ours_opt.apply([(key, params, name, model.get_layer(key[0]).grads[name])
                    for key, params, name in model.trainable_params()])
    for (layer, key), w_ours, w_theirs in zip(names, weights_ours, twin.trainable_weights):
        rows.append(("update", layer, key, *_stats(w_ours.numpy(), w_theirs.numpy())))
    graph.set_weights(before)
    if model.optimizer.name == "rmsprop":
        notes.add("rmsprop_eps")
    worst = max(r[4] for r in rows)
    applicable = {k: KNOWN_GAPS[k] for k in sorted(notes)} if worst > tol else {}
    if verbose:
        print(f"{'stage':9s} {'layer':22s} {'tensor':8s} {'max abs diff':>13s} {'max rel diff':>13s}")
        for stage, layer, tensor, a, r in rows:
            print(f"{stage:9s} {layer:22s} {tensor:8s} {a:13.3e} {r:13.3e}")
        print("all within tolerance" if worst <= tol else "differences above tolerance; known convention gaps "
              "that apply here:\n  " + "\n  ".join(applicable.values()) if applicable else
              "differences above tolerance with no known convention gap: look at the first row that differs")
    return rows, applicable
