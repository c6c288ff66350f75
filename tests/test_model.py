"""Sequential: save/load round trips, determinism, input validation, callbacks,
metrics and the introspection calls the visualizations build on."""
import csv

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import window_configs

import minicnn as mc
from minicnn import architectures, backend, layers


def tiny_data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 12, 12, 1)).astype("float32")
    labels = rng.integers(0, 3, n)
    x[np.arange(n), labels * 4, 0, 0] += 2.0
    return x, np.eye(3, dtype="float32")[labels], labels


def tiny_model(seed=0, dropout=0.3):
    mc.set_seed(seed)
    model = mc.Sequential([layers.Input((12, 12, 1)), layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(),
                           layers.Flatten(), layers.Dropout(dropout), layers.Dense(3, activation="softmax")])
    model.compile(mc.optimizers.Adam(0.01), "categorical_crossentropy", metrics=["acc"])
    return model


def test_keras_style_names_and_history_keys():
    model = tiny_model()
    assert [layer.name for layer in model.layers] == ["conv2d", "max_pooling2d", "flatten", "dropout", "dense"]
    x, y, _ = tiny_data()
    history = model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert history.epoch == [0, 1]


def test_accuracy_metric_is_computed_correctly():
    """Accuracy over the evaluate batches equals the fraction of argmax hits of predict."""
    model = tiny_model()
    x, y, labels = tiny_data()
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    loss, acc = model.evaluate(x, y, batch_size=7, verbose=0)
    assert np.isclose(acc, (model.predict(x).argmax(1) == labels).mean())


def test_save_load_round_trip_predicts_and_trains_identically(tmp_path):
    x, y, _ = tiny_data()
    model = tiny_model(dropout=0.0)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "m.mnc"
    model.save(path)
    loaded = mc.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.iterations == model.optimizer.iterations
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_truncated_and_foreign_files_raise(tmp_path):
    model = tiny_model()
    path = tmp_path / "m.mnc"
    model.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.mnc").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.mnc: not a readable minicnn model file"):
        mc.load_model(tmp_path / "cut.mnc")
    (tmp_path / "foreign.mnc").write_bytes(b"hello")
    with pytest.raises(ValueError, match="foreign.mnc"):
        mc.load_model(tmp_path / "foreign.mnc")


