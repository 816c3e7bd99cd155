"""The IDX file format (the MNIST family's container): read and write, gzipped or not.

An IDX file is a header followed by the array's elements, big-endian, in C order:

    byte 0-1   0x00 0x00                      magic
    byte 2     element type code              0x08 u1, 0x09 i1, 0x0B i2, 0x0C i4, 0x0D f4, 0x0E f8
    byte 3     number of dimensions, d
    then       d sizes, each a big-endian uint32
    then       prod(sizes) elements

The reader is strict: every fault (wrong magic, unknown type, bad dimension count, truncated data, trailing bytes,
corrupt gzip) raises `DataError` naming the file and the fault. The header is checked (by the caller too, `accept`)
before the payload is read, and decompression stops one byte past the declared size: a header claiming gigabytes,
or a gzip bomb, costs no more than the data the caller accepted.
"""

from __future__ import annotations

import gzip as gz  # as gz: `write_idx`'s flag is called gzip
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from linear_nets.atomic import atomic_write_bytes
from linear_nets.errors import DataError

if TYPE_CHECKING:
    from torch import Tensor

ELEMENT_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code -> the big-endian numpy dtype of its elements."""

MAX_DIMS = 8
"""Most dimensions the reader accepts; the format allows 255, real files use 1 to 4."""

GZIP_MAGIC = b"\x1f\x8b"
# deflate cannot expand data by more than 1032:1, so a gzip file of n bytes never holds more than this many.
_MAX_GZIP_RATIO = 1032
_CHUNK = 1 << 24  # decompress in 16 MiB pieces, so memory grows only with data that really exists

Accept = Callable[[np.dtype, tuple[int, ...]], None]
"""A check of a header's (dtype, shape), run before the data is read (see `read_idx`)."""


def read_idx(path: str | os.PathLike, accept: Accept | None = None) -> np.ndarray:
    """Read an IDX file (gzipped or not: detected by its first two bytes, 1f 8b) into a numpy array in native byte
    order (writable, C-contiguous) with the header's shape and element type.

    `accept`, when given, is called with the header's (dtype, shape) before any data is read or decompressed, and
    raises `DataError` to refuse the file. Raises DataError, naming the file and the fault, for a missing or
    unreadable file and every fault the module docstring lists.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.idx"
        >>> write_idx(p, np.arange(6, dtype=np.int16).reshape(2, 3))
        >>> read_idx(p)
        array([[0, 1, 2],
               [3, 4, 5]], dtype=int16)
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == GZIP_MAGIC
            f.seek(0)
            return _read_gzip(path, f, accept) if gzipped else _read_plain(path, f, accept)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def read_idx_tensor(path: str | os.PathLike) -> Tensor:
    """`read_idx` as a torch tensor sharing the array's memory (no copy)."""
    import torch  # imported here so that the IDX reader itself needs only numpy

    return torch.from_numpy(read_idx(path))


def idx_header(array: np.ndarray) -> bytes:
    """The IDX header of `array`: `idx_header(a) + idx_payload(a)` are exactly the bytes of the file `write_idx`
    writes (and of any IDX file `read_idx` returned `a` for). Raises DataError when `array` cannot be stored as IDX."""
    code = _type_code(array.dtype)
    if not 1 <= array.ndim <= MAX_DIMS:
        raise DataError(f"cannot write a {array.ndim}-dimensional array as IDX: 1 to {MAX_DIMS} dimensions")
    if any(n >= 1 << 32 for n in array.shape):
        raise DataError(f"cannot write shape {array.shape} as IDX: each dimension must be below 2**32")
    return struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)


def idx_payload(array: np.ndarray) -> memoryview:
    """The element bytes of `array` as IDX stores them (big-endian, C order); no copy for uint8/int8 arrays."""
    big_endian = ELEMENT_TYPES[_type_code(array.dtype)]
    return memoryview(np.ascontiguousarray(array, dtype=big_endian).reshape(-1).view(np.uint8))


def write_idx(path: str | os.PathLike, array: np.ndarray, gzip: bool = False) -> None:
    """Write `array` (uint8, int8, int16, int32, float32 or float64, 1 to `MAX_DIMS` dimensions; anything
    `np.asarray` takes, such as a CPU tensor) to `path` as an IDX file, atomically; with `gzip`, compressed (header
    mtime 0: the same array always gives the same bytes). Raises DataError, writing nothing, when the array cannot
    be stored as IDX (see `idx_header`).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels.gz"
        >>> write_idx(p, np.array([3, 1, 4], dtype=np.uint8), gzip=True)
        >>> read_idx(p).tolist()
        [3, 1, 4]
    """
    array = np.asarray(array)  # also takes torch tensors (on the CPU) and nested lists
    data = idx_header(array) + idx_payload(array).tobytes()
    if gzip:
        data = gz.compress(data, mtime=0)
    atomic_write_bytes(path, data)


