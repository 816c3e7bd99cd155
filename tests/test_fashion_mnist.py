"""Fashion-MNIST: finding, verifying (and remembering), downloading (loopback only) and loading."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from linear_nets.data import fashion_mnist as fm
from linear_nets.data.fashion_mnist import (
    CLASSES,
    ChecksumError,
    FashionMNIST,
    download,
    get_fashion_mnist_labels,
    load_data_fashion_mnist,
    locate,
)
from linear_nets.data.idx import read_idx, write_idx
from linear_nets.errors import ConfigError, DataError


@pytest.fixture
def no_system_data(monkeypatch):
    monkeypatch.setattr(fm, "SYSTEM_DIRS", [])


@pytest.fixture
def fixture_dir(tmp_path, make_fashion_mnist, monkeypatch):
    """A small gzipped look-alike in tmp_path/data; its facts replace the published ones."""
    facts = make_fashion_mnist(tmp_path / "data")
    monkeypatch.setattr(fm, "FACTS", facts)
    return tmp_path / "data"


def count_hashes(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = fm.decompressed_sha256

    def counting(array):
        calls.append(array.size)
        return real(array)

    monkeypatch.setattr(fm, "decompressed_sha256", counting)
    return calls


# --- locate -------------------------------------------------------------------------------------------------------


def test_locate_explicit_dir_and_torchvision_layout(tmp_path, make_fashion_mnist):
    make_fashion_mnist(tmp_path / "a")
    make_fashion_mnist(tmp_path / "b" / "FashionMNIST" / "raw", gzip=False)
    assert locate(tmp_path / "a") == tmp_path / "a"
    assert locate(str(tmp_path / "b")) == tmp_path / "b" / "FashionMNIST" / "raw"


def test_explicit_dir_without_the_files_is_an_error_not_a_fallthrough(tmp_path, make_fashion_mnist, monkeypatch):
    make_fashion_mnist(fm.default_download_dir())  # a valid fallback exists, and must not be used
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"data_dir .*empty does not hold Fashion-MNIST \(missing train-images"):
        locate(tmp_path / "empty")
    monkeypatch.setenv("LINEAR_NETS_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="LINEAR_NETS_DATA"):
        locate()


def test_one_missing_file_is_named(tmp_path, make_fashion_mnist):
    make_fashion_mnist(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte, gzipped"):
        locate(tmp_path / "d")


def test_search_order(tmp_path, make_fashion_mnist, monkeypatch):
    explicit, env, system = tmp_path / "explicit", tmp_path / "env", tmp_path / "system"
    cache = fm.default_download_dir()
    for d in (explicit, env, cache, system / "FashionMNIST" / "raw"):
        make_fashion_mnist(d)
    monkeypatch.setattr(fm, "SYSTEM_DIRS", [system])
    monkeypatch.setenv("LINEAR_NETS_DATA", str(env))
    assert locate(explicit) == explicit
    assert locate() == env
    monkeypatch.delenv("LINEAR_NETS_DATA")
    assert locate() == cache
    assert cache == Path(os.environ["XDG_CACHE_HOME"]) / "linear-nets" / "fashion-mnist"
    for f in cache.iterdir():
        f.unlink()
    assert locate() == system / "FashionMNIST" / "raw"


def test_not_found_says_how_to_get_the_data(no_system_data):
    with pytest.raises(DataError) as info:
        locate()
    message = str(info.value)
    assert "\n" not in message
    for way in ("apt-get install dataset-fashion-mnist", "LINEAR_NETS_DATA", "linear-nets data download"):
        assert way in message


def test_user_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert fm.user_cache_dir() == tmp_path / "linear-nets"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert fm.user_cache_dir() == Path.home() / ".cache" / "linear-nets"


def test_plain_file_is_preferred_over_gz(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros(1, np.uint8), gzip=True)
    assert fm.data_file(tmp_path, "x") == tmp_path / "x.gz"
    write_idx(tmp_path / "x", np.zeros(1, np.uint8))
    assert fm.data_file(tmp_path, "x") == tmp_path / "x"
    assert fm.data_file(tmp_path, "y") is None


# --- load and verify ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_dataset_in_memory(tmp_path, make_fashion_mnist, compress):
    facts = make_fashion_mnist(tmp_path, n_train=30, n_test=10, gzip=compress)
    train = FashionMNIST("train", tmp_path, facts=facts)
    expected_images = read_idx(tmp_path / ("train-images-idx3-ubyte" + (".gz" if compress else "")))
    assert train.images.dtype == torch.uint8 and train.images.shape == (30, 1, 28, 28)
    assert train.labels.dtype == torch.int64 and train.labels.tolist() == [i % 10 for i in range(30)]
    np.testing.assert_array_equal(train.images[:, 0].numpy(), expected_images)
    assert len(train) == 30 and train.classes == CLASSES and train.root == tmp_path
    image, label = train[3]
    assert image.shape == (1, 28, 28) and label.item() == 3
    assert train.verified and [c.from_cache for c in train.checks] == [False, False]
    assert len(FashionMNIST("test", tmp_path, facts=facts)) == 10
    with pytest.raises(ConfigError, match="split must be one of train, test"):
        FashionMNIST("validation", tmp_path, facts=facts)


def test_second_load_does_not_hash_again(fixture_dir, monkeypatch):
    calls = count_hashes(monkeypatch)
    assert not any(c.from_cache for c in FashionMNIST("train", fixture_dir).checks)
    assert len(calls) == 2
    again = FashionMNIST("train", fixture_dir)
    assert len(calls) == 2 and all(c.from_cache for c in again.checks)


def test_changed_mtime_or_size_verifies_again(fixture_dir, monkeypatch):
    calls = count_hashes(monkeypatch)
    FashionMNIST("train", fixture_dir)
    labels = fixture_dir / "train-labels-idx1-ubyte.gz"
    st = labels.stat()
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    checks = FashionMNIST("train", fixture_dir).checks
    assert len(calls) == 3 and [c.from_cache for c in checks] == [True, False]
    # same content, different gzip container (another size): verified again, and still valid
    content, size = gzip.decompress(labels.read_bytes()), labels.stat().st_size
    with gzip.GzipFile(labels, "wb") as z:  # this header also holds the file name
        z.write(content)
    assert labels.stat().st_size != size
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert FashionMNIST("train", fixture_dir).verified and len(calls) == 4


def test_corrupt_or_unwritable_verification_cache_only_costs_a_hash(fixture_dir, monkeypatch, tmp_path):
    calls = count_hashes(monkeypatch)
    memo = fm.user_cache_dir() / "verified.json"
    memo.parent.mkdir(parents=True)
    for junk in ("{not json", "[1, 2]", '{"x": 1}', ""):
        memo.write_text(junk)
        assert FashionMNIST("test", fixture_dir).verified
    assert len(calls) == 8
    assert len(json.loads(memo.read_text())) == 4  # rewritten, valid: the two files and their decompressed copies
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache dir cannot be created
    assert FashionMNIST("test", fixture_dir).verified and FashionMNIST("test", fixture_dir).verified
    assert len(calls) == 12


def test_checksum_mismatch(tmp_path, make_fashion_mnist, monkeypatch):
    facts = make_fashion_mnist(tmp_path)
    other = make_fashion_mnist(tmp_path / "other", seed=1)  # same form, other pixels
    (tmp_path / "other" / "train-images-idx3-ubyte.gz").replace(tmp_path / "train-images-idx3-ubyte.gz")
    with pytest.raises(ChecksumError, match=r"train-images-idx3-ubyte.gz: SHA-256 .* corrupt or not the published"):
        FashionMNIST("train", tmp_path, facts=facts)
    loose = FashionMNIST("train", tmp_path, facts=facts, strict=False)
    assert not loose.verified and [c.verified for c in loose.checks] == [False, True]
    assert len(loose) == 40
    calls = count_hashes(monkeypatch)
    FashionMNIST("train", tmp_path, facts=facts, strict=False)
    assert len(calls) == 1  # a mismatch is never remembered as verified
    assert FashionMNIST("train", tmp_path, facts=other).images.shape[0] == 40


def write_split(directory: Path, images: np.ndarray, labels: np.ndarray, split: str = "train") -> None:
    names = fm.FACTS[split]
    write_idx(directory / f"{names.images.name}.gz", images, gzip=True)
    write_idx(directory / f"{names.labels.name}.gz", labels, gzip=True)


@pytest.mark.parametrize(
    ("images", "labels", "fragment"),
    [
        (np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 2], np.uint8), "4 images but 3 labels"),
        (np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 2, 10], np.uint8), "label 10 out of range"),
        (np.zeros((4, 28, 27), np.uint8), np.zeros(4, np.uint8), "expected uint8 data of shape Nx28x28, got uint8"),
        (np.zeros((4, 28, 28), np.float32), np.zeros(4, np.uint8), "got float32"),
        (np.zeros((4, 28, 28), np.uint8), np.zeros((4, 1), np.uint8), "shape N, got uint8 of shape 4x1"),
        (
            np.zeros((3, 28, 28), np.uint8),
            np.zeros(3, np.uint8),
            "3 examples, the published file has 4",
        ),
    ],
)
def test_form_checks(tmp_path, make_fashion_mnist, images, labels, fragment):
    facts = make_fashion_mnist(tmp_path, n_train=4)
    write_split(tmp_path, images, labels)
    with pytest.raises(DataError, match=fragment):
        FashionMNIST("train", tmp_path, facts=facts)


@pytest.mark.parametrize("labels", [[0, 9], torch.tensor([0, 9]), np.array([0, 9], np.uint8), (i for i in (0, 9))])
def test_get_fashion_mnist_labels(labels):
    assert get_fashion_mnist_labels(labels) == ["t-shirt", "ankle boot"]


@pytest.mark.parametrize("bad", [[10], [-1], [1.5]])
def test_get_fashion_mnist_labels_rejects_non_classes(bad):
    with pytest.raises(DataError, match="is not a Fashion-MNIST class"):
        get_fashion_mnist_labels(bad)


def test_load_data_fashion_mnist(fixture_dir):
    train_iter, test_iter = load_data_fashion_mnist(8, data_dir=fixture_dir, seed=3)
    X, y = next(iter(train_iter))
    assert X.shape == (8, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    epochs_2_and_3 = [[yb.tolist() for _, yb in train_iter] for _ in range(2)]
    again, _ = load_data_fashion_mnist(8, data_dir=fixture_dir, seed=3)
    epochs_1_to_3 = [[yb.tolist() for _, yb in again] for _ in range(3)]
    assert epochs_1_to_3[1:] == epochs_2_and_3  # same seed, same epochs...
    assert epochs_1_to_3[0] != epochs_1_to_3[1]  # ...and each epoch reshuffles
    assert torch.cat([yb for _, yb in test_iter]).tolist() == [i % 10 for i in range(20)]  # file order
    resized, _ = load_data_fashion_mnist(8, resize=64, data_dir=fixture_dir, seed=3)
    assert next(iter(resized))[0].shape == (8, 1, 64, 64)


@pytest.mark.needs_data
def test_real_fashion_mnist():
    train, test = FashionMNIST("train"), FashionMNIST("test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.labels.bincount().tolist() == [6000] * 10 and test.labels.bincount().tolist() == [1000] * 10
    assert train.verified and test.verified
    assert all(c.from_cache for c in FashionMNIST("test").checks)
    assert get_fashion_mnist_labels(train.labels[:2]) == ["ankle boot", "t-shirt"]


# --- download (loopback only) -------------------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path, make_fashion_mnist, monkeypatch, serve_files):
    """Serves a fixture dataset's four .gz files; its facts replace the published ones."""
    facts = make_fashion_mnist(tmp_path / "upstream")
    monkeypatch.setattr(fm, "FACTS", facts)
    return serve_files({p.name: p.read_bytes() for p in (tmp_path / "upstream").iterdir()})


