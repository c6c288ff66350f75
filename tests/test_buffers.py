"""Layer outputs and input gradients live in reused buffers (``kernels/workspace.py``): a
buffer is lent until the executor gives it back, arrays handed to the caller are never
written again, and a training loop in steady state allocates none of its large arrays again."""

import sys
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import architectures, backend, layers
from minicnn.kernels.workspace import CACHE_LINE, Workspace, aligned_empty, owner, scratch
from memory_checks import peak_of_new_arrays


def address(a):
    """Where an array's data starts (host or device memory)."""
    return a.data.ptr if backend.is_gpu_array(a) else a.__array_interface__["data"][0]


def test_a_lent_buffer_is_reused_only_once_given_back_and_never_once_handed_over():
    ws = Workspace()
    first = ws.reusable("y", (4, 3), np.float32)
    first[...] = 7
    second = ws.reusable("y", (4, 3), np.float32)               # `first` is lent: a new one
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, 7)
    ws.reclaim()                                                # the executor gives it back
    third = ws.reusable("y", (4, 3), np.float32)
    assert address(third) == address(second)
    ws.hand_over({id(owner(third.reshape(12)))})                # the caller keeps it (a view says which)
    ws.reclaim()
    assert not np.shares_memory(third, ws.reusable("y", (4, 3), np.float32))
    assert ws.reusable("y", (2, 3), np.float32).shape == (2, 3)  # a new shape, a new buffer


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint8"])
@pytest.mark.parametrize("shape", [(0,), (1,), (3, 5), (64, 7, 7, 3)])
def test_workspace_buffers_start_on_a_cache_line_and_hold_their_shape(shape, dtype):
    for a in (aligned_empty(shape, dtype), Workspace().get("b", shape, dtype), Workspace().reusable("y", shape, dtype),
              scratch(None, "b", shape, dtype), scratch(Workspace(), "b", shape, dtype)):
        assert address(a) % CACHE_LINE == 0 or a.size == 0
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
        a[...] = 1                                  # the whole of it is writable memory
        assert a.sum() == a.size


def test_a_kept_layer_output_or_gradient_is_never_overwritten(kernels):
    """Layers called by themselves (no model, no executor): keep the results of one
    forward/backward, run another on other data: the kept arrays are unchanged; give the
    buffers back, and the next call reuses them."""
    rng = np.random.default_rng(0)
    stack = [layers.Conv2D(4, 3, padding="same"), layers.MaxPooling2D(2)]
    x1, x2 = (kernels(rng.standard_normal((2, 6, 6, 3)).astype("float32")) for _ in range(2))

    def run(x):
        outs, a = [], x
        for layer in stack:
            a = layer.forward(a)
            outs.append(a)
        grads, g = [], kernels(np.ones(a.shape, "float32"))
        for layer in reversed(stack):
            g = layer.backward(g)
            grads.append(g)
        return outs + grads

    kept = run(x1)
    copies = [backend.to_numpy(a).copy() for a in kept]
    again = run(x2)
    for a, copy, b in zip(kept, copies, again):
        np.testing.assert_array_equal(backend.to_numpy(a), copy)
        assert address(a) != address(b)
    where = [address(b) for b in again]
    for layer in stack:
        layer.workspace.reclaim()
    assert [address(b) for b in run(x1)] == where


def test_arrays_a_model_hands_out_are_never_overwritten(kernels):
    """predict's and forward's outputs, layer_outputs, intermediate_outputs, the gradient
    backward returns and gradient()'s target stay as they were while the model runs on
    other data (training steps included); the buffers the model keeps to itself are
    reused from one step to the next."""
    rng = np.random.default_rng(0)
    model = mc.Sequential([layers.Input((6, 6, 3)), layers.Conv2D(4, 3, padding="same", name="conv"),
                           layers.MaxPooling2D(2, name="pool"), layers.Conv2D(2, 3, padding="same", activation="softmax", name="top")])
    model.to(kernels.device).compile(mc.optimizers.SGD(0.01), "mse")
    x1, x2 = (kernels(rng.standard_normal((2, 6, 6, 3)).astype("float32")) for _ in range(2))
    target = kernels(rng.standard_normal((2, 3, 3, 2)).astype("float32"))
    held = [model.forward(x1), model.predict(x1, verbose=0),
            *[a for _, a in model.layer_outputs(x1)], *model.intermediate_outputs(x1, ["conv", "pool"])]
    model.forward(x1)
    held.append(model.backward(kernels(np.ones((2, 3, 3, 2), "float32"))))
    held.append(model.gradient(x1, lambda out: out * 0 + 1, layer="top", logits=True).target)   # the conv's own buffer
    copies = [backend.to_numpy(a).copy() for a in held]
    model.predict(x2, verbose=0)
    for a in model.layer_outputs(x2):
        pass
    model.gradient(x2, lambda out: out * 0 + 1, layer="top")
    inner = []
    for _ in range(3):
        model.train_on_batch(x2, target)
        inner.append(address(model.get_layer("pool").cache.y))
    for a, copy in zip(held, copies):
        np.testing.assert_array_equal(backend.to_numpy(a), copy)
    assert inner[1] == inner[2]                              # the pool's own output buffer: reused


