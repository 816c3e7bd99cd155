"""`linear-nets data ...`: the real command in a subprocess where exit status and stderr matter, else in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from linear_nets.cli import main
from linear_nets.data import fashion_mnist as fm


def linear_nets(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m linear_nets ARGS` with the test's environment (its isolated cache included)."""
    return subprocess.run(
        [sys.executable, "-m", "linear_nets", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("linear-nets: error: ")
    assert "Traceback" not in result.stderr and fragment in result.stderr


@pytest.mark.parametrize("command", ["path", "info", "show"])
def test_missing_data_is_one_line_and_exit_2(tmp_path, command):
    result = linear_nets("data", command, "--data-dir", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert_one_line_error(result, "does not hold Fashion-MNIST")
    assert "apt-get install dataset-fashion-mnist" in result.stderr and "linear-nets data download" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_path_finds_a_directory_given_either_way(tmp_path, make_fashion_mnist):
    make_fashion_mnist(tmp_path / "d" / "FashionMNIST" / "raw")
    result = linear_nets("data", "path", "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 0 and result.stdout == f"{tmp_path / 'd' / 'FashionMNIST' / 'raw'}\n"
    result = linear_nets("data", "path", env={"LINEAR_NETS_DATA": str(tmp_path / "d")})
    assert result.returncode == 0 and result.stdout.strip() == str(tmp_path / "d" / "FashionMNIST" / "raw")


def test_info_on_a_fixture_reports_counts_and_the_checksum_mismatch(tmp_path, make_fashion_mnist):
    make_fashion_mnist(tmp_path, n_train=40, n_test=20)  # right form, but not the published bytes
    result = linear_nets("data", "info", "--data-dir", str(tmp_path))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert f"Fashion-MNIST in {tmp_path}" in out
    assert out.count("NOT VERIFIED") == 4
    assert "0 t-shirt          4       2" in out and "9 ankle boot       4       2" in out
    assert "total             40      20" in out and "loaded 60 images in" in out
    assert result.stderr.count("linear-nets: warning: ") == 4 and "Traceback" not in result.stderr


def test_info_verified_then_remembered(tmp_path, make_fashion_mnist, monkeypatch, capsys):
    monkeypatch.setattr(fm, "FACTS", make_fashion_mnist(tmp_path))
    assert main(["data", "info", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("verified (hashed now)") == 4
    assert main(["data", "info", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("verified (remembered from an earlier check)") == 4


@pytest.mark.needs_data
def test_info_on_the_real_data():
    result = linear_nets("data", "info")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("verified") == 4 and "NOT VERIFIED" not in result.stdout
    assert "3 dress         6000    1000" in result.stdout and "total          60000   10000" in result.stdout


def test_show_writes_a_labelled_grid(tmp_path, make_fashion_mnist, monkeypatch, capsys):
    monkeypatch.setattr(fm, "FACTS", make_fashion_mnist(tmp_path / "data"))
    out = tmp_path / "grid.png"
    assert main(["data", "show", "--data-dir", str(tmp_path / "data"), "--out", str(out), "--n", "12"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}: 12 train images" in capsys.readouterr().out
    svg = tmp_path / "grid.svg"
    args = ["data", "show", "--data-dir", str(tmp_path / "data"), "--split", "test", "--seed", "1", "--out", str(svg)]
    assert main(args) == 0
    text = svg.read_text()
    assert text.count("<image") == 18 and sorted(os.listdir(tmp_path)) == ["data", "grid.png", "grid.svg"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--n", "41"], "more than the 40 images of the train split"),
        (["--n", "201"], "--n must be at most 200"),
        (["--out", "grid.jpg"], "use a .png or .svg file name"),
        (["--out", "missing-dir/grid.png"], "does not exist"),
    ],
)
def test_show_rejects_bad_arguments_and_writes_nothing(
    tmp_path, make_fashion_mnist, monkeypatch, capsys, args, fragment
):
    monkeypatch.setattr(fm, "FACTS", make_fashion_mnist(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    assert main(["data", "show", "--data-dir", str(tmp_path / "data"), *args]) == 2
    assert fragment in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["data"]


def test_download_command(tmp_path, make_fashion_mnist, monkeypatch, serve_files, capsys):
    monkeypatch.setattr(fm, "FACTS", make_fashion_mnist(tmp_path / "upstream"))
    server = serve_files({p.name: p.read_bytes() for p in (tmp_path / "upstream").iterdir()})
    assert main(["data", "download", "--base-url", server.url, "--timeout", "5"]) == 0
    assert capsys.readouterr().out == f"{fm.default_download_dir()}\n"
    assert main(["data", "path"]) == 0 and capsys.readouterr().out == f"{fm.default_download_dir()}\n"
    dest = tmp_path / "elsewhere"
    assert main(["data", "download", "--dest", str(dest), "--base-url", server.url, "--timeout", "5"]) == 0
    assert f"--data-dir {dest}" in capsys.readouterr().err and len(list(dest.iterdir())) == 4
    server.mode = "drop"
    assert main(["data", "download", "--dest", str(tmp_path / "bad"), "--base-url", server.url]) == 2
    assert "nothing was saved" in capsys.readouterr().err and list((tmp_path / "bad").iterdir()) == []


def test_info_on_a_truncated_file_is_one_line_exit_2(tmp_path, make_fashion_mnist, capsys):
    make_fashion_mnist(tmp_path)
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-100])
    assert main(["data", "info", "--data-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert f"{images}: corrupt gzip data" in captured.err
