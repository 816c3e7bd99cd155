"""Fashion-MNIST (d2l 3.5): find the four IDX files, verify them, download them on request, load them into memory.

The dataset's facts are data (`FACTS`, `CLASSES`); every function that checks files takes a `facts=` table, so tests
can use small fixture datasets. A verified file is remembered by (resolved path, size, mtime) in `verified.json` in
the user cache, so later loads skip the hash. torch is imported only by the functions that make tensors, so finding
and checking files (`linear-nets data path`) answers in a tenth of a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import tempfile
import time
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

from linear_nets import checks
from linear_nets.atomic import atomic_write_text
from linear_nets.data.idx import idx_header, idx_payload, read_idx, write_idx
from linear_nets.errors import ConfigError, DataError
from linear_nets.timing import Timer

if TYPE_CHECKING:
    from torch import Tensor

    from linear_nets.data.batches import ArrayLoader

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
"""Text labels of the classes 0..9, as d2l's `get_fashion_mnist_labels` names them."""

BASE_URL = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
"""Zalando Research's repository, over https (their S3 mirror serves plain http only); file `<name>.gz` is there."""

SYSTEM_DIRS = [Path("/usr/share/datasets/fashion-mnist")]
"""Directories a system package installs the data into (Debian's `dataset-fashion-mnist`)."""

ENV_VAR = "LINEAR_NETS_DATA"
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
    """The directory holding all four Fashion-MNIST files (gzipped or not), or its torchvision-style `FashionMNIST/raw`.
    First match wins: `data_dir`, `$LINEAR_NETS_DATA` (either, when given, must hold them: no falling through), then
    `default_download_dir()` and `SYSTEM_DIRS`. Raises DataError, saying how to get them, when none holds them.

    Example:
        >>> locate()  # doctest: +SKIP
        PosixPath('/usr/share/datasets/fashion-mnist')
    """
    names = [f.name for split in (facts or FACTS).values() for f in split.files]
    what, given = ("data_dir", data_dir) if data_dir is not None else (ENV_VAR, os.environ.get(ENV_VAR) or None)
    if given is not None:
        directory = Path(given).expanduser()
        if (found := _holding(directory, names)) is None:
            missing = [n for n in names if not data_file(directory, n)]
            raise DataError(
                f"{what} {directory} does not hold Fashion-MNIST (missing {', '.join(missing)}, gzipped or not, "
                f"also not under {directory / 'FashionMNIST' / 'raw'}); {HOW_TO_GET}"
            )
        return found
    searched = [default_download_dir(), *SYSTEM_DIRS]
    for directory in searched:
        if found := _holding(directory, names):
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


def _stamp(path: Path, sha256: str) -> tuple[str, dict]:
    """What `verified.json` keeps of a file verified to have `sha256`: (resolved path, {size, mtime, sha256}); a
    file is remembered when its stamp is among the memo's items."""
    try:
        st = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return str(path.resolve()), {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}


