"""minicnn warmup compiles a seed model's kernels into the cache, so the next process
compiles nothing; a first demo runs on the NumPy kernels while the warm-up runs behind it."""
import os
import subprocess
import sys
from pathlib import Path

from minicnn import backend, demo, warmup

REPO = Path(__file__).resolve().parents[1]
FIRST_STEP = """
import numpy as np
from minicnn import architectures
model = architectures.face_fcnn()
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
model.fit(np.random.default_rng(0).uniform(0, 1, (5, 64, 64, 1)).astype(np.float32), np.ones((5, 1), np.float32),
          batch_size=5, epochs=1, verbose=0)
"""


def run(code, cache):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "MINICNN_KERNELS")}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**env, "MINICNN_CACHE_DIR": str(cache)})
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_after_a_warm_up_the_next_process_compiles_nothing(tmp_path):
    stderr = run("from minicnn import warmup\nassert not warmup.is_warm(['face_fcnn'])\nwarmup.main(['face_fcnn'])\n"
                 "assert warmup.is_warm(['face_fcnn']) and not warmup.is_warm(['face_cnn'])", tmp_path)
    assert "compiling CPU kernels (first run only" in stderr and " float32 … " in stderr
    assert "compiling" not in run(FIRST_STEP, tmp_path)


def test_a_first_demo_runs_on_numpy_while_the_warm_up_starts_behind_it(monkeypatch):
    started, used = [], []
    monkeypatch.setattr(warmup, "is_warm", lambda models: False)
    monkeypatch.setattr(warmup, "start_in_background", lambda: started.append(True))
    monkeypatch.setattr(demo, "_run", lambda *args: used.append(backend.get_kernels()))
    with backend.use_kernels("numba"):
        demo.run("unused")
        assert started == [True] and used == ["numpy"] and backend.get_kernels() == "numba"
        monkeypatch.setattr(warmup, "is_warm", lambda models: True)
        demo.run("unused")
        assert started == [True] and used == ["numpy", "numba"]
