"""kernels/jit.py: minicnn's kernels compile with the SLP vectorizer on, and only they do."""
import numba
import numpy as np
from numba import prange
from numba.core.codegen import JITCPUCodegen

from minicnn.kernels.jit import kernel


def test_a_kernel_compiles_with_slp_on_and_leaves_the_setting_as_it_was(monkeypatch, tmp_path):
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))     # a fresh cache: it compiles here
    monkeypatch.setattr(numba.config, "SLP_VECTORIZE", 0)
    seen = []
    build = JITCPUCodegen._pass_builder

    def spy(self, **kwargs):
        seen.append(kwargs.get("slp_vectorize", numba.config.SLP_VECTORIZE))
        return build(self, **kwargs)
    monkeypatch.setattr(JITCPUCodegen, "_pass_builder", spy)

    @kernel()
    def add_one(x):
        for i in prange(x.shape[0]):
            x[i] += 1

    x = np.zeros(5)
    add_one(x)
    np.testing.assert_array_equal(x, np.ones(5))
    assert 1 in seen                                   # the full optimisation passes ran with SLP on
    assert numba.config.SLP_VECTORIZE == 0             # and the global setting is back


# -- where the compiled kernels are kept ---------------------------------------------------
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY_KERNEL = '''
import numpy as np
from numba import prange
from minicnn.kernels.jit import kernel, cache_dir

@kernel()
def double(x):
    for i in prange(x.shape[0]):
        x[i] *= 2

x = np.ones(3)
double(x)
assert x.tolist() == [2, 2, 2]
print(cache_dir())
'''


def run_tiny_kernel(folder, kernel_source=TINY_KERNEL, **env_vars):
    """Run a module holding one minicnn kernel (``kernel_source``) in a fresh process; (stdout, stderr)."""
    (folder / "tiny_kernel.py").write_text(kernel_source)
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "MINICNN_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(env_vars, PYTHONPATH=os.pathsep.join([str(folder), str(REPO)]))
    done = subprocess.run([sys.executable, "-c", "import tiny_kernel"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr


def cached_files(folder):
    return sorted(p.name for p in Path(folder).rglob("*") if p.suffix in (".nbi", ".nbc"))


@pytest.mark.parametrize("variable, expected", [
    ("XDG_CACHE_HOME", "{root}/minicnn/numba"),
    ("MINICNN_CACHE_DIR", "{root}/numba"),
    ("HOME", "{root}/.cache/minicnn/numba"),
])
def test_kernels_are_cached_in_the_user_cache_folder_not_beside_the_source(tmp_path, variable, expected):
    source, root = tmp_path / "src", tmp_path / "cache"
    source.mkdir()
    folder, stderr = run_tiny_kernel(source, **{variable: str(root)})
    assert folder == expected.format(root=root)
    assert "compiling CPU kernels (first run only" in stderr and "double float64" in stderr
    assert any(name.startswith("tiny_kernel.double") for name in cached_files(folder))
    assert cached_files(source) == []                      # nothing written beside the source
    _, stderr = run_tiny_kernel(source, **{variable: str(root)})
    assert "compiling" not in stderr                       # the second process loads it


def test_an_explicit_numba_cache_dir_wins(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    folder, _ = run_tiny_kernel(source, NUMBA_CACHE_DIR=str(tmp_path / "numba"),
                                XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert folder == str(tmp_path / "numba")
    assert cached_files(tmp_path / "numba") and not (tmp_path / "xdg").exists()


def test_a_cache_folder_that_cannot_be_made_still_runs_the_kernels(tmp_path):
    source, a_file = tmp_path / "src", tmp_path / "a_file"
    source.mkdir()
    a_file.write_text("")                                  # no folder can be made under a file, even by root
    _, stderr = run_tiny_kernel(source, XDG_CACHE_HOME=str(a_file))
    assert "in every run" in stderr and "double float64" in stderr and cached_files(source) == []


def test_a_cache_entry_is_stamped_with_every_kernels_module_not_its_own_file_alone():
    """A kernel inlines helpers from other modules (the register tiles' products into the
    implicit GEMM): an edit to one of them must make its cache entry stale."""
    from minicnn.kernels import implicit_gemm, jit
    kernel_function = implicit_gemm._implicit_gemm_kernel(4, 16).py_func
    _, stamps = jit._UserCacheLocator(kernel_function, implicit_gemm.__file__).get_source_stamp()
    modules = Path(jit.__file__).parent
    assert [name for name, *_ in stamps] == sorted(p.name for p in modules.glob("*.py"))
    assert ("register_tiles.py", os.stat(modules / "register_tiles.py").st_mtime,
            os.stat(modules / "register_tiles.py").st_size) in stamps


def test_an_edited_kernel_outside_the_package_compiles_again(tmp_path):
    source, root = tmp_path / "src", tmp_path / "cache"
    source.mkdir()
    run_tiny_kernel(source, XDG_CACHE_HOME=str(root))
    tripled = TINY_KERNEL.replace("x[i] *= 2", "x[i] *= 3").replace("[2, 2, 2]", "[3, 3, 3]")
    _, stderr = run_tiny_kernel(source, kernel_source=tripled, XDG_CACHE_HOME=str(root))
    assert "compiling" in stderr                           # not the cached doubling (the assert would fail)
