"""Atomic file writes: a temporary file in the destination's directory, flushed, then `os.replace`d onto the final
name, so a result file is either complete or absent. A write the place refuses (a full disk, a read-only file
system, no permission) raises `WriteError`, whose one-line message names the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from linear_nets.errors import WriteError

UNWRITABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})
"""The errors that say "not here" rather than "a bug": full disk or quota, file too large, read-only, forbidden."""

TEMPORARY_SUFFIX = ".tmp"
"""`atomic_open` writes `.<name>.<random>.tmp` beside `<name>`; a process killed mid-write leaves it behind."""


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file that replaces `path` (in a directory that exists) only if the `with` block succeeds.

    `mode` is "wb" or "w" (text, UTF-8). Raises `WriteError` when the disk is full or the directory is read-only or
    not writable (nothing is left behind).

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
        >>> with atomic_open(target, "w") as f:
        ...     _ = f.write("hi")
        >>> target.read_text()
        'hi'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files; results should follow the umask
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        # the place refusing our write: an `UNWRITABLE` error from creating the temporary file, or from writing,
        # syncing or renaming it (not from another file the `with` block happened to read)
        unwritable = isinstance(exc, OSError) and not isinstance(exc, WriteError) and exc.errno in UNWRITABLE
        if unwritable and (tmp is None or exc.filename in (None, tmp, str(path))):
            raise WriteError(path, exc.errno) from None
        raise


def current_umask() -> int:
    """The process's umask (reading it means setting it: it is put straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """The temporary files `atomic_open` left in `directory` when its process was killed mid-write.

    Only safe to remove where no other process is writing (a run being resumed has one writer: the resumer).

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / ".metrics.csv.k3j9x.tmp").write_text("half")
        >>> [p.name for p in stale_temporaries(folder)]
        ['.metrics.csv.k3j9x.tmp']
    """
    return sorted(p for p in Path(directory).glob(f".*{TEMPORARY_SUFFIX}") if p.is_file() and not p.is_symlink())
