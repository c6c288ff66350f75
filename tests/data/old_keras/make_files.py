"""Writes the ``.keras`` files of this folder with an older Keras 3 (run once, by hand).

    pip install --target /tmp/keras-X --no-deps keras==X
    PYTHONPATH=/tmp/keras-X python tests/data/old_keras/make_files.py

For the installed Keras version X, a small CNN is trained two epochs with Adam and with
RMSprop (momentum) and saved with its optimizer state (``keras_X_<optimizer>.keras``); then
Keras continues one more epoch, and the data, the predictions before and the weights after
that epoch go to ``keras_X_<optimizer>.npz``.  ``tests/test_old_keras_files.py`` checks
that minicnn reads each file and continues to the same weights.
"""
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
import keras  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OPTIMIZERS = {"adam": lambda: keras.optimizers.Adam(1e-2),
              "rmsprop": lambda: keras.optimizers.RMSprop(1e-2, momentum=0.5)}


def model():
    return keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(3, 3, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])


def main():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 6, 6, 1)).astype("float32"), np.arange(16) % 2
    for name, optimizer in OPTIMIZERS.items():
        keras.utils.set_random_seed(0)
        m = model()
        m.compile(optimizer(), "sparse_categorical_crossentropy")
        m.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        stem = os.path.join(HERE, f"keras_{keras.__version__}_{name}")
        m.save(stem + ".keras")
        predictions = m.predict(x, verbose=0)
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        np.savez(stem + ".npz", x=x, y=y, predictions=predictions, *m.get_weights())


if __name__ == "__main__":
    main()