def test_save_is_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves the old file intact and no temporary file behind."""
    model = tiny_model()
    path = tmp_path / "m.mnc"
    model.save(path)
    before = path.read_bytes()
    import minicnn.saving as saving

    def broken_fsync(fd):
        raise OSError("disk full")
    monkeypatch.setattr(saving.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.mnc"]


def test_same_seed_gives_bit_identical_weights():
    x, y, _ = tiny_data()
    runs = []
    for _ in range(2):
        model = tiny_model(seed=7, dropout=0.5)
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        runs.append(model.get_weights())
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    other = tiny_model(seed=8, dropout=0.5)
    assert not np.array_equal(other.get_weights()[0], runs[0][0])


@pytest.mark.parametrize("mutate,match", [
    (lambda x, y: (x, y[:, :2]), "labels do not fit"),
    (lambda x, y: (x, y[:-1]), "same length, received 40 and 39"),
    (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x).astype("float32"), y), "NaN or inf"),
    (lambda x, y: (x[:, :10], y), r"expected input shape \(None, 12, 12, 1\), received \(40, 10, 12, 1\)"),
    (lambda x, y: (x.astype(str), y), "expected float input"),        # integers are cast, as Keras does
])
def test_bad_fit_input_raises_before_any_step(mutate, match):
    model = tiny_model()
    before = model.get_weights()
    x, y, _ = tiny_data()
    with pytest.raises(ValueError, match=match):
        model.fit(*mutate(x, y), verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs,match", [({"optimizer": "adamw", "loss": "binary_crossentropy"}, "unknown optimizer"),
                                          ({"optimizer": "adam", "loss": "poisson"}, "unknown loss"),
                                          ({"optimizer": "adam", "loss": "binary_crossentropy", "metrics": ["f1"]},
                                           "unknown metric")])
def test_unknown_names_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_model().compile(**kwargs)


def test_non_finite_loss_stops_and_keeps_the_last_good_weights(capsys):
    x, y, _ = tiny_data()
    model = tiny_model(dropout=0.0)
    model.compile(mc.optimizers.SGD(1e20), "categorical_crossentropy")
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0, shuffle=False)
    out = capsys.readouterr().out
    assert "Epoch 1, step 2: loss is nan" in out and "TerminateOnNaN" in out
    assert len(history.epoch) < 5
    # the restored weights are those of step 1, whose loss on batch 1 was finite
    model.compile(mc.optimizers.SGD(1e20), "categorical_crossentropy")
    assert np.isfinite(model.evaluate(x[:8], y[:8], verbose=0))


def test_callbacks(tmp_path):
    x, y, _ = tiny_data()
    model = tiny_model()
    seen_lr = []
    schedule = mc.callbacks.LearningRateScheduler(lambda epoch, lr: seen_lr.append(lr) or 0.01 / (epoch + 1))
    stopper = mc.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)   # can never improve by 10
    logger = mc.callbacks.CSVLogger(tmp_path / "log.csv")
    checkpoint = mc.callbacks.ModelCheckpoint(str(tmp_path / "ck-{epoch:02d}.mnc"), monitor="loss")
    history = model.fit(x, y, epochs=6, batch_size=8, verbose=0,
                        callbacks=[schedule, stopper, logger, checkpoint])
    assert history.epoch == [0, 1] and stopper.stopped_epoch == 1
    assert seen_lr[1] == 0.01 and model.optimizer.learning_rate == 0.005
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "acc", "loss"] and len(rows) == 3
    assert np.isclose(float(rows[2][2]), history.history["loss"][1])
    assert sorted(p.name for p in tmp_path.glob("ck-*")) == ["ck-01.mnc", "ck-02.mnc"]


def test_early_stopping_restores_best_weights():
    """min_delta=10 means no epoch after the first counts as better: training stops after
    patience + 1 more epochs, and the first epoch's weights come back."""
    x, y, _ = tiny_data()
    model = tiny_model(dropout=0.0)
    stopper = mc.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0,
                                         restore_best_weights=True)
    history = model.fit(x, y, epochs=30, batch_size=8, verbose=0, validation_data=(x, y), callbacks=[stopper])
    assert history.epoch == [0, 1, 2] and stopper.stopped_epoch == 2
    assert history.history["val_loss"][2] != history.history["val_loss"][0]
    assert np.isclose(model.evaluate(x, y, verbose=0)[0], history.history["val_loss"][0], rtol=1e-6)


def test_intermediate_outputs_and_input_gradient_by_finite_differences(float64):
    mc.set_seed(0)
    model = architectures.mnist_convnet((20, 20, 1))
    x = np.random.default_rng(0).uniform(0, 1, (1, 20, 20, 1))
    conv, pool = model.intermediate_outputs(x, ["conv2d", "max_pooling2d"])
    assert conv.shape == (1, 18, 18, 32) and pool.shape == (1, 9, 9, 32)
    np.testing.assert_array_equal(pool, model.layers[1].forward(conv))
    # ∂(logit of class 3)/∂x, softmax replaced by linear
    onehot = np.eye(10)[[3]]
    g = model.gradient(x, lambda z: onehot, logits=True)
    from minicnn.study.finite_differences import numeric_gradient, relative_error

    def logit():
        model.forward(x)
        return float(model.layers[-1].activation.logits[0, 3])
    idx = np.arange(0, x.size, 7)
    assert relative_error(g.grad.reshape(-1)[idx], numeric_gradient(logit, x, idx)) < 1e-6
    # ∂(mean activation of filter 5 of conv2d_1)/∂(output of conv2d)
    g2 = model.gradient(x, lambda a: np.full(a.shape, 1.0 / a[..., 5].size) * (np.arange(a.shape[-1]) == 5),
                        layer="conv2d_1", wrt="conv2d")
    assert g2.grad.shape == (1, 18, 18, 32) and g2.wrt_value.shape == (1, 18, 18, 32)


