"""A model under stress: shared between threads, trained into NaN and back, given NumPy
scalars and bad arguments, interrupted inside an optimizer step, asked to predict on more
data than it should hold in memory at once."""
import math
import re
import signal
import threading

import numpy as np
import pytest

import minicnn as mc
from minicnn import layers
from memory_checks import peak_of_new_arrays

THREADS = 4


def data(n=48, seed=0, size=12):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, size, size, 1)).astype("float32")
    labels = rng.integers(0, 3, n)
    x[np.arange(n), labels * 4, 0, 0] += 2.0
    return x, np.eye(3, dtype="float32")[labels]


def model(optimizer=None, seed=0):
    mc.set_seed(seed)
    net = mc.Sequential([layers.Input((12, 12, 1)), layers.Conv2D(6, 3, activation="relu"), layers.MaxPooling2D(),
                         layers.Conv2D(8, 3, padding="same", activation="relu"), layers.Flatten(),
                         layers.Dense(3, activation="softmax")])
    net.compile(optimizer or mc.optimizers.Adam(0.01), "categorical_crossentropy", metrics=["acc"])
    return net


def in_threads(work, jobs):
    """Run ``work(job)`` for every job, THREADS at a time, all released at once by a barrier;
    returns the results in job order (an exception in any thread fails the test)."""
    barrier, results, errors = threading.Barrier(THREADS), {}, []

    def worker(mine):
        barrier.wait()
        try:
            for i in mine:
                results[i] = work(jobs[i])
        except BaseException as exc:            # reported in the main thread
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(range(t, len(jobs), THREADS),)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [results[i] for i in range(len(jobs))]


def all_state(net):
    """Weights, optimizer slots (in weight order: two models of one architecture have other
    layer names) and step count, copied."""
    slots = [{s: v.copy() for s, v in net.optimizer.slots[key].items()}
             for key, _, _ in net.trainable_params() if key in net.optimizer.slots]
    return [w.copy() for w in net.get_weights()], slots, net.optimizer.iterations


def assert_same_state(a, b):
    for u, v in zip(a[0], b[0]):
        np.testing.assert_array_equal(u, v)
    assert [sorted(s) for s in a[1]] == [sorted(s) for s in b[1]]
    for mine, theirs in zip(a[1], b[1]):
        for slot in mine:
            np.testing.assert_array_equal(mine[slot], theirs[slot])
    assert a[2] == b[2]


# -- 3. threads ---------------------------------------------------------------------------

def test_predict_and_evaluate_from_threads_equal_sequential_calls(cpu_kernels):
    net = model()
    x, y = data(160)
    net.fit(x, y, epochs=1, batch_size=16, verbose=0)
    jobs = [(x[i:i + 64 + 8 * (i % 3)], y[i:i + 64 + 8 * (i % 3)], 5 + i % 4) for i in range(0, 80, 2)]
    expected = [(net.predict(xj, batch_size=b), net.evaluate(xj, yj, batch_size=b, verbose=0)) for xj, yj, b in jobs]
    got = in_threads(lambda job: (net.predict(job[0], batch_size=job[2]),
                                  net.evaluate(job[0], job[1], batch_size=job[2], verbose=0)), jobs)
    for (p_seq, e_seq), (p_thr, e_thr) in zip(expected, got):
        np.testing.assert_array_equal(p_thr, p_seq)
        assert e_thr == e_seq


def test_training_from_threads_equals_the_same_steps_in_sequence(cpu_kernels):
    """Every thread trains on the same batch, so any order of the steps is the same
    sequence: the final weights and optimizer state are those of the steps run one by one."""
    x, y = data(16)
    sequential, shared = model(), model()
    for _ in range(2 * THREADS):
        sequential.train_on_batch(x, y)
    for _ in range(THREADS):
        sequential.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    in_threads(lambda _: shared.train_on_batch(x, y), range(2 * THREADS))
    in_threads(lambda _: shared.fit(x, y, batch_size=8, shuffle=False, verbose=0), range(THREADS))
    assert_same_state(all_state(shared), all_state(sequential))


def test_input_gradients_from_threads_equal_sequential_calls(cpu_kernels):
    """The visualizations' entry point (``model.gradient``, e.g. a saliency map of a class
    logit) from several threads returns what it returns called one call at a time."""
    net = model()
    x, _ = data(32)

    def saliency(job):
        images, cls = job
        grad = net.gradient(images, lambda z: np.eye(3, dtype=z.dtype)[[cls] * len(z)], logits=True).grad
        return np.array(grad)
    jobs = [(x[i:i + 8], i % 3) for i in range(24)]
    expected = [saliency(job) for job in jobs]
    for got, want in zip(in_threads(saliency, jobs), expected):
        np.testing.assert_array_equal(got, want)


