"""Shared fixtures: the kernel families every op test runs on, hypothesis settings,
and the data folder (``MINICNN_DATA``, defaulting to ../shared/datasets)."""
import os
import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minicnn as mc
from minicnn import backend

settings.register_profile("ci", max_examples=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The suite runs on the Numba kernels unless a test picks others ('auto', the default, would
# run NumPy while a background process compiles; subprocesses inherit the choice).
os.environ.setdefault("MINICNN_KERNELS", "numba")
backend.set_kernels(os.environ["MINICNN_KERNELS"])

# TensorFlow, the reference, on its plain kernels (see tf_helpers.py).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

REPO = pathlib.Path(__file__).resolve().parents[1]
_default_data = REPO.parent / "shared" / "datasets"
if "MINICNN_DATA" not in os.environ and _default_data.is_dir():
    os.environ["MINICNN_DATA"] = str(_default_data)

BACKENDS = ["numpy", "numba", pytest.param("gpu", marks=pytest.mark.gpu)]


def pytest_configure(config):
    # CuPy's own warnings (a CUDA path it guesses, a transfer it cannot make asynchronous)
    # are shown, not raised: the GPU tests judge minicnn's results, not the machine's setup
    config.addinivalue_line("filterwarnings", "default::Warning:cupy.*")
    config.addinivalue_line("filterwarnings", "default::Warning:cupyx.*")


class Backend:
    """What the ``kernels`` fixture yields: called on a host array, it returns the array on
    this backend's device; ``device`` is where a model runs it (``model.to(device)``)."""

    def __init__(self, name, move, device):
        self.name, self.move, self.device = name, move, device

    def __call__(self, array):
        return self.move(array)

    def __repr__(self):
        return f"<backend {self.name}>"


@pytest.fixture(params=BACKENDS)
def kernels(request):
    """Run the test body once per backend: NumPy kernels, Numba kernels, CUDA (skipped
    cleanly, with ``backend.gpu_status()``'s reason, when no GPU).  Yields a ``Backend``:
    a function that moves a host array to that backend, with the device a model takes
    there (ops, layers, losses, optimizers and models all run on it)."""
    if request.param == "gpu":
        usable, reason = backend.gpu_status()
        if not usable:
            pytest.skip(reason)
        cupy = backend.cupy_or_none()
        with mc.use_kernels("numpy"):
            yield Backend("gpu", cupy.asarray, "gpu")
        return
    with mc.use_kernels(request.param):
        yield Backend(request.param, np.asarray, "cpu")


@pytest.fixture(params=["numpy", "numba"])
def cpu_kernels(request):
    """The CPU kernel families only (central differences perturb host arrays in place)."""
    with mc.use_kernels(request.param):
        yield request.param


@pytest.fixture
def float64():
    previous = mc.backend.floatx()
    mc.set_floatx("float64")
    yield
    mc.set_floatx(previous)


def distinct_values(rng, shape, dtype=np.float64):
    """A shuffled linspace: all values distinct and >= 0.01 apart (no max-pool ties,
    no ReLU kinks within a finite-difference step)."""
    size = int(np.prod(shape))
    values = np.linspace(-1, 1, size) + 0.5 / max(size, 1)
    return rng.permutation(values).reshape(shape).astype(dtype)


def record_calls(monkeypatch, module, names):
    """Replace ``module``'s functions ``names`` by wrappers that append their name to the
    returned list, then call them."""
    calls = []
    for name in names:
        def spy(*args, _function=getattr(module, name), _name=name, **kwargs):
            calls.append(_name)
            return _function(*args, **kwargs)
        monkeypatch.setattr(module, name, spy)
    return calls


@pytest.fixture(autouse=True)
def fresh_layer_names():
    """Layer names are counted per session, as in Keras: each test starts afresh, and in the
    default float type whatever the test before set (a failing one may not have set it back)."""
    backend.clear_session()
    floatx = backend.floatx()
    yield
    backend.set_floatx(floatx)


@pytest.fixture(params=["avx2", "avx512"])
def tile_set(request):
    """Run the test body on each vector ISA's register tiles (``kernels/register_tiles.py``):
    both compute the same sums on any x86 CPU, so both are checked on whichever runs the tests."""
    from minicnn.kernels.register_tiles import use_tile_set
    with use_tile_set(request.param):
        yield request.param
