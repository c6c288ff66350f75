"""The GPU backend: kernel sources compile with nvcc and ship in the package; device
errors are clear; and, on a real GPU, training matches the CPU and memory stays flat.
(The op- and layer-level GPU cases run through the ``kernels`` fixture in the other tests.)"""
import shutil
import subprocess
from importlib import resources

import numpy as np
import pytest

import minicnn as mc
from minicnn import architectures, backend

pytestmark = pytest.mark.gpu       # the GPU backend's file: `pytest -m gpu` (benchmarks/gpu_check.sh) runs it whole

KERNELS = ["im2col", "col2im", "maxpool", "bias_act", "softmax_xent"]
needs_gpu = pytest.mark.skipif(not backend.gpu_status()[0], reason=backend.gpu_status()[1])


def test_kernel_sources_ship_inside_the_package():
    shipped = {p.name for p in resources.files("minicnn._kernels").iterdir()}
    assert {f"{k}.cu" for k in KERNELS} | {"nhwc.cuh"} <= shipped
    for name in KERNELS:
        text = (resources.files("minicnn._kernels") / f"{name}.cu").read_text()
        assert "Thread -> element" in text or "thread -> element" in text   # the mapping is documented


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", KERNELS)
def test_kernels_compile_with_nvcc(name, arch, tmp_path):
    path = resources.files("minicnn._kernels") / f"{name}.cu"
    done = subprocess.run(["nvcc", f"-arch={arch}", "-cubin", "-o", str(tmp_path / "k.cubin"), str(path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_asking_for_the_gpu_says_what_is_missing():
    usable, reason = backend.gpu_status()
    model = architectures.face_cnn((16, 16, 1))
    if usable:
        assert model.to("gpu").device == "gpu"
        model.to("cpu")
    else:
        with pytest.raises(RuntimeError, match="GPU requested but unavailable: .*(CuPy is not installed|no CUDA GPU)"):
            model.to("gpu")
    with pytest.raises(ValueError, match="device must be 'cpu' or 'gpu', received 'tpu'"):
        model.to("tpu")


@needs_gpu
def test_mixing_devices_raises():
    model = architectures.face_cnn((16, 16, 1)).to("gpu")
    with pytest.raises(ValueError, match="weights are on the GPU but the input is a NumPy"):
        model.layers[0].forward(np.zeros((1, 16, 16, 1), np.float32))


@needs_gpu
def test_gpu_training_follows_the_cpu_loss_curve():
    from minicnn.datasets import embedded
    x, y = embedded.load_mnist_digits()
    x, y = x[:1024, ..., None].astype(np.float32) / 255, y[:1024].astype(np.int64)
    curves = {}
    for device in ("cpu", "gpu"):
        mc.set_seed(0)
        model = architectures.mnist_deconstructed()
        model.layers[-2].rate = 0.0                              # dropout masks differ per device
        model.compile("adam", "sparse_categorical_crossentropy")
        model.to(device)
        curves[device] = model.fit(x, y, batch_size=256, epochs=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(curves["gpu"], curves["cpu"], rtol=1e-3)


@needs_gpu
def test_gpu_memory_pool_is_flat_over_1000_steps():
    cupy = backend.cupy_or_none()
    mc.set_seed(0)
    model = architectures.mnist_deconstructed()
    model.compile("adam", "categorical_crossentropy")
    model.to("gpu")
    x = cupy.asarray(np.random.default_rng(0).uniform(0, 1, (64, 28, 28, 1)).astype(np.float32))
    y = cupy.asarray(np.eye(10, dtype=np.float32)[np.arange(64) % 10])
    pool = cupy.get_default_memory_pool()
    for _ in range(50):
        model.train_step(x, y)
    used = pool.used_bytes()
    for _ in range(1000):
        model.train_step(x, y)
    assert pool.used_bytes() <= used * 1.01
