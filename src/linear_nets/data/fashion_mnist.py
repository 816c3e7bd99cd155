"""Fashion-MNIST (d2l 3.5): find the four IDX files, verify them, download them on request, load them into memory.

The dataset's facts (file names, SHA-256 of the decompressed bytes, shapes, class names, upstream URL) are data,
in `FACTS` and `CLASSES`. Every function that checks files takes a `facts=` table, so tests can use small fixture
datasets with their own checksums.

Where the files are looked for, first match wins (each directory also as a torchvision-style `<dir>/FashionMNIST/raw`):
1. the `data_dir` argument (an error if the files are not there: an explicit choice never falls through),
2. the environment variable `LINEAR_NETS_DATA` (likewise),
3. the user cache, `$XDG_CACHE_HOME/linear-nets/fashion-mnist` (default `~/.cache/...`), where `download` puts them,
4. `/usr/share/datasets/fashion-mnist`, where Debian's `dataset-fashion-mnist` package installs them.

A verified file is remembered by (resolved path, size, mtime) in `verified.json` in the user cache, so later loads
skip the hash; any change to the file makes it verified again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

try:
    import fcntl  # POSIX: a download holds its temporary file locked, so a killed one's file can be told apart
except ImportError:  # elsewhere stale temporary files stay behind (they are never read)
    fcntl = None

from linear_nets.atomic import atomic_write_text
from linear_nets.data.idx import idx_header, idx_payload, read_idx, write_idx
from linear_nets.errors import ConfigError, DataError
from linear_nets.timing import Timer

if TYPE_CHECKING:
    from torch import Tensor

    from linear_nets.data.batches import ArrayLoader

# torch (1.1 s, 220 MB to import) is imported by the functions that make tensors, not here: finding and checking
# files needs only numpy, so `linear-nets data path` (scripts/setup.sh runs it) answers in a tenth of a second.

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
"""Text labels of the classes 0..9, as d2l's `get_fashion_mnist_labels` names them."""

BASE_URL = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
"""Zalando Research's repository, over https; file `<name>.gz` lives at `BASE_URL + name + ".gz"`. (Their S3 mirror,
http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/, serves the same files over plain http only.)"""

SYSTEM_DIRS = [Path("/usr/share/datasets/fashion-mnist")]
"""Directories a system package installs the data into (Debian's `dataset-fashion-mnist`)."""

ENV_VAR = "LINEAR_NETS_DATA"
MAX_DOWNLOAD_BYTES = 64 << 20  # the largest file is 26 MB gzipped; more means a wrong or hostile server
DOWNLOAD_DEADLINE = 600.0
"""Seconds a whole `download` may take (30 MB at 50 KB/s), however slowly a server keeps sending."""
HOW_TO_GET = (
    "get it with `sudo apt-get install dataset-fashion-mnist`, or point LINEAR_NETS_DATA at a directory holding "
    "the four IDX files (gzipped or not), or run `linear-nets data download`"
)


@dataclass(frozen=True)
class FileFacts:
    """One IDX file: its name without `.gz`, SHA-256 of its decompressed bytes, and array shape."""

    name: str
    sha256: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class SplitFacts:
    """The two files of a split."""

    images: FileFacts
    labels: FileFacts

    @property
    def files(self) -> tuple[FileFacts, FileFacts]:
        return (self.images, self.labels)


# fmt: off  (a table: one file a line pair)
FACTS: dict[str, SplitFacts] = {
    "train": SplitFacts(
        FileFacts("train-images-idx3-ubyte",
                  "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", (60000, 28, 28)),
        FileFacts("train-labels-idx1-ubyte",
                  "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", (60000,)),
    ),
    "test": SplitFacts(
        FileFacts("t10k-images-idx3-ubyte",
                  "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", (10000, 28, 28)),
        FileFacts("t10k-labels-idx1-ubyte",
                  "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", (10000,)),
    ),
}
# fmt: on
"""The published dataset: split -> its files. 6,000 train and 1,000 test images per class."""


class ChecksumError(DataError):
    """A file has the right form but not the published content (its checksum or example count differs)."""


# --- where the data lives -----------------------------------------------------------------------------------------


