"""The README's hand-off on Keras's JAX backend: a model saved by minicnn as ``.keras`` is
loaded and trained one epoch by Keras 3 running on JAX (in a fresh process, since Keras
picks its backend once, at import), saved again, and loaded back by minicnn: the
predictions agree with JAX's.  JAX is one of the test extras (``pip install -e ".[test]"``):
without it this test fails rather than skips."""
import os
import subprocess
import sys
import textwrap

import numpy as np

import minicnn as mc

KERAS_ON_JAX = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    start, trained, data, predictions = sys.argv[1:]
    arrays = np.load(data)
    model = keras.models.load_model(start)
    history = model.fit(arrays["x"], arrays["y"], batch_size=4, epochs=1, verbose=0)
    model.save(trained)
    np.save(predictions, model.predict(arrays["x"], verbose=0))
    print("iterations", int(model.optimizer.iterations), "loss", history.history["loss"][0])
""")


def test_hand_off_minicnn_keras_on_jax_minicnn(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((12, 8, 8, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 12)]
    mc.set_seed(0)
    inputs = mc.Input((8, 8, 3))
    h = mc.layers.MaxPooling2D()(mc.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs))
    outputs = mc.layers.Dense(3, activation="softmax")(mc.layers.Flatten()(h))
    ours = mc.Model(inputs, outputs)
    ours.compile(optimizer=mc.optimizers.Adam(1e-2), loss="categorical_crossentropy", metrics=["accuracy"])
    ours.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    ours.save(tmp_path / "start.keras")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = tmp_path / "keras_on_jax.py"
    script.write_text(KERAS_ON_JAX)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "start.keras"), str(tmp_path / "trained.keras"),
                           str(tmp_path / "data.npz"), str(tmp_path / "jax_predictions.npy")],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "iterations 6 " in done.stdout, done.stdout         # 3 steps here, then 3 on JAX
    back = mc.models.load_model(tmp_path / "trained.keras")
    np.testing.assert_allclose(back.predict(x), np.load(tmp_path / "jax_predictions.npy"), rtol=1e-5, atol=1e-6)
    assert back.optimizer.iterations == 6
    assert not np.allclose(back.get_weights()[0], ours.get_weights()[0])     # JAX's training came back