def test_the_lock_is_reentrant_and_one_per_model():
    net, other = model(), model()
    x, y = data(16)
    seen = []

    class PredictInside(mc.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.predict(x[:2]).shape)       # same thread, lock already held
    net.fit(x, y, epochs=2, verbose=0, callbacks=[PredictInside()])
    assert seen == [(2, 3), (2, 3)]
    assert net.call_lock is net.call_lock and net.call_lock is not other.call_lock


# -- 4. numerics and arguments ----------------------------------------------------------

RESET = ("restored the weights of the last finite step and reset the optimizer's state "
         "(slots zero, step count 0)")


def test_after_a_nan_stop_the_weights_are_those_of_the_last_finite_step_and_the_optimizer_new(capsys):
    """The third batch overflows the forward pass (inputs near float32's largest value):
    fit stops at step 3 with the weights that gave step 2 its finite loss, those of a twin
    trained on batch 1 alone, and the optimizer as new."""
    x, y = data(48)
    x[16:24] *= np.float32(1e38)
    net = model(mc.optimizers.Adam(0.01))
    net.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    out = capsys.readouterr().out
    assert "Epoch 1, step 3: loss is inf" in out or "Epoch 1, step 3: loss is nan" in out
    assert RESET in out
    twin = model(mc.optimizers.Adam(0.01))
    twin.train_on_batch(x[:8], y[:8])
    for a, b in zip(net.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert net.optimizer.slots == {} and net.optimizer.iterations == 0


def test_after_one_wild_batch_the_next_fit_trains(capsys):
    """A batch of inputs ~1e20 gives a finite loss but gradients whose squares overflow:
    Adam's v becomes inf, which makes that update 0 (the weights stay finite), the next
    update NaN, and the loss after it NaN.  The weights before that are finite, but the
    moments are not: with them, a fit on clean data stopped again at its 2nd step; with
    the optimizer reset, it trains every epoch."""
    x, y = data(48)
    wild = x.copy()
    wild[8:16] *= np.float32(1e20)
    net = model(mc.optimizers.Adam(0.01))
    net.fit(wild, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    out = capsys.readouterr().out
    assert "Epoch 1, step 4: loss is nan" in out and RESET in out
    assert all(np.isfinite(w).all() for w in net.get_weights())
    history = net.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert len(history.epoch) == 3 and all(math.isfinite(v) for v in history.history["loss"])


@pytest.mark.parametrize("optimizer", [mc.optimizers.Adam, mc.optimizers.SGD, mc.optimizers.RMSprop])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.0, -0.1, np.float32("nan"), True, "0.1"])
def test_non_finite_or_non_positive_learning_rates_are_refused(optimizer, value):
    message = f"{optimizer.__name__}: learning_rate must be a finite number > 0, received {value!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        optimizer(learning_rate=value)


def test_a_learning_rate_set_later_is_checked_too():
    optimizer = mc.optimizers.Adam()
    with pytest.raises(ValueError, match="Adam: learning_rate must be a finite number > 0, received nan"):
        optimizer.learning_rate = float("nan")
    net = model()
    x, y = data(16)
    schedule = mc.callbacks.LearningRateScheduler(lambda epoch, lr: float("inf"))
    with pytest.raises(ValueError, match="LearningRateScheduler: the schedule's learning rate for epoch 0 "
                                         "must be a finite number > 0, received inf"):
        net.fit(x, y, verbose=0, callbacks=[schedule])