def test_progress_output_without_a_terminal_is_one_line_per_epoch(capsys):
    x, y, _ = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=2, batch_size=4, verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out                       # no live bar when stdout is not a terminal
    lines = out.strip().splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert lines[1].startswith("10/10 ") and "acc:" in lines[1] and "loss:" in lines[1]
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert capsys.readouterr().out == ""


def test_live_bar_on_a_terminal_redraws_in_place():
    import io
    from minicnn.progbar import Progbar

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    stream = Terminal()
    bar = Progbar(3, verbose=1, stream=stream)
    bar._last_draw = -1.0
    bar.update(1, {"loss": 0.5})
    bar.finish({"loss": 0.25})
    text = stream.getvalue()
    assert text.startswith("\r1/3 ") and "ETA" in text and text.rstrip().endswith("loss: 0.2500\x1b[K")


@given(cfg=window_configs(max_channels=6), seed=st.integers(0, 2**16), use_bias=st.booleans())
def test_a_pool_over_a_relu_runs_its_backward_as_the_two_layers_would(kernels, cfg, seed, use_bias, monkeypatch):
    """The plan fuses a max-pool with the Conv2D + ReLU below it (the ReLU's gate applied
    on the pooled gradient, ∂L/∂b summed there, fusion.py): the same ∂L/∂x and
    ∂L/∂W as the two layers' own backwards, for every pool window, stride and padding."""
    conv = layers.Conv2D(cfg["c"], 3, padding="same", activation="relu", use_bias=use_bias)
    pool = layers.MaxPooling2D(cfg["kernel"], cfg["strides"], cfg["padding"])
    model = mc.Sequential([layers.Input((cfg["h"], cfg["w"], 2)), conv, pool]).to(kernels.device)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["n"], cfg["h"], cfg["w"], 2)).astype("float32")
    y = model.forward(kernels(x), training=True)
    dy = kernels(rng.standard_normal(y.shape).astype("float32"))
    relu_backwards, own = [], conv.activation.backward
    monkeypatch.setattr(conv.activation, "backward", lambda da: relu_backwards.append(1) or own(da))
    fused_dx = backend.to_numpy(model.backward(dy)).copy()
    fused = {k: backend.to_numpy(v).copy() for k, v in conv.grads.items()}
    assert relu_backwards == [] and len(model.plan().groups) == 1
    y_twin, two_layers_dx = model.plan().groups[0].group.run_unfused(kernels(x), dy, training=True)
    assert relu_backwards == [1]
    np.testing.assert_array_equal(backend.to_numpy(y), backend.to_numpy(y_twin))
    two_layers_dx = backend.to_numpy(two_layers_dx)
    summed = np.abs(backend.to_numpy(pool.backward(dy))).sum(axis=(0, 1, 2))    # Σ|terms| of each ∂L/∂b
    np.testing.assert_array_equal(fused_dx, two_layers_dx)
    np.testing.assert_array_equal(fused["kernel"], backend.to_numpy(conv.grads["kernel"]))
    assert fused.keys() == conv.grads.keys()
    if use_bias:
        np.testing.assert_allclose(fused["bias"], backend.to_numpy(conv.grads["bias"]),     # float32 sums in
                                   rtol=0, atol=1e-6 * summed.max())            # other orders: ~ε·log2(n)·Σ|terms|
    conv.activation.rule = "guided"
    assert not model.plan().groups[0].group.gates_on_pooled_gradient()
