"""The one-pass Numba updates of RMSprop and Adam equal the NumPy expressions bit for bit
(Keras's formulas; ``tests/test_model_keras_parity.py`` trains against Keras itself)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as mc
from minicnn.kernels import numba_optimizers

OPTIMIZERS = {
    "rmsprop": (lambda lr, b: mc.optimizers.RMSprop(lr, rho=b), "rmsprop_update"),
    "adam": (lambda lr, b: mc.optimizers.Adam(lr, beta_1=b), "adam_update"),
}


def train(kernels, make, shape, dtype, seed, order="C", steps=3):
    """The parameter after ``steps`` updates with gradients drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    params = {"kernel": np.asarray(rng.standard_normal(shape), dtype=dtype, order=order)}
    with mc.use_kernels(kernels):
        optimizer = make()
        for _ in range(steps):
            optimizer.apply([(("layer", "kernel"), params, "kernel", rng.standard_normal(shape).astype(dtype))])
    return params["kernel"]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple),
       dtype=st.sampled_from(["float32", "float64"]), lr=st.floats(1e-4, 0.1), beta=st.floats(0.5, 0.99),
       seed=st.integers(0, 2**16))
def test_one_pass_update_equals_the_numpy_expressions(name, shape, dtype, lr, beta, seed, monkeypatch):
    make_optimizer, kernel_name = OPTIMIZERS[name]
    monkeypatch.setattr(mc.optimizers, "ONE_PASS_FROM", 1)      # every size (by default: large parameters)
    calls = []
    kernel = getattr(numba_optimizers, kernel_name)
    monkeypatch.setattr(numba_optimizers, kernel_name, lambda *args: calls.append(1) or kernel(*args))
    expected = train("numpy", lambda: make_optimizer(lr, beta), shape, dtype, seed)
    assert calls == []
    np.testing.assert_array_equal(train("numba", lambda: make_optimizer(lr, beta), shape, dtype, seed), expected)
    assert len(calls) == 3


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_non_contiguous_parameter_is_updated_by_the_numpy_expressions(name, monkeypatch):
    monkeypatch.setattr(mc.optimizers, "ONE_PASS_FROM", 1)
    make_optimizer = OPTIMIZERS[name][0]
    fortran = train("numba", lambda: make_optimizer(0.01, 0.9), (4, 5), "float32", 0, order="F")
    np.testing.assert_array_equal(fortran, train("numpy", lambda: make_optimizer(0.01, 0.9), (4, 5), "float32", 0))