@pytest.mark.parametrize("make,message", [
    (lambda: mc.optimizers.Adam(beta_1=2), r"Adam: beta_1 must be a number in \[0, 1\), received 2"),
    (lambda: mc.optimizers.Adam(beta_1=-0.1), r"Adam: beta_1 must be a number in \[0, 1\), received -0.1"),
    (lambda: mc.optimizers.Adam(beta_2=1.0), r"Adam: beta_2 must be a number in \[0, 1\), received 1.0"),
    (lambda: mc.optimizers.Adam(beta_2=float("nan")), r"Adam: beta_2 must be a number in \[0, 1\), received nan"),
    (lambda: mc.optimizers.Adam(epsilon=-1e-7), r"Adam: epsilon must be a finite number >= 0, received -1e-07"),
    (lambda: mc.optimizers.RMSprop(rho=-1), r"RMSprop: rho must be a number in \[0, 1\), received -1"),
    (lambda: mc.optimizers.RMSprop(rho=1), r"RMSprop: rho must be a number in \[0, 1\), received 1"),
    (lambda: mc.optimizers.RMSprop(momentum=1.5), r"RMSprop: momentum must be a number in \[0, 1\], received 1.5"),
    (lambda: mc.optimizers.RMSprop(epsilon=float("inf")), "RMSprop: epsilon must be a finite number >= 0"),
    (lambda: mc.optimizers.SGD(momentum=-0.5), r"SGD: momentum must be a number in \[0, 1\], received -0.5"),
    (lambda: mc.optimizers.SGD(momentum="0.9"), r"SGD: momentum must be a number in \[0, 1\], received '0.9'"),
])
def test_out_of_range_optimizer_arguments_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_numpy_scalars_are_accepted_wherever_python_numbers_are():
    """The same run with NumPy scalars and with Python numbers gives the same bits (float64
    scalars: np.float32(0.01) is another number than 0.01, and is accepted too)."""
    x, y = data(40)
    runs = []
    for num, whole in ((float, int), (np.float64, np.int64)):
        net = model(mc.optimizers.Adam(num(0.01), beta_1=num(0.9), beta_2=num(0.999), epsilon=num(1e-7)))
        stopper = mc.callbacks.EarlyStopping(monitor="loss", patience=whole(5), min_delta=num(0.0))
        schedule = mc.callbacks.LearningRateScheduler(lambda epoch, lr: np.float64(lr))
        history = net.fit(x, y, batch_size=whole(8), epochs=whole(2), initial_epoch=whole(0),
                          validation_split=num(0.25), shuffle=False, verbose=0, callbacks=[stopper, schedule])
        runs.append((net.get_weights(), history.history, net.predict(x, batch_size=whole(7)),
                     net.evaluate(x, y, batch_size=whole(9), verbose=0)))
    for optimizer in (mc.optimizers.SGD(np.float32(0.1), momentum=np.float32(0.5)),
                      mc.optimizers.RMSprop(np.float32(0.1), rho=np.float16(0.9), momentum=np.int8(0))):
        assert optimizer.get_config()["learning_rate"] == float(np.float32(0.1))
    (w1, h1, p1, e1), (w2, h2, p2, e2) = runs
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2 and e1 == e2
    np.testing.assert_array_equal(p1, p2)


@pytest.mark.parametrize("call,message", [
    (lambda net, x, y: net.predict(x, batch_size=0), "predict: batch_size must be an int >= 1, received 0"),
    (lambda net, x, y: net.evaluate(x, y, batch_size=0), "evaluate: batch_size must be an int >= 1, received 0"),
    (lambda net, x, y: net.predict(x, batch_size=2.5), "predict: batch_size must be an int >= 1, received 2.5"),
    (lambda net, x, y: net.fit(x, y, batch_size=-3), "fit: batch_size must be an int >= 1, received -3"),
    (lambda net, x, y: net.fit(x, y, epochs=-1), "fit: epochs must be an int >= 0, received -1"),
    (lambda net, x, y: net.fit(x, y, epochs=2.0), "fit: epochs must be an int >= 0, received 2.0"),
    (lambda net, x, y: net.fit(x, y, initial_epoch=-1), "fit: initial_epoch must be an int >= 0, received -1"),
    (lambda net, x, y: net.fit(x, y, validation_split=1.0), r"fit: validation_split must be a number in \[0, 1\)"),
    (lambda net, x, y: net.fit(x, y, validation_split=0.999),
     "validation_split=0.999 of 40 samples leaves 0 for training and 40 for validation"),
    (lambda net, x, y: net.fit(x, y, validation_split=1e-17),
     "validation_split=1e-17 of 40 samples leaves 40 for training and 0 for validation"),
    (lambda net, x, y: net.fit(x, y, validation_data=(x,)),
     r"validation_data must be a tuple \(x_val, y_val\) or \(x_val, y_val, sample_weight\), received a tuple of length 1"),
    (lambda net, x, y: net.fit(x, y, validation_data=x),
     r"validation_data must be a tuple \(x_val, y_val\) or \(x_val, y_val, sample_weight\), received ndarray"),
    (lambda net, x, y: net.fit(x, y, validation_data=(x, y, np.ones(3))),
     r"fit \(validation_data\): sample_weight must have shape \(40,\), one weight per sample, received shape \(3,\)"),
    (lambda net, x, y: net.fit(x, y, sample_weight=np.ones(39)), r"fit: sample_weight must have shape \(40,\)"),
    (lambda net, x, y: mc.callbacks.EarlyStopping(patience=-1), "EarlyStopping: patience must be an int >= 0"),
    (lambda net, x, y: mc.callbacks.EarlyStopping(min_delta=float("nan")), "EarlyStopping: min_delta must be a finite"),
])
def test_bad_arguments_raise_value_errors_naming_them_before_any_step(call, message):
    net = model()
    x, y = data(40)
    before = net.get_weights()
    with pytest.raises(ValueError, match=message):
        call(net, x, y)
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_zero_epochs_trains_nothing():
    net = model()
    x, y = data(16)
    before = net.get_weights()
    assert net.fit(x, y, epochs=0, verbose=0).epoch == []
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- 6. memory and interrupts -------------------------------------------------------------

