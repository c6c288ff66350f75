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
