"""The IDX file format of MNIST and Fashion-MNIST: read and write, plain or gzipped.

Layout (all integers big-endian)::

    bytes 0-1   zero
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     ndim
    then ndim   uint32 sizes, e.g. (60000, 28, 28)
    then        prod(sizes) elements, row-major

So ``train-images-idx3-ubyte`` starts with 0x00000803 and three sizes, ``...-labels-idx1-ubyte``
with 0x00000801 and one.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# element-type code -> big-endian dtype (multi-byte types are stored most significant byte first)
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in IDX_DTYPES.items()}  # "u1", "i2", "f4", ...

_GZIP_MAGIC = b"\x1f\x8b"

PathLike = str | os.PathLike


class IDXError(ValueError):
    """A file is not a valid IDX file (bad magic, truncated, wrong shape)."""


def read_bytes(path: PathLike) -> bytes:
    """The uncompressed content of ``path``: gunzipped when it is a gzip file (by content, not by name)."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:  # a cut-off or damaged download
        raise IDXError(f"{path}: damaged or truncated gzip file ({len(raw)} compressed bytes): {exc}") from exc


def parse_idx(buf: bytes, source: str = "<bytes>", expected_shape: Sequence[int | None] | None = None) -> np.ndarray:
    """Decode one IDX buffer (already uncompressed) into an array in native byte order.

    Args:
        buf: the file content.
        source: where ``buf`` came from, for error messages (usually the path).
        expected_shape: optional shape to insist on; ``None`` entries match any size, e.g. ``(None, 28, 28)``.
    Returns:
        array of the stored dtype (uint8 for MNIST) and shape.
    """
    if len(buf) < 4:
        raise IDXError(f"{source}: too short for an IDX file ({len(buf)} bytes, the header alone needs at least 4)")
    zero, code, ndim = struct.unpack(">HBB", buf[:4])
    if zero != 0 or code not in IDX_DTYPES or ndim == 0:
        raise IDXError(
            f"{source}: not an IDX file: magic number 0x{buf[:4].hex()} (expected 0x0000 + type code in "
            f"{{{', '.join(f'0x{c:02X}' for c in IDX_DTYPES)}}} + ndim >= 1, e.g. 0x00000803 for MNIST images)"
        )
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise IDXError(f"{source}: truncated header: {ndim} dimensions need {header} bytes, file has {len(buf)}")
    shape = struct.unpack(f">{ndim}I", buf[4:header])
    dtype = IDX_DTYPES[code]
    expected_bytes = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(buf) != expected_bytes:
        problem = "truncated" if len(buf) < expected_bytes else "has trailing bytes"
        raise IDXError(
            f"{source}: {problem}: header declares shape {shape} of {dtype.name}, i.e. {expected_bytes} bytes "
            f"in total, but the file has {len(buf)} bytes"
        )
    if expected_shape is not None:
        ok = len(expected_shape) == ndim and all(e is None or e == s for e, s in zip(expected_shape, shape))
        if not ok:
            want = ", ".join("*" if e is None else str(e) for e in expected_shape)
            raise IDXError(f"{source}: shape {shape}, expected ({want})")
    data = np.frombuffer(buf, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)  # writable, native-endian copy


def read_idx(path: PathLike, expected_shape: Sequence[int | None] | None = None) -> np.ndarray:
    """Read an IDX file, plain or gzipped (detected from the content).

    Args:
        path: e.g. ``.../train-images-idx3-ubyte`` or ``.../train-images-idx3-ubyte.gz``.
        expected_shape: optional, as in :func:`parse_idx`.
    Returns:
        the array, e.g. uint8 (60000, 28, 28).
    Raises:
        IDXError: corrupt magic, truncated file (names the path and byte counts), or unexpected shape.
    """
    return parse_idx(read_bytes(path), str(path), expected_shape)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of ``array`` (uint8, int8, int16, int32, float32 or float64; at least 1-D)."""
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str[1:]
    if key not in _CODES:
        raise IDXError(f"IDX cannot store dtype {array.dtype}; use one of uint8, int8, int16, int32, float32, float64")
    if array.ndim == 0 or array.ndim > 255:
        raise IDXError(f"IDX stores arrays with 1 to 255 dimensions, got shape {array.shape}")
    code = _CODES[key]
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzipped when ``compress`` is True (default: when the name ends in .gz).

    Returns the path written.
    """
    path = Path(path)
    data = encode_idx(array)
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)  # mtime=0: same array -> same bytes
    path.write_bytes(data)
    return path
