"""Layer outputs and input gradients live in reused buffers (``kernels/workspace.py``): a
buffer is reused only when nothing holds it, and a training loop in steady state
allocates none of its large arrays again."""
import tracemalloc

import numpy as np

import minicnn as mc
from minicnn import architectures, backend, layers
from minicnn.kernels.workspace import Workspace


def address(a):
    """Where an array's data starts (host or device memory)."""
    return a.data.ptr if backend.is_gpu_array(a) else a.__array_interface__["data"][0]


def test_a_reusable_buffer_is_reused_only_when_nothing_holds_it():
    ws = Workspace()
    first = ws.reusable("y", (4, 3), np.float32)
    where = address(first)
    del first                                                   # nobody holds it: reused
    second = ws.reusable("y", (4, 3), np.float32)
    assert address(second) == where
    second[...] = 7
    third = ws.reusable("y", (4, 3), np.float32)                # `second` is held: a new one
    assert not np.shares_memory(second, third)
    view = third[1:]
    del third                                                   # a view keeps it alive too
    fourth = ws.reusable("y", (4, 3), np.float32)
    assert not np.shares_memory(view, fourth)
    np.testing.assert_array_equal(second, 7)                    # a held result is never written
    assert ws.reusable("y", (2, 3), np.float32).shape == (2, 3)  # a new shape, a new buffer


def test_a_kept_layer_output_or_gradient_is_never_overwritten(kernels):
    """Keep the results of one forward/backward, run another on other data: the kept
    arrays are unchanged; drop them, and the next call reuses their buffers."""
    rng = np.random.default_rng(0)
    stack = [layers.Conv2D(4, 3, padding="same", activation="relu"), layers.MaxPooling2D(2)]
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
    del kept, again, a, b                                   # nothing holds the results now
    for layer in stack:
        layer.release()
    assert [address(b) for b in run(x1)] == where


def _steady_state_peak(batch):
    """Peak bytes of new arrays during a training step and a prediction of the MNIST CNN at
    ``batch``, after two steps."""
    with mc.use_kernels("numba"):
        mc.set_seed(0)
        model = architectures.mnist_deconstructed()
        model.compile(mc.optimizers.RMSprop(1e-3), "categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (batch, 28, 28, 1)).astype("float32")
        y = np.eye(10, dtype="float32")[rng.integers(0, 10, batch)]
        for _ in range(2):
            model.train_on_batch(x, y)
        tracemalloc.start()
        try:
            model.train_on_batch(x, y)
            model.predict(x, batch_size=batch)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return peak


def test_training_steps_allocate_no_batch_sized_arrays_in_steady_state():
    """After the first steps, a training step and a prediction of the MNIST CNN hold less than
    an eighth of one activation in new arrays at any time (the largest activation, conv1's
    output, is 256·28·28·24·4 B = 19 MB; measured 2.31 MB), and that peak grows by less than
    1/16 of it from batch 64 to 256 (measured 1.55 → 2.31 MB): what is still allocated is
    mostly weight-sized (the optimizer's temporaries; Winograd's transformed kernels,
    U = G g Gᵀ, 4× a conv's weights, and their panels)."""
    peak_64, peak_256 = _steady_state_peak(64), _steady_state_peak(256)
    largest = 256 * 28 * 28 * 24 * 4
    assert peak_256 < largest / 8, f"a steady-state step allocated up to {peak_256} B at once"
    assert peak_256 - peak_64 < largest / 16, f"batch 64: {peak_64} B at once, batch 256: {peak_256} B"
