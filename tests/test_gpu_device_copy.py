"""Batches reach the GPU through page-locked staging buffers (``device_copy.py``): the
buffer logic on a stand-in for CuPy whose copies land only when their event is waited
for, as asynchronous copies do; and, on a GPU, fit moving its batches that way."""
import numpy as np
import pytest

from minicnn import architectures, backend, device_copy

pytestmark = pytest.mark.gpu       # the GPU backend's file: `pytest -m gpu` runs it whole
needs_gpu = pytest.mark.skipif(not backend.gpu_status()[0], reason=backend.gpu_status()[1])


class FakeStream:
    """Queues copies; a copy runs only when an event recorded after it is waited for."""

    def __init__(self):
        self.queued, self.count = [], 0

    def copy(self, device, host):
        self.queued.append((device, host, self.count))
        self.count += 1

    def record(self):
        return FakeEvent(self, self.count)

    def run_until(self, count):
        while self.queued and self.queued[0][2] < count:
            device, host, _ = self.queued.pop(0)
            np.copyto(device, host)        # reads the staging buffer now, not when queued


class FakeEvent:
    def __init__(self, stream, count):
        self.stream, self.count = stream, count

    def synchronize(self):
        self.stream.run_until(self.count)


class FakeDeviceArray(np.ndarray):
    def set(self, host, stream):
        stream.copy(self, host)


class FakePinned(bytearray):
    def size(self):
        return len(self)


class FakeCupy:
    """The few CuPy calls ``PinnedStaging`` makes, with NumPy arrays as the 'device'."""

    def __init__(self):
        self.stream, self.allocations = FakeStream(), []
        self.cuda = self

    def get_current_stream(self):
        return self.stream

    def alloc_pinned_memory(self, nbytes):
        self.allocations.append(nbytes)
        return FakePinned(nbytes)

    def empty(self, shape, dtype):
        return np.full(shape, np.nan, dtype).view(FakeDeviceArray)


def test_a_staging_buffer_is_reused_only_after_its_copy_has_landed():
    """Every batch arrives intact although the copies are still queued when the next
    batches are staged; and in steady state no page-locked memory is allocated."""
    fake = FakeCupy()
    staging = device_copy.PinnedStaging(fake, slots=2)
    batches = [np.full((3, 4), i, np.float32) for i in range(7)]
    arrived = [staging.to_device(b) for b in batches]
    fake.stream.run_until(fake.stream.count)                     # the stream drains
    for batch, device in zip(batches, arrived):
        np.testing.assert_array_equal(np.asarray(device), batch)
    assert fake.allocations == [48, 48]                          # one buffer per slot, reused


def test_rows_are_gathered_into_the_staging_buffer_and_buffers_grow_on_demand():
    fake = FakeCupy()
    staging = device_copy.PinnedStaging(fake, slots=1)
    x = np.arange(60, dtype=np.float64).reshape(10, 3, 2)
    rows = np.array([7, 0, 3])
    shuffled = staging.to_device(x, rows)
    run = staging.to_device(x, slice(2, 9))                      # a larger batch: the slot grows
    single = staging.to_device(x[:1])
    fake.stream.run_until(fake.stream.count)
    np.testing.assert_array_equal(np.asarray(shuffled), x[rows])
    np.testing.assert_array_equal(np.asarray(run), x[2:9])
    np.testing.assert_array_equal(np.asarray(single), x[:1])
    assert fake.allocations == [3 * 6 * 8, 7 * 6 * 8]


def test_on_the_cpu_a_model_gathers_its_batches_on_the_host():
    model = architectures.face_fcnn((4, 4, 1))
    x = np.arange(32, dtype=np.float32).reshape(2, 4, 4, 1)
    assert model.to_device(x) is x
    np.testing.assert_array_equal(model.to_device(x, np.array([1, 0])), x[::-1])
    assert np.shares_memory(model.to_device(x, slice(0, 1)), x)     # a run of rows stays a view


@needs_gpu
def test_fit_on_the_gpu_moves_its_batches_through_the_staging_buffers(monkeypatch):
    cupy = backend.cupy_or_none()
    calls = []
    original = device_copy.PinnedStaging.to_device
    monkeypatch.setattr(device_copy.PinnedStaging, "to_device",
                        lambda self, a, rows=None: calls.append(rows) or original(self, a, rows))
    x = np.random.default_rng(0).uniform(0, 1, (20, 16, 16, 1)).astype(np.float32)
    y = np.arange(20) % 2
    moved = device_copy.to_gpu(x, np.array([3, 1]))
    assert isinstance(moved, cupy.ndarray)
    np.testing.assert_array_equal(moved.get(), x[[3, 1]])
    model = architectures.face_cnn((16, 16, 1))
    model.compile("adam", "binary_crossentropy")
    model.to("gpu").fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert len(calls) == 1 + 2 * 3                               # x and y of 3 batches, after the probe above
