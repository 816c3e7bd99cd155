"""Shared test set-up: figures never need a display, and tests never touch the user's cache."""

from __future__ import annotations

import contextlib
import errno
import gzip as gzip_module
import hashlib
import http.server
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# One compute thread in the test processes and all they start (CLI runs, kernels, scripts), set before torch is
# imported: the suite runs a worker per core (scripts/test.sh), and torch's default of a thread per core had the
# workers' threads waiting on each other at every small op (measured on 2 busy cores: 1.3-2.2x the wall time and
# 1.3x the CPU of one thread on the same tests).
os.environ.setdefault("OMP_NUM_THREADS", "1")

REAL_DATA = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch, request):
    """Every test gets its own empty user cache ($XDG_CACHE_HOME) and no $LINEAR_NETS_DATA; `needs_data` tests
    are skipped where the real Fashion-MNIST is not installed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.delenv("LINEAR_NETS_DATA", raising=False)
    if request.node.get_closest_marker("needs_data") and not REAL_DATA.is_dir():
        pytest.skip(f"needs the real Fashion-MNIST in {REAL_DATA}")


@pytest.fixture(autouse=True)
def work_in_a_scratch_dir(tmp_path_factory, monkeypatch):
    """Run every test (and its subprocesses) in an empty directory, so run directories and figures written to
    relative paths never land in the repository."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def _sha256_decompressed(path: Path) -> str:
    """Independent of the package: hash the file's bytes, gunzipped when it is gzipped."""
    data = path.read_bytes()
    return hashlib.sha256(gzip_module.decompress(data) if data[:2] == b"\x1f\x8b" else data).hexdigest()


def write_fashion_mnist(directory: Path, n_train: int = 40, n_test: int = 20, gzip: bool = True, seed: int = 0):
    """Write small Fashion-MNIST look-alikes (the four IDX files, every class present) into `directory`; return the
    matching facts table for `facts=` (or to patch in as `fashion_mnist.FACTS`)."""
    from linear_nets.data.fashion_mnist import FACTS, FileFacts, SplitFacts
    from linear_nets.data.idx import write_idx

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    facts = {}
    for split, n in (("train", n_train), ("test", n_test)):
        arrays = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8))
        files = []
        for published, array in zip(FACTS[split].files, arrays, strict=True):
            path = directory / (published.name + (".gz" if gzip else ""))
            write_idx(path, array, gzip=gzip)
            files.append(FileFacts(published.name, _sha256_decompressed(path), array.shape))
        facts[split] = SplitFacts(*files)
    return facts


@pytest.fixture
def full_disk(monkeypatch):
    """`fill(*names)`: from now on, writing a file named one of `names` (any file when none are given) fails as on a
    full disk: the write primitive (`os.fsync` of the atomic writer's temporary file) raises ENOSPC."""
    real_mkstemp, real_fsync, full, names_by_fd = tempfile.mkstemp, os.fsync, set(), {}

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        names_by_fd[fd] = Path(name).name  # ".summary.json.abc123.tmp", as linear_nets.atomic names it
        return fd, name

    def fsync(fd):
        name = names_by_fd.get(fd, "")
        if full == {"*"} or any(name.startswith(f".{n}.") for n in full):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    def fill(*names: str) -> None:
        full.update(names or ["*"])
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(os, "fsync", fsync)

    return fill


@pytest.fixture
def read_only(monkeypatch):
    """`protect(directory)`: no file can be created in `directory` from now on. chmod where that works; as root, for
    whom chmod forbids nothing, creating a file there and `os.access` asking for write fail as chmod makes them."""
    protected: list[Path] = []

    def inside(path) -> bool:
        return any(Path(path).resolve() == d for d in protected)

    def protect(directory: Path) -> None:
        protected.append(Path(directory).resolve())
        if os.geteuid() != 0:
            directory.chmod(0o555)
            return
        real_mkstemp, real_access = tempfile.mkstemp, os.access

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and inside(dir):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
            return real_mkstemp(*args, dir=dir, **kwargs)

        def access(path, mode, **kwargs):
            return False if mode & os.W_OK and inside(path) else real_access(path, mode, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(os, "access", access)

    yield protect
    for directory in protected:  # so the test's temporary files can be cleaned up
        directory.chmod(0o755)


@pytest.fixture
def make_fashion_mnist():
    """A builder of small Fashion-MNIST look-alikes: `make(directory, n_train=40, n_test=20, gzip=True, seed=0)`
    writes the four IDX files (every class present) and returns the matching facts table for `facts=`."""
    return write_fashion_mnist


@pytest.fixture
def install_fake_fashion_mnist(tmp_path, make_fashion_mnist, monkeypatch):
    """`install(n_train=60, n_test=30) -> data dir`: a small look-alike the package accepts as the real
    Fashion-MNIST (its facts table patched in), with the test working in `tmp_path`."""
    import linear_nets.data.fashion_mnist as fm

    def install(n_train: int = 60, n_test: int = 30) -> Path:
        data = tmp_path / "data"
        monkeypatch.setattr(fm, "FACTS", make_fashion_mnist(data, n_train=n_train, n_test=n_test))
        monkeypatch.chdir(tmp_path)
        return data

    return install


class FileServer:
    """An HTTP server on 127.0.0.1 (ephemeral port, own thread) serving `files`; `mode` breaks it on purpose:
    "corrupt" flips bits, "drop" closes the connection half way, "trickle" sends one byte every 20 ms."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.mode, self.requests = files, "ok", []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5

            def do_GET(self):
                folder, _, name = self.path.rpartition("/")
                server.requests.append(name)
                body = server.files.get(name) if folder == "/files" else None
                if body is None:
                    self.send_error(404)
                    return
                if server.mode == "corrupt":
                    body = body[: len(body) // 2] + bytes(b ^ 0x55 for b in body[len(body) // 2 :])
                self.send_response(200)
                claimed = len(body) + 1000 if server.mode == "drop" else len(body)
                self.send_header("Content-Length", str(claimed))
                self.end_headers()
                if server.mode == "trickle":
                    with contextlib.suppress(OSError):  # until the client gives up and closes the connection
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(0.02)
                else:
                    self.wfile.write(body[: len(body) // 2] if server.mode == "drop" else body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)


@pytest.fixture
def serve_files():
    """`serve({name: bytes})` starts a loopback `FileServer` at `.url`; every one is shut down after the test."""
    servers: list[FileServer] = []

    def serve(files: dict[str, bytes]) -> FileServer:
        servers.append(FileServer(files))
        return servers[-1]

    yield serve
    for s in servers:
        s.close()