def _steady_state_peak(batch, build=architectures.SEED_MODELS["mnist_deconstructed"], shape=(28, 28, 1)):
    """Peak bytes of new arrays during a training step and a prediction of the model ``build``
    makes, at ``batch``, after two steps."""
    with mc.use_kernels("numba"):
        mc.set_seed(0)
        model = build(shape)
        model.compile(mc.optimizers.RMSprop(1e-3), "categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (batch, *shape)).astype("float32")
        y = np.eye(10, dtype="float32")[rng.integers(0, 10, batch)]
        for _ in range(2):
            model.train_on_batch(x, y)
        peak, _ = peak_of_new_arrays(lambda: (model.train_on_batch(x, y), model.predict(x, batch_size=batch)))
    return peak


def test_training_steps_allocate_no_batch_sized_arrays_in_steady_state():
    """After the first steps, a training step and a prediction of the MNIST CNN hold less than
    an eighth of one activation in new arrays at any time (the largest activation, conv1's
    output, is 256·28·28·24·4 B = 19 MB; measured 2.31 MB), and that peak grows by less than
    1/16 of it from batch 64 to 256 (measured 1.55 → 2.31 MB): what is still allocated is
    mostly weight-sized (the optimizer's temporaries; Winograd's transformed kernels,
    U = G g Gᵀ, 4× a conv's weights)."""
    peak_64, peak_256 = _steady_state_peak(64), _steady_state_peak(256)
    largest = 256 * 28 * 28 * 24 * 4
    assert peak_256 < largest / 8, f"a steady-state step allocated up to {peak_256} B at once"
    assert peak_256 - peak_64 < largest / 16, f"batch 64: {peak_64} B at once, batch 256: {peak_256} B"


def test_a_residual_networks_steps_allocate_no_activation_sized_arrays():
    """The same of a residual network (examples/resnet.py's: BN, Add + ReLU, and a tensor read
    by two layers in every block, whose two gradients the executor sums): a step holds less
    than half of one activation (64·32·32·16·4 B = 4 MB) in new arrays at any time (what it
    does allocate is weight-sized: the Winograd transforms of the 64-channel kernels)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))
    import resnet
    peak = _steady_state_peak(64, lambda shape: resnet.small_resnet(mc, shape), (32, 32, 3))
    largest = 64 * 32 * 32 * 16 * 4
    assert peak < largest / 2, f"a steady-state step allocated up to {peak} B at once"


def test_dropout_and_a_dense_on_a_4d_tensor_write_into_their_buffers():
    """The CIFAR seed model (Dense on the 4-D tensor, then Dropout): its steady-state peak of
    new arrays does not grow with the batch by as much as one of those layers' outputs
    (b·8·8·64·4 B: 2 MB at batch 128): their outputs, the mask and ∂L/∂x are workspace buffers."""
    peak_32, peak_128 = (_steady_state_peak(b, architectures.SEED_MODELS["cifar_six_conv"], (32, 32, 3)) for b in (32, 128))
    dense_output = 128 * 8 * 8 * 64 * 4
    assert peak_128 - peak_32 < dense_output / 4, f"batch 32: {peak_32} B at once, batch 128: {peak_128} B"


def _predict_peak(model, x, batch_size):
    """Peak bytes of new arrays while predicting ``x``, and the result's bytes."""
    model.predict(x, batch_size=batch_size)                 # the workspaces exist from here on
    peak, result = peak_of_new_arrays(lambda: model.predict(x, batch_size=batch_size))
    return peak, result.nbytes


def test_predict_writes_each_batch_of_a_conv_output_into_the_same_buffer():
    """A model whose output is a convolution (and a residual sum inside), on the Numba
    kernels (the NumPy ones pad into temporaries of their own): beyond its result, predict
    over many batches allocates less than one batch of the output at once — the output
    layer's buffer is lent to predict, which copies it into the result, and written again by
    the next batch — and the result is each batch's own output."""
    mc.set_seed(0)
    inputs = mc.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = layers.Add()([x, layers.Conv2D(8, 3, padding="same", activation="relu")(x)])
    model = mc.Model(inputs, layers.Conv2D(16, 3, padding="same")(x))
    batch = 32
    data = np.random.default_rng(0).standard_normal((8 * batch, 16, 16, 3)).astype("float32")
    with mc.use_kernels("numba"):
        peak, result = _predict_peak(model, data, batch)
        output_batch = batch * 16 * 16 * 16 * 4
        assert peak - result < output_batch / 2, f"{peak - result} B beyond the result, one output batch: {output_batch} B"
        each = np.concatenate([model.predict(data[i:i + batch], batch_size=batch) for i in range(0, len(data), batch)])
        np.testing.assert_array_equal(model.predict(data, batch_size=batch), each)
