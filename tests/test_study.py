"""The study tools' numbers against independent computations: finite differences,
TensorFlow, hand-computed cases; the live view in headless Chromium."""
import os
import re

import numpy as np
import pytest

import minicnn as mc
from minicnn import architectures, layers
from minicnn.study import finite_differences as gc
from minicnn.study.keras_diff import compare_with_keras
from minicnn.study.live import LiveView
from minicnn.study.microscope import OptimizerMicroscope
from minicnn.study.step_trace import trace


def small_model(seed=0):
    mc.set_seed(seed)
    model = mc.Sequential([layers.Input((8, 8, 2)), layers.Conv2D(3, 3, activation="relu", name="conv"),
                           layers.MaxPooling2D(2, name="pool"), layers.Flatten(name="flat"),
                           layers.Dense(5, activation="relu", name="hidden"), layers.Dropout(0.3, name="drop"),
                           layers.Dense(3, activation="softmax", name="out")])
    model.compile("adam", "categorical_crossentropy")
    return model


def data(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, 8, 8, 2)), np.eye(3)[rng.integers(0, 3, n)]


def test_gradcheck_passes_on_a_correct_model():
    x, y = data()
    results = gc.gradcheck(small_model(), x, y, verbose=False)
    assert {r.layer for r in results} == {"conv", "pool", "flat", "hidden", "drop", "out"}
    assert max(r.rel_error for r in results) < 1e-6
    assert gc.gradcheck(small_model(), x, y, bisect=True, verbose=False) is None


PLANTS = [  # (class to break, what, the layer bisect must name: the topmost of that class)
    (layers.Conv2D, "params", "conv"), (layers.Conv2D, "input", "conv"), (layers.MaxPooling2D, "input", "pool"),
    (layers.Flatten, "input", "flat"), (layers.Dense, "params", "out"), (layers.Dense, "input", "out"),
    (layers.Dropout, "input", "drop"),
]


@pytest.mark.parametrize("cls,what,culprit", PLANTS)
def test_bisect_names_the_layer_with_a_planted_bug(cls, what, culprit, monkeypatch):
    original = cls.call_backward

    def wrong(self, dz, input_grad=True):
        dx = original(self, dz, input_grad)
        if what == "params":
            self.grads = {k: g * 1.01 for k, g in self.grads.items()}
            return dx
        return dx * 1.01
    monkeypatch.setattr(cls, "call_backward", wrong)
    x, y = data()
    assert gc.gradcheck(small_model(), x, y, bisect=True, verbose=False) == culprit


def test_bisect_catches_a_broken_activation_backward(monkeypatch):
    from minicnn import activations
    monkeypatch.setattr(activations.ReLU, "backward", lambda self, da: da * self.mask * 0.99)
    x, y = data()
    assert gc.gradcheck(small_model(), x, y, bisect=True, verbose=False) == "hidden"


