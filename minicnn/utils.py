"""Keras's ``utils``: labels, downloads, images.

* ``to_categorical(y, num_classes)``: one-hot rows, ``out[i, y_i] = 1``.
* ``normalize(x, axis, order)``: ``x / ‖x‖_order`` along ``axis`` (zero vectors stay 0).
* ``get_file(fname, origin, file_hash=...)``: Keras's cache, under ``~/.minicnn`` instead of
  ``~/.keras``: the file lives at ``<cache_dir>/<cache_subdir>/<fname>``; when it is there
  and its hash matches (or no hash is given) it is used, else it is downloaded to a
  temporary file, checked, and renamed into place.  Hash rule (Keras's): with
  ``hash_algorithm='auto'`` a 64-hex-digit hash is SHA-256, anything else MD5.
* ``load_img``/``img_to_array``/``array_to_img``/``save_img``: Pillow images <-> float
  arrays of shape (height, width, channels).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from . import backend
from .seeding import set_seed as set_random_seed  # noqa: F401  (keras.utils.set_random_seed)


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encoding of integer labels ``y`` (any shape; a trailing axis of 1 is dropped)."""
    y = np.asarray(y)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.size and (y.dtype.kind not in "iub" and not np.all(y == np.round(y))):
        raise ValueError(f"to_categorical: labels must be integers, received dtype {y.dtype}")
    y = y.astype(np.int64)
    num_classes = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must lie in [0, {num_classes}), received values in "
                         f"[{y.min()}, {y.max()}]")
    return (y[..., None] == np.arange(num_classes)).astype(dtype)


def normalize(x, axis=-1, order=2):
    """``x`` divided by its ``order``-norm along ``axis`` (Keras's ``utils.normalize``)."""
    x = np.asarray(x)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


# -- get_file ---------------------------------------------------------------------

def cache_root() -> Path:
    """``$MINICNN_HOME`` or ``~/.minicnn`` (Keras: ``$KERAS_HOME`` or ``~/.keras``)."""
    return Path(os.environ.get("MINICNN_HOME", Path.home() / ".minicnn"))


def hash_algorithm_for(file_hash, hash_algorithm="auto") -> str:
    if hash_algorithm in ("sha256", "md5"):
        return hash_algorithm
    if hash_algorithm != "auto":
        raise ValueError(f"get_file: hash_algorithm must be 'auto', 'sha256' or 'md5', received {hash_algorithm!r}")
    return "sha256" if len(file_hash) == 64 else "md5"


def file_hash_of(path, algorithm) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def validate_file(path, file_hash, hash_algorithm="auto") -> bool:
    return file_hash_of(path, hash_algorithm_for(file_hash, hash_algorithm)) == str(file_hash)


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None, cache_subdir="datasets",
             hash_algorithm="auto", extract=False, archive_format="auto", cache_dir=None, force_download=False):
    """The local path of ``fname`` from ``origin``, downloaded into the cache when missing
    or when its hash does not match (Keras's ``get_file``).  Offline, the error names the
    file and the path to put it at."""
    if origin is None:
        raise ValueError("get_file: origin (the URL) is required")
    fname = fname or os.path.basename(origin.split("?")[0])
    if not fname:
        raise ValueError(f"get_file: cannot tell a file name from origin {origin!r}; pass fname=")
    if file_hash is None and md5_hash is not None:
        file_hash, hash_algorithm = md5_hash, "md5"
    folder = (Path(cache_dir) if cache_dir else cache_root()) / cache_subdir
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (fname + ".tar.gz" if untar and not fname.endswith((".tar.gz", ".tgz")) else fname)
    fresh = target.is_file() and not force_download and \
        (file_hash is None or validate_file(target, file_hash, hash_algorithm))
    if not fresh:
        _download(origin, target, file_hash, hash_algorithm)
    if untar or extract:
        return str(_extract(target, folder, "tar" if untar else archive_format))
    return str(target)


def _download(origin, target: Path, file_hash, hash_algorithm):
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(origin, timeout=30) as response:
            shutil.copyfileobj(response, out)
        if file_hash is not None and not validate_file(tmp, file_hash, hash_algorithm):
            raise ValueError(f"get_file: {target.name} downloaded from {origin} does not match its hash "
                             f"{file_hash} ({hash_algorithm_for(file_hash, hash_algorithm)}): a corrupt or "
                             f"different file")
        os.replace(tmp, target)
    except OSError as exc:
        raise FileNotFoundError(
            f"get_file: {target.name} is not in the cache and could not be downloaded from {origin} ({exc}). "
            f"Download it elsewhere and put it at {target}"
            + (f" (its {hash_algorithm_for(file_hash, hash_algorithm)} must be {file_hash})" if file_hash else "")
        ) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _extract(archive: Path, folder: Path, archive_format) -> Path:
    """Unpack a tar or zip archive beside it; returns the folder named after the archive."""
    stem = archive.name
    for suffix in (".tar.gz", ".tgz", ".tar", ".zip"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    out = folder / stem
    if archive_format in ("auto", "tar") and tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    elif archive_format in ("auto", "zip") and zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            z.extractall(folder)
    else:
        raise ValueError(f"get_file: {archive} is not a {archive_format} archive")
    return out if out.exists() else folder


# -- images --------------------------------------------------------------------------

_PIL_RESAMPLE = {"nearest": 0, "bilinear": 2, "bicubic": 3, "lanczos": 1, "box": 4, "hamming": 5}


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    """A Pillow image in ``color_mode`` ('rgb', 'grayscale', 'rgba'), resized to
    ``target_size = (height, width)`` when given."""
    from PIL import Image
    modes = {"rgb": "RGB", "grayscale": "L", "rgba": "RGBA"}
    if color_mode not in modes:
        raise ValueError(f"load_img: color_mode must be one of {list(modes)}, received {color_mode!r}")
    if interpolation not in _PIL_RESAMPLE:
        raise ValueError(f"load_img: interpolation must be one of {list(_PIL_RESAMPLE)}, received {interpolation!r}")
    with Image.open(path) as img:
        img = img.convert(modes[color_mode])
    if target_size is not None and img.size != (target_size[1], target_size[0]):
        img = img.resize((target_size[1], target_size[0]), _PIL_RESAMPLE[interpolation])
    return img


def img_to_array(img, data_format=None, dtype=None):
    """(height, width, channels) array of ``floatx`` (a grayscale image gets channels = 1)."""
    x = np.asarray(img, dtype=dtype or backend.floatx())
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise ValueError(f"img_to_array: expected an image of rank 2 or 3, received shape {x.shape}")
    return np.moveaxis(x, -1, 0) if data_format == "channels_first" else x


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A Pillow image from a (height, width, 1|3|4) array; ``scale`` maps [min, max] to [0, 255]."""
    from PIL import Image
    x = np.asarray(x, dtype="float64")
    if x.ndim != 3 or x.shape[-1] not in (1, 3, 4):
        raise ValueError(f"array_to_img: expected shape (height, width, 1, 3 or 4), received {x.shape}")
    if scale:
        x = x - x.min()
        x = x / x.max() * 255 if x.max() > 0 else x
    x = np.clip(x, 0, 255).astype(np.uint8)
    return Image.fromarray(x[..., 0] if x.shape[-1] == 1 else x, {1: "L", 3: "RGB", 4: "RGBA"}[x.shape[-1]])


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Write array ``x`` as an image file (format from the extension)."""
    array_to_img(x, data_format, scale).save(path, format=file_format, **kwargs)