def user_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/linear-nets`, or `~/.cache/linear-nets` (XDG: a relative or empty value is ignored)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "linear-nets"


def default_download_dir() -> Path:
    """Where `download` puts the files by default, and the third place `locate` looks."""
    return user_cache_dir() / "fashion-mnist"


def data_file(directory: Path, name: str) -> Path | None:
    """The file `name` (plain, preferred: it loads without decompressing) or `name.gz` in `directory`, or None."""
    return next((file for file in (directory / name, directory / f"{name}.gz") if file.is_file()), None)


def _holding(directory: Path, names: list[str]) -> Path | None:
    """`directory`, or its torchvision-style `FashionMNIST/raw`, if it holds every file."""
    places = (directory, directory / "FashionMNIST" / "raw")
    return next((d for d in places if all(data_file(d, name) for name in names)), None)


def locate(data_dir: str | os.PathLike | None = None, *, facts: Mapping[str, SplitFacts] | None = None) -> Path:
    """The directory holding all four Fashion-MNIST files (gzipped or not), searched as the module docstring says.
    Raises DataError, saying how to get them, when `data_dir` (or `$LINEAR_NETS_DATA`) lacks them or none holds them.

    Example:
        >>> locate()  # doctest: +SKIP
        PosixPath('/usr/share/datasets/fashion-mnist')
    """
    names = [f.name for split in (facts or FACTS).values() for f in split.files]
    explicit = [("data_dir", data_dir)] if data_dir is not None else []
    if not explicit and os.environ.get(ENV_VAR):
        explicit = [(ENV_VAR, os.environ[ENV_VAR])]
    for what, given in explicit:
        directory = Path(given).expanduser()
        found = _holding(directory, names)
        if found is None:
            missing = [n for n in names if not data_file(directory, n)]
            raise DataError(
                f"{what} {directory} does not hold Fashion-MNIST (missing {', '.join(missing)}, gzipped or not, "
                f"also not under {directory / 'FashionMNIST' / 'raw'}); {HOW_TO_GET}"
            )
        return found
    searched = [default_download_dir(), *SYSTEM_DIRS]
    for directory in searched:
        found = _holding(directory, names)
        if found is not None:
            return found
    raise DataError(f"Fashion-MNIST not found (looked in {', '.join(map(str, searched))}); {HOW_TO_GET}")


# --- verification, remembered -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCheck:
    """The outcome of checking one file's SHA-256: `verified`, and whether an earlier check was reused."""

    path: Path
    verified: bool
    from_cache: bool
    problem: str = ""


def decompressed_sha256(array: np.ndarray) -> str:
    """SHA-256 of the IDX file `array` was read from, decompressed (its header + big-endian elements): the header
    follows from the array, so hashing needs no second read and no copy for uint8 data.

    Example:
        >>> decompressed_sha256(np.zeros(1, np.uint8)) == hashlib.sha256(bytes([0, 0, 8, 1, 0, 0, 0, 1, 0])).hexdigest()
        True
    """
    h = hashlib.sha256(idx_header(array))
    h.update(idx_payload(array))
    return h.hexdigest()


def _memo_path() -> Path:
    return user_cache_dir() / "verified.json"


def _stamp(path: Path) -> tuple[str, dict[str, int]]:
    try:
        st = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return str(path.resolve()), {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_memo() -> dict:
    """The remembered checks; an unreadable or malformed file counts as empty (the files are just hashed again)."""
    try:
        memo = json.loads(_memo_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _remembered(memo: dict, stamp: tuple[str, dict[str, int]], sha256: str) -> bool:
    """Was the file of this stamp (path, size, mtime) verified to have this checksum?"""
    return memo.get(stamp[0]) == {**stamp[1], "sha256": sha256}


def _remember(stamp: tuple[str, dict[str, int]], sha256: str) -> None:
    """Record a verified file; failing to write (read-only home, full disk) only costs a hash next time."""
    memo = _read_memo()
    memo[stamp[0]] = {**stamp[1], "sha256": sha256}
    with contextlib.suppress(OSError):
        _memo_path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(_memo_path(), json.dumps(memo, indent=1, sort_keys=True))


def _check_form(path: Path, facts: FileFacts, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """uint8, the per-example shape, and no more examples than the published file: checked on the header, before the
    data is read or decompressed. Whether the count is the published one is `_check_content`'s question."""
    if dtype != np.uint8 or shape[1:] != facts.shape[1:] or len(shape) != len(facts.shape):
        want = "x".join(map(str, ("N", *facts.shape[1:])))
        got = "x".join(map(str, shape))
        native = dtype.newbyteorder("=")  # the header's big-endian type, named as the array would be
        raise DataError(f"{path}: expected uint8 data of shape {want}, got {native} of shape {got}")
    if shape[0] > facts.shape[0]:
        raise DataError(f"{path}: the header declares {shape[0]} examples, more than the {facts.shape[0]} of the "
                        "published file; nothing was read")  # fmt: skip


def read_checked(path: Path, facts: FileFacts) -> np.ndarray:
    """`read_idx(path)`, refused before its data is read or decompressed unless the header's type and shape fit
    `facts` (`_check_form`): a sparse file or a gzip bomb declaring a huge shape costs nothing."""
    return read_idx(path, accept=functools.partial(_check_form, path, facts))


def _check_content(path: Path, array: np.ndarray, facts: FileFacts, stamp: tuple[str, dict[str, int]]) -> FileCheck:
    """Is `array` (read from `path`, whose `stamp` was taken before reading) the published file? Its example count,
    then its SHA-256. A file remembered with the same path, size, mtime and checksum is not hashed again; a file
    that matches is remembered (in `verified.json` in `user_cache_dir()`), one that does not never is."""
    if array.shape != facts.shape:
        problem = f"{path}: {array.shape[0]} examples, the published file has {facts.shape[0]}"
        return FileCheck(path, verified=False, from_cache=False, problem=problem)
    if _remembered(_read_memo(), stamp, facts.sha256):
        return FileCheck(path, verified=True, from_cache=True)
    actual = decompressed_sha256(array)
    if actual != facts.sha256:
        problem = (
            f"{path}: SHA-256 of the decompressed data is {actual[:16]}..., expected {facts.sha256[:16]}...: "
            "the file is corrupt or not the published Fashion-MNIST; delete it and get it again"
        )
        return FileCheck(path, verified=False, from_cache=False, problem=problem)
    _remember(stamp, facts.sha256)
    return FileCheck(path, verified=True, from_cache=False)


def _decompressed_path(facts: FileFacts) -> Path:
    return user_cache_dir() / "decompressed" / f"{facts.name}-{facts.sha256[:16]}"


def _read_decompressed(path: Path, facts: FileFacts, stamp: tuple[str, dict[str, int]]) -> tuple[np.ndarray, bool]:
    """`(read_checked(path), False)`, or, for a gzipped file already verified, `(its decompressed copy, True)` from the
    user cache. Decompressing the training images costs about 0.4 s a run; reading the verified copy (written
    atomically when the .gz was verified, and remembered by its own path, size and mtime like the originals) costs a
    few milliseconds. Any doubt (another stamp, a missing or changed copy) falls back to the .gz."""
    copy, memo = _decompressed_path(facts), _read_memo()
    verified_gz = path.suffix == ".gz" and _remembered(memo, stamp, facts.sha256)
    if verified_gz and copy.exists() and _remembered(memo, _stamp(copy), facts.sha256):
        return read_checked(copy, facts), True
    return read_checked(path, facts), False


def _keep_decompressed(array: np.ndarray, facts: FileFacts) -> None:
    """Write a verified file's decompressed copy to the user cache (failing to write only costs the .gz next time)."""
    copy = _decompressed_path(facts)
    with contextlib.suppress(OSError):
        copy.parent.mkdir(parents=True, exist_ok=True)
        write_idx(copy, array)
        _remember(_stamp(copy), facts.sha256)


def read_split(
    directory: Path, split: SplitFacts, *, strict: bool = True
) -> tuple[np.ndarray, np.ndarray, tuple[FileCheck, FileCheck]]:
    """Read and check a split's two files from `directory`: (images [N, 28, 28] uint8, labels [N] uint8, checks).
    Checks: element type and image size, images and labels agree in count, labels are in 0..9 (else DataError);
    then whether each file is the published one (`_check_content`): if not, `ChecksumError` when `strict`.
    """
    arrays, checks = [], []
    for facts in split.files:
        path = data_file(directory, facts.name)
        if path is None:
            raise DataError(f"{directory / facts.name}(.gz) is missing; {HOW_TO_GET}")
        stamp = _stamp(path)  # before reading: a file changed while it is read then fails the next check
        array, from_copy = _read_decompressed(path, facts, stamp)
        checks.append(_check_content(path, array, facts, stamp))
        if checks[-1].verified and path.suffix == ".gz" and not from_copy:
            _keep_decompressed(array, facts)
        arrays.append(array)
    images, labels = arrays
    if len(images) != len(labels):
        raise DataError(f"{directory}: {len(images)} images but {len(labels)} labels; they must agree")
    if labels.size and labels.max() >= len(CLASSES):
        raise DataError(f"{checks[1].path}: label {labels.max()} out of range: classes are 0..{len(CLASSES) - 1}")
    failed = [c for c in checks if not c.verified]
    if strict and failed:
        raise ChecksumError(failed[0].problem)
    return images, labels, tuple(checks)


# --- download -----------------------------------------------------------------------------------------------------


def _already_there(directory: Path, facts: FileFacts) -> bool:
    """Does `directory` hold this file, passing every check?"""
    path = data_file(directory, facts.name)
    if path is None:
        return False
    try:
        stamp = _stamp(path)  # before reading, as always
        return _check_content(path, read_checked(path, facts), facts, stamp).verified
    except DataError:
        return False


def _fetch(url: str, final: Path, facts: FileFacts, timeout: float, deadline: float) -> None:
    """Stream `url` into a temporary file next to `final`, verify it, then rename it; on failure leave nothing. Past
    `deadline` (a `time.monotonic()` time) the download stops, however slowly the server still sends. The temporary
    file is locked while it is written, so that a later download can tell a killed one's file from a live one's."""
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = 0
            while chunk := response.read1(1 << 20):  # what has arrived: a trickle cannot hold one read forever
                total += len(chunk)
                if total > MAX_DOWNLOAD_BYTES:
                    raise DataError(f"the server sent more than {MAX_DOWNLOAD_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise DataError(f"the deadline passed after {total} bytes (a slow server: try again, or give "
                                    "`data download` a longer --deadline)")  # fmt: skip
                out.write(chunk)
            promised = response.headers.get("Content-Length")
            if promised is not None and promised.isdigit() and total != int(promised):
                raise DataError(f"the connection closed after {total} of {promised} bytes")
        array = read_checked(tmp, facts)
        if array.shape != facts.shape:
            raise DataError(f"{tmp}: shape {array.shape}, expected {facts.shape}")
        if decompressed_sha256(array) != facts.sha256:
            raise DataError(f"{tmp}: SHA-256 of the decompressed data differs from the published one")
        os.replace(tmp, final)
    except DataError as exc:
        raise DataError(f"download of {url} failed: {exc}; nothing was saved") from exc
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc.__class__.__name__ + (f": {exc}" if str(exc) else "")
        raise DataError(f"download of {url} failed ({reason}); nothing was saved") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _remember(_stamp(final), facts.sha256)  # just verified: the first load pays nothing


def _remove_stale_parts(final: Path) -> None:
    """Remove the temporary files of `final` that killed downloads left (`.<name>.*.part`): those no live download
    holds locked. (A SIGKILL cannot be caught, so the next download cleans up.)"""
    if fcntl is None:
        return
    for part in final.parent.glob(f".{final.name}.*.part"):
        # BlockingIOError: a live download's, left alone; FileNotFoundError: gone already
        with contextlib.suppress(OSError), open(part, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            part.unlink()


def download(
    dest: str | os.PathLike | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    *,
    deadline: float = DOWNLOAD_DEADLINE,
    facts: Mapping[str, SplitFacts] | None = None,
) -> Path:
    """Download the four files (`<base_url><name>.gz`, default `BASE_URL`) into `dest` (created if needed; default
    `default_download_dir()`), skipping those already there and verified; return the directory. `timeout` bounds
    each wait for the server, `deadline` the whole download (seconds).

    Each file is streamed into a temporary file in `dest`, verified (SHA-256 of the decompressed bytes, shape),
    then renamed to `<name>.gz`, so an interrupted or corrupt download never leaves a file that looks valid; the
    temporary files a killed download left are removed first. A corrupt uncompressed file it replaces is removed,
    so it cannot shadow the new one. Raises DataError, naming the URL, when a download fails or passes its deadline.
    """
    facts = facts or FACTS
    base_url = base_url or BASE_URL
    end = time.monotonic() + deadline
    directory = Path(dest).expanduser() if dest is not None else default_download_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    for file_facts in (f for split in facts.values() for f in split.files):
        final = directory / f"{file_facts.name}.gz"
        _remove_stale_parts(final)
        if _already_there(directory, file_facts):
            continue
        _fetch(f"{base_url}{file_facts.name}.gz", final, file_facts, timeout, end)
        with contextlib.suppress(FileNotFoundError):
            (directory / file_facts.name).unlink()  # an unverified plain file would shadow the new .gz
    return directory


# --- the dataset in memory ----------------------------------------------------------------------------------------


class FashionMNIST:
    """One split ("train": 60,000 images, or "test": 10,000) of Fashion-MNIST in memory, read once from its IDX files
    (found by `locate` from `data_dir`, or downloaded into the user cache when nowhere and `download`) and checked
    against `facts`. With `strict`, a file that is not the published one raises `ChecksumError`; else `checks` says so.
    `images` is uint8 `[N, 1, 28, 28]`, `labels` int64 `[N]` (`classes[i]` is the text label), `root` the directory,
    `checks` one `FileCheck` per file, `seconds` the time taken to read and check the files.

    Example:
        >>> train = FashionMNIST("train")  # doctest: +SKIP
        >>> image, label = train[0]  # doctest: +SKIP
        >>> image.shape, train.classes[label]  # doctest: +SKIP
        (torch.Size([1, 28, 28]), 'ankle boot')
    """

    def __init__(
        self,
        split: str = "train",
        data_dir: str | os.PathLike | None = None,
        download: bool = False,
        *,
        facts: Mapping[str, SplitFacts] | None = None,
        strict: bool = True,
    ) -> None:
        import torch

        facts = facts or FACTS
        if split not in facts:
            raise ConfigError(f"split must be one of {', '.join(facts)}, got {split!r}")
        timer = Timer()
        self.split = split
        self.root = _find(data_dir, download, facts)
        images, labels, self.checks = read_split(self.root, facts[split], strict=strict)
        self.images = torch.from_numpy(images).unsqueeze(1)
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.classes = list(CLASSES)
        self.seconds = timer.stop()

    @property
    def verified(self) -> bool:
        """True when every file's checksum matched."""
        return all(c.verified for c in self.checks)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int | slice | Tensor) -> tuple[Tensor, Tensor]:
        """`(image, label)`: a `[1, 28, 28]` uint8 image and its int64 label (a batch of them for a slice)."""
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return f"FashionMNIST(split={self.split!r}, n={len(self)}, root='{self.root}')"


def _find(data_dir: str | os.PathLike | None, download_missing: bool, facts: Mapping[str, SplitFacts]) -> Path:
    try:
        return locate(data_dir, facts=facts)
    except DataError:
        if not download_missing or data_dir is not None or os.environ.get(ENV_VAR):
            raise  # an explicit directory that lacks the files is a mistake to report, not to paper over
    return download(facts=facts)


def get_fashion_mnist_labels(labels: Iterable[int] | Tensor) -> list[str]:
    """Text labels of numeric labels (d2l 3.5); DataError for a label outside 0..9.

    Example:
        >>> get_fashion_mnist_labels([0, 9])
        ['t-shirt', 'ankle boot']
    """
    values = labels.tolist() if hasattr(labels, "tolist") else list(labels)  # a tensor or an array
    bad = [v for v in values if not 0 <= int(v) < len(CLASSES) or int(v) != v]
    if bad:
        raise DataError(f"label {bad[0]!r} is not a Fashion-MNIST class: classes are 0..{len(CLASSES) - 1}")
    return [CLASSES[int(v)] for v in values]


def load_data_fashion_mnist(
    batch_size: int,
    resize: int | None = None,
    data_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    *,
    download: bool = False,
) -> tuple[ArrayLoader, ArrayLoader]:
    """Fashion-MNIST as `(train_iter, test_iter)` minibatch loaders (d2l 3.5), in memory: batches `(X, y)` of X
    float32 `[B, 1, 28, 28]` in [0, 1] (or `resize` x `resize`) and y int64 `[B]`. The training loader reshuffles
    every epoch from a generator seeded by `seed`; the test loader keeps file order.

    Example:
        >>> train_iter, test_iter = load_data_fashion_mnist(256, seed=0)  # doctest: +SKIP
        >>> X, y = next(iter(train_iter))  # doctest: +SKIP
        >>> X.shape, X.dtype, y.dtype  # doctest: +SKIP
        (torch.Size([256, 1, 28, 28]), torch.float32, torch.int64)
    """
    from linear_nets.data.batches import ArrayLoader

    train = FashionMNIST("train", data_dir, download)
    test = FashionMNIST("test", data_dir, download)
    train_iter = ArrayLoader((train.images, train.labels), batch_size, shuffle=True, resize=resize, seed=seed)
    test_iter = ArrayLoader((test.images, test.labels), batch_size, shuffle=False, resize=resize)
    return train_iter, test_iter