def test_gradcheck_cli_reports_and_exits_zero(capsys):
    from minicnn.cli import main
    with pytest.raises(SystemExit) as info:
        main(["gradcheck", "--model", "face_cnn", "--bisect"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "every backward agrees" in out and "conv2d" in out and "rel. error" in out


def test_compare_with_keras_matches_and_names_gaps():
    mc.set_seed(0)
    model = architectures.mnist_convnet((20, 20, 1))
    model.compile(mc.optimizers.RMSprop(1e-3), "categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 1, (4, 20, 20, 1)).astype("float32")
    y = np.eye(10, dtype="float32")[[1, 2, 3, 4]]
    rows, gaps = compare_with_keras(model, x=x, y=y, verbose=False)
    stages = {r[0] for r in rows}
    assert stages == {"forward", "loss", "gradient", "update"}
    assert max(r[3] for r in rows) < 1e-4 and gaps == {}
    rows, gaps = compare_with_keras(model, x=x, y=y, tol=0.0, verbose=False)   # force the gap report
    assert "rmsprop_eps" in gaps


def test_trace_numbers_against_a_hand_computation():
    x, y = data(4)
    model = small_model()
    before = model.get_layer("hidden").get_weights()[0].copy()
    rows = trace(model, x.astype("float32"), y.astype("float32"), verbose=False)
    assert [r["layer"] for r in rows] == ["conv + pool (fused)", "flat", "hidden + relu (fused epilogue)", "drop", "out"]
    after = model.get_layer("hidden").get_weights()[0]
    hidden = rows[2]
    assert np.isclose(hidden["update_ratio"]["kernel"], np.linalg.norm(after - before) / np.linalg.norm(before))
    assert rows[0]["shape"] == (4, 3, 3, 3)                 # the group's output: the pool's
    assert 0 <= rows[0]["dead_relu_fraction"] <= 1 and np.isfinite(rows[0]["param_grad_norms"]["kernel"])
    with mc.use_kernels("reference"):                      # no fused group: one row per layer
        rows = trace(model, x.astype("float32"), y.astype("float32"), verbose=False)
    assert [r["layer"] for r in rows] == ["conv", "pool", "flat", "hidden", "drop", "out"]
    assert rows[0]["shape"] == (4, 6, 6, 3) and rows[0]["algorithm"] == "im2col + GEMM"


def test_optimizer_microscope_matches_adam_by_hand():
    x, y = data(6)
    model = small_model()
    microscope = OptimizerMicroscope()
    model.fit(x.astype("float32"), y.astype("float32"), batch_size=6, epochs=2, verbose=0, callbacks=[microscope])
    assert microscope.steps == [1, 2]
    slots = model.optimizer.slots[("out", "kernel")]
    opt = model.optimizer
    step = opt.learning_rate * np.sqrt(1 - opt.beta_2 ** 2) / (1 - opt.beta_1 ** 2)
    expected = np.abs(step * slots["m"] / (np.sqrt(slots["v"]) + opt.epsilon)).mean()
    assert np.isclose(microscope.records[-1][("out", "kernel")]["effective step"], expected)
    from minicnn.viz.plots import save_figure
    assert len(save_figure(microscope.plot())) > 1000


def test_live_view_loads_in_chromium_and_updates(tmp_path):
    from browser import inspect
    x, y = data(12)
    model = small_model()
    path = tmp_path / "live.html"
    view = LiveView(path, x[:1].astype("float32"), every=2)
    model.fit(x.astype("float32"), y.astype("float32"), batch_size=4, epochs=1, verbose=0, callbacks=[view])
    first = re.search(r"step <span id='step'>(\d+)</span>", path.read_text()).group(1)
    images, loaded, errors, std = inspect(str(path), str(tmp_path / "shot.png"))
    assert images >= 4 and loaded == images and errors == [] and std > 10
    model.fit(x.astype("float32"), y.astype("float32"), batch_size=4, epochs=1, verbose=0, callbacks=[view])
    second = re.search(r"step <span id='step'>(\d+)</span>", path.read_text()).group(1)
    assert int(second) > int(first)
    assert "http-equiv='refresh'" in path.read_text()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_live_view_histograms_show_the_training_gradients(tmp_path, monkeypatch):
    """The histograms must show the last training step's gradients, not those of the view's
    own visualization backward pass (which runs before they are drawn)."""
    x, y = data(8)
    model = small_model()
    captured, shown = [], []

    class Capture(mc.callbacks.Callback):
        def on_train_batch_end(self, step, logs=None):
            captured.append(model.get_layer("conv").grads["kernel"].copy())
    monkeypatch.setattr(LiveView, "gradient_histograms",
                        staticmethod(lambda grads: shown.append(grads["conv/kernel"].copy()) or _empty_figure()))
    view = LiveView(tmp_path / "live.html", x[:1].astype("float32"), every=2)
    model.fit(x.astype("float32"), y.astype("float32"), batch_size=4, epochs=1, verbose=0, callbacks=[Capture(), view])
    np.testing.assert_array_equal(shown[0], captured[1])
    np.testing.assert_array_equal(model.get_layer("conv").grads["kernel"], captured[-1])


def _empty_figure():
    import matplotlib.pyplot as plt
    return plt.figure()


def test_summary_details_teach_the_padding():
    model = mc.Sequential([layers.Input((7, 7, 1)), layers.Conv2D(2, 2, strides=2, padding="same"),
                           layers.MaxPooling2D(3, strides=1, padding="same")])
    text = model.summary(details=True, batch_size=2, print_fn=None)
    assert "(0, 1, 0, 1)" in text          # TF: the odd pixel goes bottom/right
    assert "(1, 1, 1, 1)" in text
    # receptive field r_out = r_in + (k − 1)·j_in: 2 for the conv, 2 + (3 − 1)·2 = 6 for the pool
    assert "2x2" in text and "6x6" in text
    assert "512.00 B" in text               # im2col: 2 images · 4·4 outputs · 2·2·1 taps · 4 bytes
    assert "Workspace held now (im2col columns, reused outputs and gradients): 0.00 B" in text


def test_summary_details_show_the_workspace_each_layer_holds():
    model = mc.Sequential([layers.Input((7, 7, 1)), layers.Conv2D(2, 2, strides=2, padding="same"),
                           layers.MaxPooling2D(3, strides=1, padding="same")])
    model.predict(np.zeros((2, 7, 7, 1), "float32"))
    conv, pool = model.layers
    # conv: columns 2·4·4 × 2·2·1 and output 2·4·4 × 2, float32; pool: int32 switches 2·4·4·2 (its
    # output, the model's, was handed to predict's caller: the workspace let go of it)
    assert (conv.workspace.nbytes, pool.workspace.nbytes) == (512 + 256, 256)
    text = model.summary(details=True, batch_size=2, print_fn=None)
    assert "768.00 B" in text and "256.00 B" in text
    assert "Workspace held now (im2col columns, reused outputs and gradients): 1.00 KB" in text


def test_gradcheck_bisect_and_keras_diff_on_a_functional_model(monkeypatch):
    """The study tools walk any graph: a residual block's planted bug is found at its layer."""
    x_in = mc.Input((6, 6, 2), name="x")
    h = layers.Conv2D(2, 3, padding="same", activation="relu", name="branch")(x_in)
    h = layers.Add(name="skip")([x_in, h])
    out = layers.Dense(3, activation="softmax", name="out")(layers.Flatten(name="flat")(h))
    model = mc.Model(x_in, out)
    model.compile("sgd", "categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (4, 6, 6, 2)).astype("float32"), np.eye(3)[[0, 1, 2, 0]].astype("float32")
    assert gc.gradcheck(model, x, y, bisect=True, verbose=False) is None
    rows, _ = compare_with_keras(model, x=x, y=y, verbose=False)
    assert max(r[3] for r in rows) < 1e-4
    monkeypatch.setattr(layers.Add, "call_backward", lambda self, dy, input_grad=True: [dy, 0.5 * dy])
    assert gc.gradcheck(model, x, y, bisect=True, verbose=False) == "skip"
