"""The HTML report opens in headless Chromium without console errors, every image
loads, and the page is not blank."""
import numpy as np

import minicnn as mc
from minicnn import architectures
from minicnn.datasets import embedded
from browser import inspect, run, console_errors


def test_console_check_catches_an_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('broken'); undefinedFunction();</script></body></html>")
    assert console_errors(run(["--dump-dom", f"file://{page}"]).stderr)


def test_report_loads_in_headless_chromium(tmp_path):
    x, y = embedded.load_mnist_digits()
    x = x[..., None].astype("float32") / 255
    mc.set_seed(0)
    model = architectures.mnist_convnet()
    model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x[:512], y[:512].astype(np.int64), batch_size=64, epochs=2, verbose=0,
                        validation_split=0.2)
    path = mc.viz.report(model, x[2500:2600], y[2500:2600], str(tmp_path / "report.html"), history=history,
                         figures_dir=str(tmp_path))
    images, loaded, errors, std = inspect(path, str(tmp_path / "shot.png"))
    assert images >= 8 and loaded == images
    assert errors == []
    assert std > 10                  # a blank page has std 0
    with open(path) as f:
        html = f.read()
    assert "<link" not in html and "src=\"http" not in html      # self-contained