def test_download_then_load_without_hashing(server, tmp_path, monkeypatch):
    dest = download(tmp_path / "dest", base_url=server.url, timeout=5)
    assert sorted(p.name for p in dest.iterdir()) == sorted(server.files)
    for name, body in server.files.items():
        assert (dest / name).read_bytes() == body
    calls = count_hashes(monkeypatch)
    assert FashionMNIST("train", dest).verified and calls == []  # verified while downloading
    download(dest, base_url=server.url, timeout=5)
    assert len(server.requests) == 4  # nothing fetched twice


def test_download_replaces_a_corrupt_file(server, tmp_path):
    dest = tmp_path / "dest"
    download(dest, base_url=server.url, timeout=5)
    (dest / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx(dest / "t10k-labels-idx1-ubyte", np.full(20, 3, np.uint8))  # plain, wrong: would shadow the .gz
    download(dest, base_url=server.url, timeout=5)
    assert server.requests[4:] == ["t10k-labels-idx1-ubyte.gz"]
    assert not (dest / "t10k-labels-idx1-ubyte").exists() and FashionMNIST("test", dest).verified


@pytest.mark.parametrize(
    ("mode", "fragment"), [("corrupt", "corrupt gzip|SHA-256"), ("drop", "connection closed after")]
)
def test_failed_download_leaves_nothing(server, tmp_path, mode, fragment):
    server.mode = mode
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match=rf"download of {server.url}train-images-idx3-ubyte.gz failed.*({fragment})"):
        download(dest, base_url=server.url, timeout=5)
    assert list(dest.iterdir()) == []


