"""minicnn warmup compiles a seed model's kernels into the cache, so the next process
compiles nothing; by default a first run uses the NumPy kernels while the warm-up runs behind it."""
import os
import subprocess
import sys
from pathlib import Path

from minicnn import backend, threads, warmup
from minicnn.kernels import jit

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
    assert "compiling" not in run("import minicnn; minicnn.set_kernels('numba')\n" + FIRST_STEP, tmp_path)


def test_auto_runs_numpy_while_the_warm_up_compiles_then_numba(monkeypatch):
    """The default kernel choice: NumPy and a background compile while the cache is cold,
    Numba once the warm-up is done; an explicit choice is never swapped."""
    started = []
    monkeypatch.setattr(warmup, "is_warm", lambda models=None: False)
    monkeypatch.setattr(warmup, "start_in_background", lambda: started.append(True))
    monkeypatch.setattr(backend, "_auto", {"family": None, "checked": -1e9})
    blas_threads = threads.set_openblas_threads(2)
    with backend.use_kernels("auto"):
        assert backend.get_kernels() == "numpy" and backend.get_kernels() == "numpy" and started == [True]
        assert threads.set_openblas_threads(1) == [1] * len(blas_threads)   # one BLAS thread beside the compile
        monkeypatch.setattr(warmup, "is_warm", lambda models=None: True)
        assert backend.get_kernels() == "numpy"              # rechecked at most every AUTO_RECHECK_SECONDS
        monkeypatch.setattr(backend, "AUTO_RECHECK_SECONDS", 0.0)
        assert backend.get_kernels() == "numba" and started == [True]
        assert threads.set_openblas_threads(2) == [2] * len(blas_threads)   # given back once warm
        monkeypatch.setattr(warmup, "is_warm", lambda models=None: False)
        assert backend.get_kernels() == "numba"              # a cache does not go cold within a run
    monkeypatch.setattr(backend, "_auto", {"family": None, "checked": -1e9})
    with backend.use_kernels("numba"):
        assert backend.get_kernels() == "numba" and started == [True]
    monkeypatch.setattr(backend, "_auto", {"family": None, "checked": -1e9})
    with backend.use_kernels("auto"):
        monkeypatch.setattr(warmup, "is_warm", lambda models=None: False)
        assert backend.get_kernels() == "numpy"
    assert threads.set_openblas_threads(2) == [2] * len(blas_threads)       # and when 'auto' is left
    threads.set_openblas_threads(max(blas_threads, default=1))


def test_the_block_warm_up_compiles_the_batchnorm_and_depthwise_kernels(tmp_path):
    """``minicnn warmup residual_separable_blocks`` compiles BN's and the depthwise
    convolution's Numba kernels; a training step of that model, or of the small ResNet of
    ``examples/resnet.py`` (its strided stages and 32- and 64-channel convolutions), in the
    next process compiles nothing.  ``minicnn warmup`` alone warms every model."""
    stderr = run("from minicnn import warmup\nwarmup.main(['residual_separable_blocks'])", tmp_path)
    assert "_normalize float32" in stderr and "depthwise_forward_rows float32" in stderr
    step = ("import numpy as np, minicnn\nfrom minicnn import architectures\nminicnn.set_kernels('numba')\n"
            "model = architectures.residual_separable_blocks()\nmodel.compile('adam', 'sparse_categorical_crossentropy')\n"
            "model.train_on_batch(np.random.default_rng(0).uniform(0, 1, (64, 32, 32, 3)).astype(np.float32),"
            " np.arange(64) % 10)")
    assert "compiling" not in run(step, tmp_path)
    resnet_step = ("import sys\nsys.path.insert(0, 'examples')\nimport numpy as np, minicnn, resnet\n"
                   "minicnn.set_kernels('numba')\nmodel = resnet.small_resnet(minicnn, (32, 32, 3))\n"
                   "model.compile(minicnn.optimizers.SGD(0.02, momentum=0.9), 'sparse_categorical_crossentropy')\n"
                   "model.train_on_batch(np.random.default_rng(0).uniform(0, 1, (64, 32, 32, 3)).astype(np.float32),"
                   " np.arange(64) % 10)")
    assert "compiling" not in run(resnet_step, tmp_path)
    assert set(warmup.check_models(())) == set(warmup.SEED_BATCHES) | {"residual_separable_blocks"}


def test_the_background_warm_up_of_a_first_run_asks_for_the_seed_models_only(monkeypatch, tmp_path):
    """The next chapter's blocks are compiled on request (``minicnn warmup``), not behind a
    first run of the seed tutorials, which need none of their kernels."""
    launched = []

    class Launched:
        pid = 2**22 + 1                 # (above Linux's largest pid: no process has it)

    monkeypatch.setattr(warmup.subprocess, "Popen", lambda args, **kwargs: launched.append(args) or Launched())
    monkeypatch.setattr(jit, "cache_dir", lambda: str(tmp_path))
    warmup.start_in_background()
    assert launched[0][-len(warmup.SEED_BATCHES):] == list(warmup.SEED_BATCHES)
    assert "residual_separable_blocks" not in launched[0]
