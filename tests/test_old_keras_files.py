"""``.keras`` files written by older Keras 3 releases (3.3, 3.8; made by
``tests/data/old_keras/make_files.py``) load with their optimizer state: the predictions
are Keras's, and one more epoch in minicnn ends at the weights Keras reached."""
import pathlib

import numpy as np
import pytest

import minicnn as mc

FILES = sorted((pathlib.Path(__file__).parent / "data" / "old_keras").glob("keras_*.keras"))


def test_the_files_are_there():
    assert {f.name.split("_")[1] for f in FILES} >= {"3.3.3", "3.8.0"}
    assert {f.stem.split("_")[2] for f in FILES} == {"adam", "rmsprop"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_an_older_keras_file_continues_training_where_keras_did(path):
    expected = np.load(path.with_suffix(".npz"))
    model = mc.models.load_model(path)
    assert model.optimizer.iterations == 4                      # 2 epochs of 2 batches
    np.testing.assert_allclose(model.predict(expected["x"]), expected["predictions"], rtol=1e-5, atol=1e-6)
    model.fit(expected["x"], expected["y"], batch_size=8, epochs=1, shuffle=False, verbose=0)
    keras_weights = [expected[f"arr_{i}"] for i in range(len(model.get_weights()))]
    for ours, theirs in zip(model.get_weights(), keras_weights, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
