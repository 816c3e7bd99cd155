"""Atomic writes leave either the complete new file or the old one, never a partial file or a temp file; a full disk
or a read-only place is a `WriteError` naming the file."""

from __future__ import annotations

import errno
import os

import pytest

from linear_nets.atomic import atomic_open, atomic_write_bytes, atomic_write_text
from linear_nets.errors import WriteError


def test_write_replaces_whole_file(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_error_mid_write_keeps_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError, match="boom"), atomic_open(target, "w") as f:
        f.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_missing_directory_raises_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "nope" / "out.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_bad_mode_rejected(tmp_path):
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "x", "a"):
        pass


def test_file_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


def test_a_full_disk_names_the_file_keeps_the_old_one_and_leaves_no_temp(tmp_path, full_disk):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    full_disk()
    with pytest.raises(WriteError) as exc:
        atomic_write_text(target, "new")
    assert str(exc.value) == f"cannot write {target}: No space left on device"
    assert isinstance(exc.value, OSError) and exc.value.errno == errno.ENOSPC  # still an OSError to those who ask
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_read_only_directory_names_the_file_and_writes_nothing(tmp_path, read_only):
    read_only(tmp_path)
    with pytest.raises(WriteError) as exc:
        atomic_write_bytes(tmp_path / "out.bin", b"x")
    assert str(exc.value) == f"cannot write {tmp_path / 'out.bin'}: Permission denied"
    assert list(tmp_path.iterdir()) == []