def test_download_of_a_missing_file_and_unreachable_server(server, tmp_path):
    with pytest.raises(DataError, match=r"Not Found.*nothing was saved"):
        download(tmp_path / "d", base_url=server.url + "elsewhere/", timeout=5)
    port = server.httpd.server_address[1]
    server.close()
    with pytest.raises(DataError, match="failed"):
        download(tmp_path / "d", base_url=f"http://127.0.0.1:{port}/", timeout=5)
    assert list((tmp_path / "d").iterdir()) == []


def test_dataset_downloads_on_request_only(server, no_system_data, monkeypatch):
    monkeypatch.setattr(fm, "BASE_URL", server.url)
    with pytest.raises(DataError, match="not found"):
        FashionMNIST("train")
    assert server.requests == []
    train = FashionMNIST("train", download=True)
    assert train.root == fm.default_download_dir() and len(train) == 40 and len(server.requests) == 4


def test_download_of_other_content_is_rejected(server, tmp_path, make_fashion_mnist):
    other = make_fashion_mnist(tmp_path / "other", seed=7)  # valid IDX, same form, different pixels
    assert other["train"].images.sha256 != fm.FACTS["train"].images.sha256
    server.files["train-images-idx3-ubyte.gz"] = (tmp_path / "other" / "train-images-idx3-ubyte.gz").read_bytes()
    with pytest.raises(DataError, match="SHA-256 of the decompressed data differs from the published one"):
        download(tmp_path / "dest", base_url=server.url, timeout=5)
    assert list((tmp_path / "dest").iterdir()) == []