def _read_memo() -> dict:
    """The remembered checks; an unreadable or malformed file counts as empty (the files are just hashed again)."""
    try:
        memo = json.loads(_memo_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _remember(stamp: tuple[str, dict]) -> None:
    """Record a verified file; failing to write (read-only home, full disk) only costs a hash next time."""
    memo = _read_memo()
    memo[stamp[0]] = stamp[1]
    with contextlib.suppress(OSError):
        _memo_path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(_memo_path(), json.dumps(memo, indent=1, sort_keys=True))


def read_checked(path: Path, facts: FileFacts) -> np.ndarray:
    """`read_idx(path)`, refused before its data is read or decompressed unless the header declares uint8 data of the
    per-example shape of `facts` and no more examples than the published file."""

    def check_form(dtype: np.dtype, shape: tuple[int, ...]) -> None:
        if dtype != np.uint8 or shape[1:] != facts.shape[1:]:  # (tuples of different lengths differ)
            want = "x".join(map(str, ("N", *facts.shape[1:])))
            got = "x".join(map(str, shape))
            native = dtype.newbyteorder("=")  # the header's big-endian type, named as the array would be
            raise DataError(f"{path}: expected uint8 data of shape {want}, got {native} of shape {got}")
        if shape[0] > facts.shape[0]:
            raise DataError(f"{path}: the header declares {shape[0]} examples, more than the {facts.shape[0]} of "
                            "the published file; nothing was read")  # fmt: skip

    return read_idx(path, accept=check_form)


def _decompressed_path(facts: FileFacts) -> Path:
    return user_cache_dir() / "decompressed" / f"{facts.name}-{facts.sha256[:16]}"


def _read_file(directory: Path, facts: FileFacts) -> tuple[np.ndarray, FileCheck]:
    """Read one file and check that it is the published one: its example count, then its SHA-256, unless remembered
    (a match is remembered, a mismatch never is). A verified .gz is read from its decompressed copy in the user cache,
    remembered like the originals (a few ms instead of 0.4 s for the training images)."""
    path = data_file(directory, facts.name)
    if path is None:
        raise DataError(f"{directory / facts.name}(.gz) is missing; {HOW_TO_GET}")
    stamp = _stamp(path, facts.sha256)  # before reading: a file changed while it is read then fails the next check
    copy, memo = _decompressed_path(facts), _read_memo()
    remembered = stamp in memo.items()
    if remembered and path.suffix == ".gz" and copy.exists() and _stamp(copy, facts.sha256) in memo.items():
        return read_checked(copy, facts), FileCheck(path, verified=True, from_cache=True)
    array = read_checked(path, facts)
    if array.shape != facts.shape:
        problem = f"{path}: {array.shape[0]} examples, the published file has {facts.shape[0]}"
        return array, FileCheck(path, verified=False, from_cache=False, problem=problem)
    if not remembered:
        actual = decompressed_sha256(array)
        if actual != facts.sha256:
            problem = (
                f"{path}: SHA-256 of the decompressed data is {actual[:16]}..., expected {facts.sha256[:16]}...: "
                "the file is corrupt or not the published Fashion-MNIST; delete it and get it again"
            )
            return array, FileCheck(path, verified=False, from_cache=False, problem=problem)
        _remember(stamp)
    if path.suffix == ".gz":
        with contextlib.suppress(OSError):  # failing to write the copy only costs the .gz next time
            copy.parent.mkdir(parents=True, exist_ok=True)
            write_idx(copy, array)
            _remember(_stamp(copy, facts.sha256))
    return array, FileCheck(path, verified=True, from_cache=remembered)


# --- download -----------------------------------------------------------------------------------------------------


def _fetch(url: str, final: Path, facts: FileFacts, timeout: float, deadline: float) -> None:
    """Stream `url` into a temporary file next to `final` (locked while written: see `_remove_stale_parts`), verify
    it, then rename it; on failure, or past `deadline` (a `time.monotonic()` time), leave nothing."""
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = 0
            while chunk := response.read1(1 << 20):  # what has arrived: a trickle cannot hold one read forever
                total += len(chunk)
                if total > checks.MAX_DOWNLOAD_BYTES:
                    raise DataError(f"the server sent more than {checks.MAX_DOWNLOAD_BYTES} bytes")
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
    _remember(_stamp(final, facts.sha256))  # just verified: the first load pays nothing


def _remove_stale_parts(final: Path) -> None:
    """Remove the `.<name>.*.part` files that killed downloads left (a SIGKILL cannot be caught): those not locked."""
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

    Each file is verified (SHA-256 of the decompressed bytes, shape) before it is renamed to `<name>.gz`, so no
    download leaves a file that looks valid and is not; a plain file it replaces is removed, lest it shadow the new
    one. Raises DataError, naming the URL, when a download fails or passes its deadline.
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
        with contextlib.suppress(DataError):
            if _read_file(directory, file_facts)[1].verified:
                continue
        _fetch(f"{base_url}{file_facts.name}.gz", final, file_facts, timeout, end)
        with contextlib.suppress(FileNotFoundError):
            (directory / file_facts.name).unlink()  # an unverified plain file would shadow the new .gz
    return directory


# --- the dataset in memory ----------------------------------------------------------------------------------------


class FashionMNIST:
    """One split ("train": 60,000 images, or "test": 10,000) of Fashion-MNIST in memory, read once from its IDX files
    (found by `locate` from `data_dir`, or downloaded into the user cache when nowhere and `download`) and checked
    against `facts`: a wrong form, images and labels that disagree in count, or a label outside 0..9 raise DataError;
    with `strict`, a file that is not the published one raises `ChecksumError`, else `checks` says so.
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
        (images, image_check), (labels, label_check) = (_read_file(self.root, f) for f in facts[split].files)
        self.checks = (image_check, label_check)
        if len(images) != len(labels):
            raise DataError(f"{self.root}: {len(images)} images but {len(labels)} labels; they must agree")
        if labels.size and labels.max() >= len(CLASSES):
            raise DataError(f"{label_check.path}: label {labels.max()} out of range: classes are 0..{len(CLASSES) - 1}")
        if strict and not self.verified:
            raise ChecksumError(next(c.problem for c in self.checks if not c.verified))
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
