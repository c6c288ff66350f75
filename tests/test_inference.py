"""Forward passes no backward follows (``minicnn/inference.py``): ``predict`` and ``evaluate``
give what the cache-keeping forward gives, keep no cache and write no switches, and a
backward after them says which layer has nothing to run from."""
import contextlib
import tracemalloc

import numpy as np
import pytest

import minicnn as mc
from minicnn.inference import forward_only


def seed_like_model():
    """MNIST 24/48/64's shape at a smaller size: a conv + ReLU + pool the fused kernel runs
    (one input channel), then one on Winograd and its pool."""
    mc.set_seed(0)
    inputs = mc.Input((16, 16, 1))
    x = mc.layers.Conv2D(24, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = mc.layers.MaxPooling2D(name="pool1")(x)
    x = mc.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = mc.layers.MaxPooling2D(name="pool2")(x)
    x = mc.layers.Flatten()(x)
    outputs = mc.layers.Dense(3, activation="softmax", name="out")(x)
    model = mc.Model(inputs, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy")
    return model


X = np.random.default_rng(0).uniform(0, 1, (256, 16, 16, 1)).astype(np.float32)


def test_predict_equals_the_forward_a_backward_can_follow():
    """Bit for bit, with the conv–pool pair on the fused kernel and the second conv on
    Winograd (the paths that write switches and keep caches in a training forward)."""
    model = seed_like_model()
    with mc.use_kernels("numba"):
        kept = model.forward(X, training=False).copy()
        y = np.zeros(len(X), np.int64)
        loss = float(model._losses(kept, y)[0])
        assert model.get_layer("conv1").algorithm.forward == "implicit_gemm"
        assert model.get_layer("conv2").algorithm.forward == "winograd"
        assert model.get_layer("pool1").cache.switches is not None
        np.testing.assert_array_equal(model.predict(X, batch_size=len(X)), kept)
        np.testing.assert_array_equal(model.predict(X, batch_size=100), kept)
        assert model.evaluate(X, y, batch_size=len(X), verbose=0) == pytest.approx(loss, rel=1e-6)


def test_a_forward_only_pass_keeps_no_cache_and_writes_no_switches():
    """Every layer's cache but the output's (a loss reads its logits) is let go of once its
    step has run, the fused pool's switches buffer is never made, and what the pass leaves
    allocated (tracemalloc) is smaller than a cache-keeping pass leaves by at least those
    switches."""
    held = {}
    for kept in (True, False):
        model = seed_like_model()
        with mc.use_kernels("numba"):
            tracemalloc.start()
            with contextlib.nullcontext() if kept else forward_only():
                out = model.forward(X)
            held[kept] = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
        pool = model.get_layer("pool1")
        if not kept:
            assert all(layer.cache is None for layer in model.layers if layer.name != "out")
            assert "switches" not in pool.workspace._buffers
        else:
            switches = pool.cache.switches.nbytes
        del out
    assert held[True] - held[False] >= switches


def test_a_backward_after_predict_names_the_layer():
    model = seed_like_model()
    with mc.use_kernels("numba"):
        out = model.predict(X[:8])
        with pytest.raises(ValueError, match="'out'.*backward called before forward.*predict"):
            model.backward(np.ones_like(out))
        out = model.forward(X[:8], training=False)      # a forward that keeps its caches: backward runs
        model.backward(np.ones_like(out))
    assert model.get_layer("conv1").grads["kernel"].shape == (3, 3, 1, 24)


def kept_arrays(state):
    """The arrays in a layer's call state (its cache, nested tuples, and its activation's slots)."""
    if isinstance(state, np.ndarray):
        return [state]
    if isinstance(state, (tuple, list)):
        return [a for item in state for a in kept_arrays(item)]
    return []


# (BatchNormalization is not among them: its backward recomputes x̂ from x, so it keeps only its
# input and the per-channel statistics in any forward.)
BACKWARD_ONLY_LAYERS = [lambda: mc.layers.MaxPooling2D(2, padding="same"), lambda: mc.layers.MaxPooling2D(3, 1),
                        lambda: mc.layers.Activation("relu"),
                        lambda: mc.layers.GlobalMaxPooling2D(), lambda: mc.layers.PReLU()]


@pytest.mark.parametrize("make", BACKWARD_ONLY_LAYERS)
def test_a_layer_forward_no_backward_follows_computes_nothing_for_a_backward(cpu_kernels, make):
    """Each layer that keeps something only its backward reads (the pool's arg-max switches,
    the ReLU's mask, the global max's ties, PReLU's sign): inside ``forward_only``
    its output is the training=False forward's, and what it keeps is no array it computed,
    only views of its input or output; the training=False forward does compute one."""
    x = np.random.default_rng(1).standard_normal((5, 6, 7, 3)).astype(np.float32)
    layer = make()

    def computed(y):
        return [a for a in kept_arrays(layer.call_state()) if a.size > 3
                and not np.shares_memory(a, x) and not np.shares_memory(a, y)]
    y_kept = layer.forward(x).copy()
    assert computed(layer.forward(x))
    with forward_only():
        y = layer.forward(x)
        assert computed(y) == []
    np.testing.assert_array_equal(y, y_kept)


def test_predict_writes_no_switches_nor_normalized_input_in_any_workspace():
    """A model whose max-pools run unfused (one over a BN, one over a linear conv): predict
    and evaluate leave no 'switches' or 'x_hat' buffer in any workspace, and give what the
    cache-keeping forward gives."""
    mc.set_seed(0)
    inputs = mc.Input((12, 12, 3))
    x = mc.layers.Conv2D(8, 3, padding="same")(inputs)
    x = mc.layers.BatchNormalization()(x)
    x = mc.layers.MaxPooling2D()(x)
    x = mc.layers.Conv2D(8, 3, padding="same")(x)
    x = mc.layers.Activation("relu")(mc.layers.Add()([x, mc.layers.MaxPooling2D(3, 1, "same")(x)]))
    outputs = mc.layers.Dense(3, activation="softmax")(mc.layers.GlobalMaxPooling2D()(x))
    model = mc.Model(inputs, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy")
    data = np.random.default_rng(2).standard_normal((20, 12, 12, 3)).astype(np.float32)
    with mc.use_kernels("numba"):
        kept = model.forward(data, training=False).copy()
        model._release_inference_buffers()
        for layer in model.layers:
            layer.workspace.clear()
        np.testing.assert_array_equal(model.predict(data, batch_size=8), kept)
        model.evaluate(data, np.zeros(len(data), np.int64), batch_size=8, verbose=0)
    names = {name for layer in model.layers for name in layer.workspace._buffers}
    assert not names & {"switches", "x_hat"} and "y" in names
