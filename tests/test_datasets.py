"""Loaders read the real formats from MINICNN_DATA (../shared/datasets in CI), verify
checksums, download atomically, and fail clearly on missing or corrupt files."""
import gzip
import hashlib
import io
import os
import pathlib
import pickle
import shutil
import struct
import tarfile

import numpy as np
import pytest
import scipy.io

from minicnn.datasets import cifar10, embedded, fashion_mnist, fetch_olivetti_faces, files, mnist
from minicnn.datasets import image_dataset_from_directory
from minicnn.datasets.idx import read_idx

DATA = os.environ["MINICNN_DATA"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))


def test_fashion_mnist_has_keras_shapes_and_dtypes():
    (x, y), (xt, yt) = fashion_mnist.load_data()
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (60000,) and set(np.unique(y)) == set(range(10))
    assert np.bincount(y).tolist() == [6000] * 10       # Fashion-MNIST is balanced
    assert 60 < x.mean() < 80                             # real images, not zeros


def test_mnist_without_training_images_says_so_plainly():
    with pytest.raises(mnist.MNISTTrainingImagesMissing, match="MNIST training images.*not available.*test split"):
        mnist.load_data(download=False)
    x, y = mnist.load_test(download=False)
    assert x.shape == (10000, 28, 28) and y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@pytest.mark.parametrize("shuffle,seed", [(False, 0), (True, 0), (True, 42)])
def test_olivetti_equals_scikit_learns_procedure(shuffle, seed):
    faces = fetch_olivetti_faces(shuffle=shuffle, random_state=seed)
    raw = scipy.io.loadmat(os.path.join(DATA, "olivetti", "olivettifaces.mat"))["faces"].T.copy()
    expected = np.float32(raw)
    expected = expected - expected.min()
    expected /= expected.max()
    expected = expected.reshape((400, 64, 64)).transpose(0, 2, 1)
    target = np.array([i // 10 for i in range(400)])
    if shuffle:
        order = np.random.RandomState(seed).permutation(400)
        expected, target = expected[order], target[order]
    np.testing.assert_array_equal(faces.images, expected)
    np.testing.assert_array_equal(faces.data, expected.reshape(400, -1))
    np.testing.assert_array_equal(faces.target, target)
    assert faces.data.dtype == np.float32


def test_embedded_data_equals_a_fresh_derivation():
    derived = embedded.derive()
    x, y = embedded.load_mnist_digits()
    np.testing.assert_array_equal(x, derived["mnist_digits.npz"]["x"])
    np.testing.assert_array_equal(y, derived["mnist_digits.npz"]["y"])
    np.testing.assert_array_equal(embedded.load_olivetti().images, fetch_olivetti_faces().images)


def write_idx(path, array, magic=None, gz=True):
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    if magic is not None:
        header = struct.pack(">I", magic) + header[4:]
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
        f.write(data)
    return data


def test_idx_corruption_is_reported_with_the_file_name(tmp_path):
    good = tmp_path / "good.gz"
    write_idx(good, np.arange(24).reshape(2, 3, 4))
    np.testing.assert_array_equal(read_idx(good, 3), np.arange(24).reshape(2, 3, 4))
    bad_magic = tmp_path / "magic.gz"
    write_idx(bad_magic, np.zeros((2, 3, 4)), magic=0x00000A03)
    with pytest.raises(ValueError, match=r"magic.gz: wrong IDX magic number: expected 0x00000803"):
        read_idx(bad_magic, 3)
    short = tmp_path / "short.gz"
    data = struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 5, 3, 4) + bytes(10)
    with gzip.open(short, "wb") as f:
        f.write(data)
    with pytest.raises(ValueError, match="short.gz: size mismatch"):
        read_idx(short, 3)
    truncated = tmp_path / "trunc.gz"
    truncated.write_bytes(good.read_bytes()[:-12])
    with pytest.raises(ValueError, match="trunc.gz: not a complete gzip file"):
        read_idx(truncated, 3)


def test_checksum_mismatch_names_the_file(tmp_path):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    src = os.path.join(DATA, "mnist", "t10k-labels-idx1-ubyte.gz")
    corrupt = bytearray(pathlib.Path(src).read_bytes())
    corrupt[100] ^= 0xFF
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(corrupt))
    shutil.copy(os.path.join(DATA, "mnist", "t10k-images-idx3-ubyte.gz"), folder)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz: md5 checksum mismatch: expected ec29112d"):
        mnist.load_test(data_dir=tmp_path / "data", download=False)


