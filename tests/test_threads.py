"""threads.py: the prompt-sleep settings take effect whichever of NumPy and minicnn is
imported first, and OpenBLAS still computes correctly after its threads are restarted."""
import json
import os
import subprocess
import sys

from minicnn import threads as minicnn_threads

REPORT = "import json, minicnn; print(json.dumps(minicnn.threads.thread_settings()))"


def run_python(code, **env):
    environ = {k: v for k, v in os.environ.items() if k not in minicnn_threads.PROMPT_SLEEP}
    result = subprocess.run([sys.executable, "-c", code], env={**environ, **env},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_numpy_first_restarts_its_openblas_and_gemms_stay_correct():
    code = """
import json, numpy as np
a = np.random.default_rng(0).standard_normal((700, 900)).astype(np.float32)
a @ a.T                                              # OpenBLAS's threads are up (default timeout)
import minicnn                                       # restarts them
loaded = minicnn.threads.loaded_openblas_libraries()
b = np.random.default_rng(1).standard_normal((900, 500)).astype(np.float32)
error = float(np.abs(a @ b - (a.astype(np.float64) @ b.astype(np.float64))).max())
print(json.dumps({"loaded": loaded, "settings": minicnn.threads.thread_settings(), "error": error}))
"""
    report = run_python(code)
    assert report["loaded"], "no OpenBLAS found in /proc/self/maps (PyPI's NumPy wheels bundle one)"
    assert report["settings"]["openblas_threads_restarted"] == [os.path.basename(p) for p in report["loaded"]]
    assert report["settings"]["OPENBLAS_THREAD_TIMEOUT"] == "4"
    assert report["error"] < 1e-3                      # the restarted threads compute the same GEMM


def test_minicnn_first_sets_the_variables_and_restarts_nothing():
    settings = run_python(REPORT)
    assert settings["OPENBLAS_THREAD_TIMEOUT"] == "4" and settings["OMP_WAIT_POLICY"] == "PASSIVE"
    assert settings["GOMP_SPINCOUNT"] == "30000"
    assert settings["openblas_threads_restarted"] == []


def test_the_users_own_settings_are_kept():
    settings = run_python(REPORT, OPENBLAS_THREAD_TIMEOUT="12", OMP_WAIT_POLICY="ACTIVE")
    assert settings["OPENBLAS_THREAD_TIMEOUT"] == "12" and settings["OMP_WAIT_POLICY"] == "ACTIVE"
    assert settings["GOMP_SPINCOUNT"] is None       # (libgomp would read it over the user's ACTIVE)


def test_a_users_spin_count_keeps_the_wait_policy_theirs_too():
    settings = run_python(REPORT, GOMP_SPINCOUNT="0")
    assert settings["GOMP_SPINCOUNT"] == "0" and settings["OMP_WAIT_POLICY"] is None
    assert settings["OPENBLAS_THREAD_TIMEOUT"] == "4"


def test_the_import_side_effect_can_be_switched_off():
    code = "import os, minicnn; print(os.environ.get('OMP_WAIT_POLICY'), minicnn.threads.restarted_openblas)"
    env = {k: v for k, v in os.environ.items() if k not in minicnn_threads.PROMPT_SLEEP}
    off = subprocess.run([sys.executable, "-c", "import numpy; " + code], capture_output=True, text=True,
                         env={**env, "MINICNN_SHARE_CORES": "0"}, check=True)
    on = subprocess.run([sys.executable, "-c", "import numpy; " + code], capture_output=True, text=True,
                        env=env, check=True)
    assert off.stdout.split()[0] == "None" and off.stdout.strip().endswith("[]")
    assert on.stdout.split()[0] == "PASSIVE"
