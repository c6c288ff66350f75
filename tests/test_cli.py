"""The command line documents every option; the report's figures say what they show and
agree with the console."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn.architectures import SEED_MODELS
from minicnn.cli import build_parser, main
from minicnn.viz import plots
from minicnn.viz.report import report_sections


def subcommands():
    return next(a for a in build_parser()._actions if a.dest == "command").choices


@pytest.mark.parametrize("command", ["demo", "bench", "report", "gradcheck", "warmup"])
def test_every_option_is_documented(command):
    for action in subcommands()[command]._actions:
        assert action.help, f"minicnn {command}: {action.option_strings or action.dest} has no help"


def test_gradcheck_help_lists_the_model_names(capsys):
    with pytest.raises(SystemExit):
        main(["gradcheck", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in SEED_MODELS)


def test_an_unknown_warmup_model_is_an_error_that_names_the_choices(capsys):
    with pytest.raises(SystemExit) as info:
        main(["warmup", "no_such_model"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "no_such_model" in err and "mnist_convnet" in err


@given(st.integers(1, 200), st.one_of(st.none(), st.integers(1, 40)))
@settings(max_examples=200, deadline=None)
def test_a_grid_holds_every_panel_without_an_empty_row(n, cols):
    rows, cols_used = plots.grid_shape(n, cols)
    assert rows * cols_used >= n > (rows - 1) * cols_used


@pytest.mark.parametrize("n, shape", [(24, (4, 6)), (48, (6, 8)), (64, (8, 8)), (4, (2, 2)), (32, (4, 8))])
def test_grids_of_the_seed_models_layers_are_full(n, shape):
    assert plots.grid_shape(n) == shape


def test_feature_maps_show_the_input_a_colour_bar_and_blank_unused_cells():
    rng = np.random.default_rng(0)
    fig = plots.plot_feature_maps(rng.uniform(0, 3, (1, 9, 9, 7)), image=rng.uniform(0, 1, (9, 9, 1)))
    images = [ax for ax in fig.axes if ax.images]
    titles = [ax.get_title() for ax in images]
    colorbars = [ax for ax in fig.axes if ax.get_ylabel() == "activation"]
    assert "input" in titles and len(images) == 1 + 7 and len(colorbars) == 1
    shown = [ax.images[0] for ax in images if ax.get_title() not in ("input", "")]
    assert {im.get_clim() for im in shown} == {shown[0].get_clim()}          # one colour scale for every map
    assert len(fig.axes) - len(images) - len(colorbars) == 9 - 7             # 3 × 3 grid: two blank cells
    plots.save_figure(fig)


def test_filter_title_sits_above_the_panels():
    fig = plots.plot_filters(np.random.default_rng(0).standard_normal((8, 8, 1, 4)), title="four filters")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        if ax.images:
            assert ax.title.get_window_extent(renderer).y1 <= title.y0 + 1
    plots.save_figure(fig)


def test_the_reports_confusion_matrix_agrees_with_evaluate_and_grad_cam_names_both_classes(monkeypatch):
    mc.set_seed(0)
    model = mc.Sequential([mc.layers.Input((8, 8, 1)), mc.layers.Conv2D(3, 3, activation="relu"),
                           mc.layers.Flatten(), mc.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (60, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, 60)
    model.fit(x, y, epochs=3, verbose=0)
    accuracy = model.evaluate(x, y, verbose=0)[1]
    grids = []
    plot_image_grid = plots.plot_image_grid
    monkeypatch.setattr(plots, "plot_image_grid", lambda images, titles=None, **kw: grids.append(titles) or
                        plot_image_grid(images, titles, **kw))
    sections = dict(report_sections(model, x, y))
    title = next(t for t in sections if t.startswith("Confusion matrix"))
    assert title == f"Confusion matrix: accuracy {accuracy:.4f} on 60 images"
    predicted = model.predict(x[:8]).argmax(axis=1)
    assert [f"true {t}, pred {p}" for t, p in zip(y[:8], predicted)] in grids