def test_predict_and_evaluate_release_buffers_larger_than_the_bound(cpu_kernels):
    net = model()
    x, y = data(600)
    net.inference_buffer_limit = 64 * 1024
    net.predict(x, batch_size=600)
    net.evaluate(x, y, batch_size=600, verbose=0)
    held = [b.nbytes for layer in net.layers for b in layer.workspace._buffers.values()]
    assert max(held, default=0) <= net.inference_buffer_limit
    assert all(layer.cache is None for layer in net.layers)
    net.predict(x, batch_size=4)
    small = sum(layer.workspace.nbytes for layer in net.layers)
    assert small > 0                                        # small buffers stay for the next call
    net.train_on_batch(x[:300], y[:300])                   # training keeps its buffers, however large
    assert max(b.nbytes for layer in net.layers for b in layer.workspace._buffers.values()) > 64 * 1024


def _predict_peak(net, x, batch_size):
    """(peak bytes of new allocations during predict, the result's bytes)."""
    peak, result = peak_of_new_arrays(lambda: net.predict(x, batch_size=batch_size))
    return peak, result.nbytes


def test_predict_memory_is_bounded_by_the_batch_size_not_the_data(cpu_kernels):
    """Beyond its result, predict on 10x the data allocates no more at once (before: a
    mask of the whole input for the NaN check, 1.6 MB here, and every batch's output kept
    then concatenated).  The slack covers garbage cycles of np.pad awaiting collection."""
    net = model()
    x, _ = data(11000, size=12)
    net.predict(x[:1100], batch_size=100)                   # the workspaces exist from here on
    peak_small, out_small = _predict_peak(net, x[:1100], 100)
    peak_large, out_large = _predict_peak(net, x, 100)
    assert peak_large - out_large <= peak_small - out_small + 64 * 1024, (peak_small, out_small, peak_large, out_large)


@pytest.fixture
def python_sigint_handler():
    """SIGINT on Python's own handler (KeyboardInterrupt) for the test: a process started in
    the background by a shell without job control inherits SIGINT ignored, and then Ctrl-C
    is rightly ignored by training too."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("make", [lambda: mc.optimizers.Adam(0.01), lambda: mc.optimizers.RMSprop(0.01, momentum=0.5),
                                  lambda: mc.optimizers.SGD(0.1, momentum=0.9)])
def test_ctrl_c_inside_an_optimizer_step_takes_effect_after_it(cpu_kernels, make, monkeypatch, python_sigint_handler):
    """A SIGINT (what Ctrl-C sends) arriving while the 2nd parameter is being updated: the
    KeyboardInterrupt comes out of train_on_batch only after every parameter was updated,
    so the state is that of an uninterrupted twin; the SIGINT handler is put back."""
    x, y = data(16)
    net, twin = model(make()), model(make())
    net.train_on_batch(x, y)
    twin.train_on_batch(x, y)
    update, calls = net.optimizer.update, []

    def interrupted(w, g, slots):
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return update(w, g, slots)
    monkeypatch.setattr(net.optimizer, "update", interrupted)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        net.train_on_batch(x, y)
    assert len(calls) == len(net.trainable_params()) > 2
    assert signal.getsignal(signal.SIGINT) is handler
    twin.train_on_batch(x, y)
    assert_same_state(all_state(net), all_state(twin))