def _type_code(dtype: np.dtype) -> int:
    for code, known in ELEMENT_TYPES.items():
        if dtype.kind == known.kind and dtype.itemsize == known.itemsize:
            return code
    names = ", ".join(str(t.newbyteorder("=")) for t in ELEMENT_TYPES.values())
    raise DataError(f"IDX cannot store elements of type {dtype}: use one of {names}")


def _parse_header(
    path: Path, read: Callable[[int], bytes], accept: Accept | None
) -> tuple[np.dtype, tuple[int, ...], int, int]:
    """Read and check the header with `read(n)`, then let `accept` refuse it: (dtype, shape, header and data bytes)."""
    head = read(4)
    if len(head) < 4:
        raise DataError(f"{path}: truncated IDX header: {len(head)} bytes, need at least 4")
    zero0, zero1, code, ndim = head
    if (zero0, zero1) != (0, 0):
        raise DataError(f"{path}: not an IDX file: magic bytes {zero0:02x} {zero1:02x}, expected 00 00")
    if code not in ELEMENT_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in ELEMENT_TYPES)
        raise DataError(f"{path}: unknown IDX element type code 0x{code:02X} (known: {known})")
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(f"{path}: IDX header gives {ndim} dimensions, expected 1 to {MAX_DIMS}")
    sizes = read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header: {ndim} dimensions need {4 * ndim} size bytes")
    dtype, shape = ELEMENT_TYPES[code], struct.unpack(f">{ndim}I", sizes)
    if accept is not None:
        accept(dtype, shape)
    return dtype, shape, 4 + 4 * ndim, int(np.prod(shape, dtype=object)) * dtype.itemsize  # object: exact


def _to_array(payload: bytearray, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    array = np.frombuffer(payload, dtype=dtype).reshape(shape)
    native = dtype.newbyteorder("=")
    return array if dtype.itemsize == 1 else array.astype(native)  # byte-swap into a fresh native array


def _read_plain(path: Path, f: IO[bytes], accept: Accept | None) -> np.ndarray:
    dtype, shape, header, expected = _parse_header(path, f.read, accept)
    available = os.fstat(f.fileno()).st_size - header
    if available < expected:
        raise DataError(f"{path}: truncated: the header promises {expected} data bytes, the file holds {available}")
    if available > expected:
        raise DataError(f"{path}: {available - expected} trailing bytes after the {expected} data bytes")
    payload = bytearray(expected)  # safe: the file really holds this many bytes
    if f.readinto(payload) != expected:
        raise DataError(f"{path}: the file shrank while it was read")
    return _to_array(payload, dtype, shape)


def _read_gzip(path: Path, f: IO[bytes], accept: Accept | None) -> np.ndarray:
    compressed_size = os.fstat(f.fileno()).st_size
    try:
        with gz.GzipFile(fileobj=f, mode="rb") as z:
            dtype, shape, _, expected = _parse_header(path, z.read, accept)
            if expected > compressed_size * _MAX_GZIP_RATIO:
                raise DataError(
                    f"{path}: truncated: the header promises {expected} data bytes, "
                    f"more than a {compressed_size}-byte gzip file can hold"
                )
            payload = _read_at_most(z, expected + 1)  # one byte more than promised reveals trailing data
    except (gz.BadGzipFile, zlib.error, EOFError) as exc:
        raise DataError(f"{path}: corrupt gzip data: {exc}") from exc
    if len(payload) < expected:
        raise DataError(f"{path}: truncated: the header promises {expected} data bytes, the file holds {len(payload)}")
    if len(payload) > expected:
        raise DataError(f"{path}: trailing bytes after the {expected} data bytes")
    return _to_array(payload, dtype, shape)


def _read_at_most(stream: IO[bytes], limit: int) -> bytearray:
    """Read until end of stream or `limit` bytes, in chunks: memory follows the data, not the header's claim."""
    chunks, total = [], 0
    while total < limit and (chunk := stream.read(min(_CHUNK, limit - total))):
        chunks.append(chunk)
        total += len(chunk)
    return bytearray().join(chunks)
