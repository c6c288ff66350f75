"""The IDX format of MNIST and Fashion-MNIST (gzip-compressed).

Big-endian header: two zero bytes, a type code (0x08 = uint8), the number of
dimensions ``d``; then ``d`` uint32 sizes; then the data.  Images are ``0x00000803``
(n, 28, 28), labels ``0x00000801`` (n,).  Every check fails with the file's name;
nothing is returned unless the whole file was read and matched its header.
"""
from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np


def read_idx(path, expected_ndim: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a complete gzip file ({type(exc).__name__}: {exc})") from None
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    expected_magic = 0x0800 + expected_ndim
    if zero != 0 or dtype_code != 0x08 or ndim != expected_ndim:
        raise ValueError(f"{path}: wrong IDX magic number: expected 0x{expected_magic:08x}, "
                         f"found 0x{struct.unpack('>I', data[:4])[0]:08x}")
    header = 4 + 4 * ndim
    shape = struct.unpack(">" + "I" * ndim, data[4:header])
    expected_bytes = header + int(np.prod(shape))
    if len(data) != expected_bytes:
        raise ValueError(f"{path}: size mismatch: header says {shape} ({expected_bytes} bytes), "
                         f"file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()
