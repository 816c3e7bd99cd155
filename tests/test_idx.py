"""The IDX reader and writer: round trips for every element type, and every fault as a DataError."""

from __future__ import annotations

import doctest
import gzip
import os
import struct
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linear_nets.data.idx import MAX_DIMS, idx_header, read_idx, read_idx_tensor, write_idx
from linear_nets.errors import DataError

DTYPES = ["u1", "i1", ">i2", "<i2", ">i4", "<i4", ">f4", "<f4", ">f8", "<f8"]
CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def reference_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding written out by hand, independent of the module."""
    code = CODES[array.dtype.kind + str(array.dtype.itemsize)]
    head = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


def random_array(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.normal(0, 1e3, shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dt)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_every_type(tmp_path, dtype, compress):
    array = random_array(np.random.default_rng(0), dtype, (3, 4, 5))
    path = tmp_path / "a.idx"
    write_idx(path, array, gzip=compress)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == compress
    assert (gzip.decompress(raw) if compress else raw) == reference_bytes(array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype).newbyteorder("=") and back.dtype.isnative
    assert back.shape == (3, 4, 5) and back.flags.writeable and back.flags.c_contiguous
    np.testing.assert_array_equal(back, array)


def test_reads_hand_written_file_and_big_endian_values(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2]) + b"\x01\x02\xff\xfe")
    np.testing.assert_array_equal(read_idx(path), np.array([0x0102, -2], dtype=np.int16))


def test_gzip_is_detected_by_magic_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "plain.gz", array)
    write_idx(tmp_path / "compressed", array, gzip=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed"), array)


def test_empty_dimension_and_tensor(tmp_path):
    write_idx(tmp_path / "e", np.zeros((0, 28, 28), dtype=np.uint8))
    assert read_idx(tmp_path / "e").shape == (0, 28, 28)
    write_idx(tmp_path / "t", np.arange(6, dtype=np.float32).reshape(2, 3))
    t = read_idx_tensor(tmp_path / "t")
    assert t.dtype == torch.float32 and t.shape == (2, 3) and t[1, 2].item() == 5.0


def test_write_takes_a_tensor(tmp_path):
    write_idx(tmp_path / "t", torch.arange(6, dtype=torch.int32).reshape(3, 2))
    np.testing.assert_array_equal(read_idx(tmp_path / "t"), np.arange(6).reshape(3, 2))


def test_gzip_output_is_deterministic(tmp_path):
    array = np.arange(100, dtype=np.int32)
    write_idx(tmp_path / "a", array, gzip=True)
    write_idx(tmp_path / "b", array, gzip=True)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


# --- faults -------------------------------------------------------------------------------------------------------

VALID = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "truncated IDX header"),
        (b"\x00\x00\x08", "truncated IDX header"),
        (b"\x01\x00" + VALID[2:], "magic bytes 01 00"),
        (b"\x00\x07" + VALID[2:], "magic bytes 00 07"),
        (VALID[:2] + b"\x0a" + VALID[3:], "unknown IDX element type code 0x0A"),
        (VALID[:3] + b"\x00" + VALID[4:], "0 dimensions"),
        (VALID[:3] + bytes([MAX_DIMS + 1]) + VALID[4:], f"{MAX_DIMS + 1} dimensions"),
        (VALID[:3] + b"\x04" + VALID[4:], "truncated IDX header"),
        (VALID[:-1], "truncated: the header promises 6 data bytes, the file holds 5"),
        (VALID + b"\x00", "1 trailing bytes"),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_each_fault_is_a_data_error_naming_file_and_fault(tmp_path, data, fragment, compress):
    path = tmp_path / "bad-file"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    if compress and "trailing" in fragment:
        fragment = "trailing bytes"
    assert fragment in message


def test_valid_fixture_of_the_fault_table_reads(tmp_path):
    (tmp_path / "ok").write_bytes(VALID)
    np.testing.assert_array_equal(read_idx(tmp_path / "ok"), np.arange(6).reshape(2, 3))


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda z: z[:-9], "corrupt gzip"),  # cut inside the CRC/length trailer
        (lambda z: z[:10] + bytes(b ^ 0xFF for b in z[10:14]) + z[14:], "corrupt gzip"),  # deflate data
        (lambda z: z[:-8] + bytes(b ^ 1 for b in z[-8:-4]) + z[-4:], "corrupt gzip"),  # CRC
        (lambda z: z + b"garbage!", "corrupt gzip"),
        (lambda z: z[:3] + b"\xff" + z[4:], "corrupt gzip"),  # reserved flag bits
    ],
)
def test_corrupt_gzip(tmp_path, mutate, fragment):
    z = gzip.compress(VALID, mtime=0)
    path = tmp_path / "c.gz"
    path.write_bytes(mutate(z))
    with pytest.raises(DataError, match=fragment) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "nope")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path)


def huge_header(ndim: int = 4) -> bytes:
    return bytes([0, 0, 0x0E, ndim]) + b"\xff\xff\xff\xff" * ndim


@pytest.mark.parametrize("compress", [False, True])
def test_header_claiming_too_much_fails_before_allocating(tmp_path, compress):
    data = huge_header() + bytes(1000)
    path = tmp_path / "huge"
    path.write_bytes(gzip.compress(data) if compress else data)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="truncated"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_highly_compressed_valid_file_is_not_mistaken_for_a_lying_header(tmp_path):
    """All zeros compress about 1000:1, close to deflate's limit of 1032:1 that the early size check relies on."""
    zeros = np.zeros((3000, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "z", zeros, gzip=True)
    assert zeros.nbytes / (tmp_path / "z").stat().st_size > 1000
    np.testing.assert_array_equal(read_idx(tmp_path / "z"), zeros)


def test_gzip_bomb_with_small_claim_stops_early(tmp_path):
    """A header claiming 10 bytes followed by 200 MB of zeros: read 11 bytes, report trailing data."""
    compressor = gzip.GzipFile(tmp_path / "bomb", "wb", mtime=0)
    compressor.write(bytes([0, 0, 8, 1, 0, 0, 0, 10]))
    for _ in range(200):
        compressor.write(bytes(1 << 20))
    compressor.close()
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="trailing bytes"):
            read_idx(tmp_path / "bomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_write_rejects_what_idx_cannot_store(tmp_path):
    path = tmp_path / "w"
    with pytest.raises(DataError, match="int64"):
        write_idx(path, np.arange(3, dtype=np.int64))
    with pytest.raises(DataError, match="0-dimensional"):
        write_idx(path, np.array(3, dtype=np.uint8))
    with pytest.raises(DataError, match="1 to 8 dimensions"):
        write_idx(path, np.zeros((1,) * 9, dtype=np.uint8))
    assert not path.exists() and os.listdir(tmp_path) == []


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "keep"
    write_idx(path, np.arange(4, dtype=np.uint8))
    before = path.read_bytes()
    with pytest.raises(DataError):
        write_idx(path, np.arange(4, dtype=np.uint64))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["keep"]


def test_header_matches_the_file(tmp_path):
    array = np.ones((2, 5), dtype=np.float64)
    write_idx(tmp_path / "h", array)
    assert (tmp_path / "h").read_bytes().startswith(idx_header(array))
    assert idx_header(array) == bytes([0, 0, 0x0E, 2, 0, 0, 0, 2, 0, 0, 0, 5])


# --- fuzzing ------------------------------------------------------------------------------------------------------

FUZZ_DIR = Path(tempfile.mkdtemp(prefix="idx-fuzz-"))
SEEDS = [
    VALID,
    reference_bytes(np.arange(24, dtype=">f4").reshape(2, 3, 4)),
    huge_header(2) + bytes(64),
]


def read_fuzzed(data: bytes) -> None:
    """Only DataError or a valid array may come out, with a bounded peak allocation."""
    path = FUZZ_DIR / "fuzz"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        try:
            array = read_idx(path)
        except DataError as exc:
            assert str(path) in str(exc)
        else:
            assert isinstance(array, np.ndarray) and 1 <= array.ndim <= MAX_DIMS
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak allocation {peak} bytes for a {len(data)}-byte input"


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    compress = draw(st.booleans())
    return gzip.compress(bytes(data), mtime=0) if compress else bytes(data)


FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(data):
    read_fuzzed(data)


@FUZZ
@given(mutated())
def test_fuzz_mutated_files(data):
    read_fuzzed(data)


@FUZZ
@given(st.integers(0, 10**6), st.integers(1, 255))
def test_fuzz_mutated_gzip_containers(position, xor):
    """One corrupted byte anywhere in the gzip container or its deflate stream."""
    z = bytearray(gzip.compress(SEEDS[1], mtime=0))
    z[position % len(z)] ^= xor
    read_fuzzed(bytes(z))


def test_docstring_examples():
    from linear_nets.data import idx

    result = doctest.testmod(idx)
    assert result.failed == 0 and result.attempted > 0