def test_offline_and_missing_names_file_checksum_and_places(tmp_path, monkeypatch):
    monkeypatch.delenv("MINICNN_DATA")

    def offline(*args, **kwargs):
        raise OSError("network unreachable")
    monkeypatch.setattr(files.urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError) as info:
        cifar10.load_data(data_dir=tmp_path)
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message and "md5:c58f30108f718f92721af3b95e74349a" in message
    assert str(tmp_path) in message and "network unreachable" in message


def test_download_verifies_and_renames_atomically(tmp_path, monkeypatch):
    monkeypatch.delenv("MINICNN_DATA")
    src = os.path.join(DATA, "mnist", "t10k-labels-idx1-ubyte.gz")
    url = "file://" + os.path.abspath(src)
    remote = files.RemoteFile("mnist", "t10k-labels-idx1-ubyte.gz", "md5:ec29112dd5afa0611ce80d1b7f02629c", (url,))
    path = files.fetch(remote, data_dir=tmp_path / "empty")
    assert path == files.cache_dir() / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert path.read_bytes() == pathlib.Path(src).read_bytes()
    wrong = files.RemoteFile("other", "t10k-labels-idx1-ubyte.gz", "md5:" + "0" * 32, (url,))
    with pytest.raises(ValueError, match="checksum mismatch"):
        files.fetch(wrong, data_dir=tmp_path / "empty")
    assert not (files.cache_dir() / "other").exists() or not any((files.cache_dir() / "other").iterdir())


def make_cifar_archive(path, n=4, payload=None):
    """A small archive in the real CIFAR-10 python format (pickled dicts of bytes keys)."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for name in cifar10.TRAIN + cifar10.TEST:
            batch = payload or {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                b"labels": rng.integers(0, 10, n).tolist(), b"batch_label": b"x"}
            raw = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def test_cifar10_reads_the_python_batches(tmp_path, monkeypatch):
    archive = tmp_path / "cifar-10-python.tar.gz"
    make_cifar_archive(archive)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(cifar10, "ARCHIVE", cifar10.ARCHIVE.__class__("cifar10", archive.name, f"md5:{md5}"))
    (x, y), (xt, yt) = cifar10.load_data(data_dir=tmp_path)
    assert x.shape == (20, 32, 32, 3) and y.shape == (20, 1) and xt.shape == (4, 32, 32, 3)
    assert x.dtype == y.dtype == np.uint8
    with tarfile.open(archive) as tar:
        raw = pickle.loads(tar.extractfile(cifar10.TRAIN[0]).read())
    np.testing.assert_array_equal(x[0, :, :, 1], raw[b"data"][0, 1024:2048].reshape(32, 32))   # green plane


def test_cifar10_refuses_pickles_that_run_code():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))
    with pytest.raises(ValueError, match="forbidden global"):
        cifar10.read_batch(pickle.dumps({b"data": Evil()}), "evil")


def test_image_dataset_from_directory(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for cls, value in (("cats", 40), ("dogs", 200)):
        (tmp_path / cls).mkdir()
        for i in range(5):
            pixels = np.clip(rng.normal(value, 5, (20, 30, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
    train, val = image_dataset_from_directory(tmp_path, label_mode="binary", image_size=(10, 15), batch_size=4,
                                              seed=1, validation_split=0.2, subset="both")
    assert train.class_names == ["cats", "dogs"] and len(train.file_paths) == 8 and len(val.file_paths) == 2
    assert not set(train.file_paths) & set(val.file_paths)
    xb, yb = train[0]
    assert xb.shape == (4, 10, 15, 3) and xb.dtype == np.float32 and yb.shape == (4, 1)
    np.testing.assert_array_equal(yb[:, 0], xb.mean(axis=(1, 2, 3)) > 120)    # labels follow the folders
    everything = image_dataset_from_directory(tmp_path, label_mode="categorical", image_size=(10, 15),
                                              shuffle=False)
    assert everything[0][1].shape == (10, 2) and everything[0][1][:5, 0].all()
