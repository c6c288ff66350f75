"""A minimal reader for MATLAB level-5 MAT-files: enough for numeric matrices such as
the Olivetti faces, with no SciPy dependency.

Layout: a 128-byte header, then data elements ``(type uint32, nbytes uint32, payload)``
padded to 8 bytes; ``miCOMPRESSED`` (15) payloads are zlib streams holding one element;
an ``miMATRIX`` (14) element holds sub-elements: array flags, dimensions (int32), the
name (int8), and the real part.  MATLAB stores matrices column-major (Fortran order).
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

MI_TYPES = {1: np.int8, 2: np.uint8, 3: np.int16, 4: np.uint16, 5: np.int32, 6: np.uint32,
            7: np.float32, 9: np.float64, 12: np.int64, 13: np.uint64}
MI_MATRIX, MI_COMPRESSED = 14, 15


def _elements(buf: bytes, where: str):
    pos = 0
    while pos + 8 <= len(buf):
        mtype, nbytes = struct.unpack("<II", buf[pos:pos + 8])
        if mtype >> 16:                                   # "small data element": packed in 4 bytes
            mtype, nbytes = mtype & 0xFFFF, mtype >> 16
            yield mtype, buf[pos + 4:pos + 4 + nbytes]
            pos += 8
            continue
        if pos + 8 + nbytes > len(buf):
            raise ValueError(f"{where}: truncated MAT-file element (needs {nbytes} bytes at offset {pos})")
        yield mtype, buf[pos + 8:pos + 8 + nbytes]
        pos += 8 + nbytes + (-nbytes % 8 if mtype != MI_COMPRESSED else 0)


def _matrix(payload: bytes, where: str):
    subs = list(_elements(payload, where))
    if len(subs) < 4:
        raise ValueError(f"{where}: malformed matrix element")
    dims = np.frombuffer(subs[1][1], dtype=np.int32)
    name = subs[2][1].decode("ascii")
    mtype, data = subs[3]
    if mtype not in MI_TYPES:
        raise ValueError(f"{where}: unsupported data type {mtype} in variable {name!r}")
    values = np.frombuffer(data, dtype=MI_TYPES[mtype])
    if values.size != int(np.prod(dims)):
        raise ValueError(f"{where}: variable {name!r} has {values.size} values for dimensions {tuple(dims)}")
    return name, values.reshape(tuple(dims), order="F")


def loadmat(path) -> dict:
    """{variable name: ndarray} for the numeric matrices in a level-5 MAT-file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 128 or not raw.startswith(b"MATLAB 5.0 MAT-file") or raw[126:128] != b"IM":
        raise ValueError(f"{path}: not a little-endian MATLAB 5.0 MAT-file")
    out = {}
    for mtype, payload in _elements(raw[128:], str(path)):
        if mtype == MI_COMPRESSED:
            try:
                payload = zlib.decompress(payload)
            except zlib.error as exc:
                raise ValueError(f"{path}: corrupt compressed element ({exc})") from None
            mtype, payload = next(_elements(payload, str(path)))
        if mtype == MI_MATRIX:
            name, value = _matrix(payload, str(path))
            out[name] = value
    return out
