"""Where data files come from, in order, and how they are verified.

1. an explicit ``data_dir=`` argument;
2. the ``MINICNN_DATA`` environment variable;
3. the cache ``~/.minicnn/datasets`` (or ``MINICNN_CACHE``);
4. online: a download from the canonical source into the cache, with a progress bar,
   checksum verification, and an atomic rename — a half-written or corrupt download
   never lands in the cache.

In each folder a file is looked for as ``<folder>/<dataset>/<file>`` and
``<folder>/<file>``.  A file that is found but fails its checksum is an error (never
silently used).  Offline and missing: an error naming the file, its checksum and every
place searched.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RemoteFile:
    dataset: str             # folder name, e.g. 'mnist'
    name: str                # file name, e.g. 't10k-images-idx3-ubyte.gz'
    checksum: str            # 'md5:…' or 'sha256:…'
    urls: tuple = field(default=())
    size: int | None = None


def cache_dir() -> Path:
    return Path(os.environ.get("MINICNN_CACHE", Path.home() / ".minicnn" / "datasets"))


def file_digest(path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path, checksum: str) -> None:
    algorithm, expected = checksum.split(":")
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise ValueError(f"{path}: {algorithm} checksum mismatch: expected {expected}, found {actual} "
                         f"(a corrupt or different file; delete it to re-download)")


def candidate_folders(data_dir=None) -> list[Path]:
    folders = []
    if data_dir is not None:
        folders.append(Path(data_dir))
    if os.environ.get("MINICNN_DATA"):
        folders.append(Path(os.environ["MINICNN_DATA"]))
    folders.append(cache_dir())
    return folders


def _download(remote: RemoteFile, target: Path, url: str) -> None:
    """Download to a temporary file beside ``target``, verify, then rename atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or remote.size or 0)
            done = 0
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                done += len(chunk)
                if total and sys.stderr.isatty():
                    bar = "━" * int(30 * done / total)
                    sys.stderr.write(f"\rDownloading {remote.name} {bar:<30} {done / 2**20:.1f}/{total / 2**20:.1f} MB")
            if sys.stderr.isatty():
                sys.stderr.write("\n")
        verify(tmp, remote.checksum)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fetch(remote: RemoteFile, data_dir=None, download=True) -> Path:
    """The local path of ``remote``, verified; downloaded into the cache if needed."""
    searched = []
    for folder in candidate_folders(data_dir):
        for path in (folder / remote.dataset / remote.name, folder / remote.name):
            searched.append(str(path))
            if path.is_file():
                verify(path, remote.checksum)
                return path
    errors = []
    if download and remote.urls:
        target = cache_dir() / remote.dataset / remote.name
        for url in remote.urls:
            try:
                _download(remote, target, url)
                return target
            except ValueError:
                raise
            except OSError as exc:           # offline, refused, not found
                errors.append(f"{url}: {exc}")
    raise FileNotFoundError(
        f"{remote.name} ({remote.dataset}) not found; expected {remote.checksum}. Searched: "
        + ", ".join(searched)
        + (". Download failed: " + "; ".join(errors) if errors else "")
        + ". Put the file in one of those places or set MINICNN_DATA to a folder that holds it.")