def test_a_verified_gzip_is_read_from_its_decompressed_copy_afterwards(install_fake_fashion_mnist, monkeypatch):
    data = install_fake_fashion_mnist()
    first = fm.FashionMNIST("train", data)
    copy = fm._decompressed_path(fm.FACTS["train"].files[0])
    assert copy.exists()  # written once the .gz was verified
    read = []
    real = fm.read_idx
    monkeypatch.setattr(fm, "read_idx", lambda path, **kw: read.append(Path(path)) or real(path, **kw))
    second = fm.FashionMNIST("train", data)
    assert torch.equal(second.images, first.images) and torch.equal(second.labels, first.labels)
    assert copy in read and not any(p.suffix == ".gz" for p in read)
    # a copy changed behind our back (other size or mtime) is not trusted: the .gz is read again
    copy.write_bytes(copy.read_bytes()[:-1] + b"\x00")
    read.clear()
    third = fm.FashionMNIST("train", data)
    assert torch.equal(third.images, first.images)
    assert any(p.suffix == ".gz" for p in read)


# --- hostile files and servers: bounded memory and time (issue 18, case 9) -----------------------------------------


def gzip_bomb(header: bytes, zeros_mib: int) -> bytes:
    """A gzip file of `header` and then `zeros_mib` MiB of zeros, about 1 KB per MiB: one compressed MiB repeated
    (each copy starts after a full flush, so it decodes alone). Its CRC is wrong; a reader that stops early never
    gets that far."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    start = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return start + block * zeros_mib + c.flush()


@pytest.mark.parametrize("kind", ["gzip bomb", "sparse file"])
def test_a_header_declaring_more_than_the_published_shape_is_refused_before_reading(tmp_path, make_fashion_mnist,
                                                                                    kind):  # fmt: skip
    facts = make_fashion_mnist(tmp_path, n_train=40)
    header = struct.pack(">BBBBIII", 0, 0, 8, 3, 1_000_000, 28, 28)  # 784 MB of images declared
    for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"):
        (tmp_path / name).unlink(missing_ok=True)
    if kind == "gzip bomb":  # 1 MB holding 1 GiB of zeros
        path = tmp_path / "train-images-idx3-ubyte.gz"
        path.write_bytes(gzip_bomb(header, 1024))
        assert path.stat().st_size < 1_200_000
    else:  # 16 bytes on disk, 784 MB by its size
        path = tmp_path / "train-images-idx3-ubyte"
        path.write_bytes(header)
        os.truncate(path, len(header) + 1_000_000 * 28 * 28)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="the header declares 1000000 examples, more than the 40 of the published"):
            FashionMNIST("train", tmp_path, facts=facts)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_downloads_use_https_by_default():
    from linear_nets.cli import build_parser

    assert fm.BASE_URL.startswith("https://")
    assert build_parser().parse_args(["data", "download"]).base_url == fm.BASE_URL


def test_a_trickling_server_meets_the_deadline(server, tmp_path):
    server.mode = "trickle"  # one byte every 20 ms: each read returns well within the timeout, the whole never ends
    started = time.monotonic()
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz failed: the deadline passed after \d+ bytes"):
        download(tmp_path / "dest", base_url=server.url, timeout=5, deadline=0.5)
    assert time.monotonic() - started < 3
    assert list((tmp_path / "dest").iterdir()) == []


def test_a_killed_download_leaves_no_part_file_for_the_next_one(server, tmp_path):
    server.mode = "trickle"
    dest = tmp_path / "dest"
    proc = subprocess.Popen([sys.executable, "-m", "linear_nets", "data", "download", "--dest", str(dest),
                             "--base-url", server.url], stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not list(dest.glob(".*.part")):
            assert proc.poll() is None and time.monotonic() < deadline, "no download started"
            time.sleep(0.01)
        final = dest / "train-images-idx3-ubyte.gz"
        fm._remove_stale_parts(final)  # a live download's file is left alone
        assert len(list(dest.glob(".*.part"))) == 1
    finally:
        proc.kill()
        proc.wait()
    server.mode = "ok"
    download(dest, base_url=server.url, timeout=5)
    assert sorted(p.name for p in dest.iterdir()) == sorted(server.files)  # the four files, no .part
