"""A run directory is untrusted input: every file `predict`, `evaluate` and `--resume` read, tampered with, gives one
line naming the file and the field, exit 2, and no change to any file (issue 18, case 6).

The runs are trained once per module on a tiny Fashion-MNIST look-alike; each test tampers with a copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import safetensors.torch
import torch
from conftest import write_fashion_mnist
from PIL import Image

import linear_nets.data.fashion_mnist as fm
from linear_nets.cli import main
from linear_nets.pipeline.recorder import RunRecorder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A finished softmax run and a linreg run, written as `train` writes them (without training, which the
    checks do not need), and a softmax run trained on a tiny look-alike and interrupted after epoch 1 (concise,
    momentum: its checkpoint holds an optimizer's state)."""
    from linear_nets.pipeline.config import LinregConfig, SoftmaxConfig, to_dict
    from linear_nets.pipeline.runs import Run, run_config

    root = tmp_path_factory.mktemp("runs")
    softmax = Run.create("softmax", run_config(to_dict(SoftmaxConfig()), {}, {"data_dir": None}), root / "softmax")
    softmax.save_model({"W": torch.zeros(784, 10), "b": torch.zeros(10)},
                       {"model": "softmax", "impl": "manual", "num_inputs": 784, "classes": fm.CLASSES})  # fmt: skip
    synthetic = {"true_w": [2.0, -3.4], "true_b": 4.2, "samples": 50, "noise": 0.01}
    linreg = Run.create("linreg", run_config(to_dict(LinregConfig()), {"synthetic": synthetic}), root / "linreg")
    weights = {"w": torch.tensor([2.0, -3.4], dtype=torch.float64), "b": torch.tensor(4.2, dtype=torch.float64)}
    linreg.save_model(weights, {"model": "linreg", "impl": "scratch", "solver": "sgd"})

    facts = write_fashion_mnist(root / "data", n_train=40, n_test=20)
    on_epoch_end = RunRecorder.on_epoch_end

    def interrupt_after_epoch_1(self, record):
        on_epoch_end(self, record)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fm, "FACTS", facts)
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        mp.setattr(RunRecorder, "on_epoch_end", interrupt_after_epoch_1)
        argv = ["train", "softmax", "--impl", "concise", "--optimizer", "momentum", "--epochs", "2", "--batch-size",
                "16", "--data-dir", str(root / "data"), "--out", str(root / "interrupted")]  # fmt: skip
        assert main(argv) == 130
    return {"softmax": softmax.path, "linreg": linreg.path, "interrupted": root / "interrupted", "facts": facts}


def edit_json(path: Path, change: Callable[[dict], object]) -> None:
    values = json.loads(path.read_text())
    change(values)
    path.write_text(json.dumps(values))


def edit_tensors(path: Path, change: Callable[[dict], object], describe: bool = False) -> None:
    """Change the tensors of a safetensors file and sign it again (its SHA-256 in the description), as a careful
    tamperer would; `describe` also rewrites the description's shapes and dtypes to match."""
    tensors = safetensors.torch.load(path.read_bytes())
    change(tensors)
    data = safetensors.torch.save(tensors)
    path.write_bytes(data)

    def sign(d: dict) -> None:
        d["sha256"] = hashlib.sha256(data).hexdigest()
        if describe:
            d["tensors"] = {k: {"shape": list(v.shape), "dtype": str(v.dtype)[6:]} for k, v in tensors.items()}

    edit_json(path.with_suffix(".json"), sign)


def replace_with(path: Path, make: Callable[[Path], object]) -> None:
    path.unlink()
    make(path)


def set_key(*keys, value) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        for key in keys[:-1]:
            d = d[key]
        d[keys[-1]] = value

    return change


def set_item(name: str, index, value) -> Callable[[dict], None]:
    return lambda tensors: tensors[name].__setitem__(index, value)


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (a FIFO opened for reading waits for a writer forever)."""

    def fail(*_):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Each path's size and modification time: what any write would change."""
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in directory.rglob("*")}


SOFTMAX_CASES = {
    "options a list": ("config.json", lambda p: edit_json(p, set_key("options", value=[1])),
                       "config.json: options must be a JSON object, got list"),
    "data_dir a number": ("config.json", lambda p: edit_json(p, set_key("options", "data_dir", value=5)),
                          "config.json: options.data_dir must be a string, got 5"),
    "table a string": ("config.json", lambda p: edit_json(p, set_key("options", "table", value="x")),
                       "config.json: options.table must be a JSON object, got str"),
    "meta a list": ("model.json", lambda p: edit_json(p, set_key("meta", value=[1])),
                    "model.json: meta must be a JSON object, got list"),
    "num_inputs huge": ("model.json", lambda p: edit_json(p, set_key("meta", "num_inputs", value=10**12)),
                        "model.json: meta.num_inputs must be 784 (the inputs of the run's data), got 1000000000000"),
    "num_inputs a string": ("model.json", lambda p: edit_json(p, set_key("meta", "num_inputs", value="784")),
                            "model.json: meta.num_inputs must be 784 (the inputs of the run's data), got '784'"),
    "three classes": ("model.json", lambda p: edit_json(p, set_key("meta", "classes", value=["a", "b", "c"])),
                      "model.json: meta.classes must be the run's 10 classes"),
    "negative shape": ("model.json", lambda p: edit_json(p, set_key("tensors", "W", "shape", value=[-1, 10])),
                       "model.json: tensors.W.shape must be a list of sizes >= 0, got [-1, 10]"),
    "nested too deeply": ("model.json", lambda p: p.write_text("[" * 100_000 + "]" * 100_000),
                          "model.json is corrupt: nested too deeply"),
    "NaN weight": ("model.safetensors", lambda p: edit_tensors(p, set_item("W", (0, 0), float("nan"))),
                   "model.safetensors: tensor 'W' holds NaN or infinite values"),
    "infinite bias": ("model.safetensors", lambda p: edit_tensors(p, set_item("b", 3, float("inf"))),
                      "model.safetensors: tensor 'b' holds NaN or infinite values"),
    "dtype not as described": ("model.safetensors", lambda p: edit_tensors(p, lambda t: t.update(W=t["W"].double())),
                               "model.safetensors: tensor 'W' is float64 of shape [784, 10], but model.json says "
                               "float32 of shape [784, 10]"),
    "dtype not the model's": ("model.safetensors",
                              lambda p: edit_tensors(p, lambda t: t.update(W=t["W"].bfloat16()), describe=True),
                              "model.safetensors: tensor 'W' is bfloat16, but this model needs float32"),
    "a directory": ("model.safetensors", lambda p: replace_with(p, Path.mkdir),
                    "model.safetensors is not a regular file"),
    "a FIFO": ("model.safetensors", lambda p: replace_with(p, os.mkfifo), "model.safetensors is not a regular file"),
    "/dev/zero": ("config.json", lambda p: replace_with(p, lambda q: q.symlink_to("/dev/zero")),
                  "config.json is not a regular file"),
    "1 GiB sparse": ("config.json", lambda p: os.truncate(p, 1 << 30),
                     "config.json is 1073741824 bytes, more than the 268435456 this package reads"),
}  # fmt: skip


def assert_one_line_error(argv: list[str], fragment: str, capsys, untouched: Path) -> None:
    before = snapshot(untouched)
    capsys.readouterr()
    with deadline(10):
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("linear-nets: error: ") and fragment in err, err
    assert snapshot(untouched) == before


@pytest.mark.parametrize(("file", "tamper", "fragment"), SOFTMAX_CASES.values(), ids=SOFTMAX_CASES)
def test_a_tampered_softmax_run_is_refused_by_predict(runs, tmp_path, capsys, file, tamper, fragment):
    run = shutil.copytree(runs["softmax"], tmp_path / "run")
    Image.new("L", (28, 28)).save(tmp_path / "shirt.png")
    tamper(run / file)
    assert_one_line_error(["predict", str(run), str(tmp_path / "shirt.png")], fragment, capsys, tmp_path)


LINREG_CASES = {
    "model a number": ("config.json", lambda p: edit_json(p, set_key("model", value=5)),
                       "config.json: model must be one of softmax, linreg, got 5"),
    "true_w a string": ("config.json", lambda p: edit_json(p, set_key("data", "synthetic", "true_w", value="x")),
                        "config.json: data.synthetic.true_w must be a non-empty list of finite numbers, got 'x'"),
    "samples a float": ("config.json", lambda p: edit_json(p, set_key("data", "synthetic", "samples", value=2.5)),
                        "config.json: data.synthetic.samples must be an integer >= 1, got 2.5"),
    "no data": ("config.json", lambda p: edit_json(p, lambda c: c.pop("data")),
                "config.json: data.synthetic is missing"),
    "integer weights": ("model.safetensors", lambda p: edit_tensors(p, lambda t: t.update(w=t["w"].long()), True),
                        "model.safetensors: tensor 'w' is int64, but this model needs float64"),
    "NaN weight": ("model.safetensors", lambda p: edit_tensors(p, set_item("w", 0, float("nan"))),
                   "model.safetensors: tensor 'w' holds NaN or infinite values"),
}  # fmt: skip


@pytest.mark.parametrize(("file", "tamper", "fragment"), LINREG_CASES.values(), ids=LINREG_CASES)
def test_a_tampered_linreg_run_is_refused_by_evaluate(runs, tmp_path, capsys, file, tamper, fragment):
    run = shutil.copytree(runs["linreg"], tmp_path / "run")
    tamper(run / file)
    assert_one_line_error(["evaluate", str(run)], fragment, capsys, tmp_path)


CHECKPOINT_CASES = {
    "epoch a string": (lambda p: edit_json(p.with_suffix(".json"), set_key("meta", "epoch", value="x")),
                       "checkpoint-1.json: meta.epoch must be the epoch in the file's name, got 'x'"),
    "NaN weight": (lambda p: edit_tensors(p, set_item("model.W", (0, 0), float("nan"))),
                   "checkpoint-1.safetensors: tensor 'W' holds NaN or infinite values"),
    "momentum a string": (lambda p: edit_json(p.with_suffix(".json"),
                                              set_key("meta", "optimizer", "param_groups", 0, "momentum", value="x")),
                          "checkpoint-1.safetensors does not fit this model: its optimizer's param_groups are not "
                          "those of this optimizer"),
    "scalars a list": (lambda p: edit_json(p.with_suffix(".json"), set_key("meta", "optimizer", "scalars", value=[])),
                       "checkpoint-1.json: meta.optimizer must be an object with a list param_groups"),
    "config a list": (lambda p: edit_json(p.with_suffix(".json"), set_key("meta", "config", value=[])),
                      "checkpoint-1.safetensors: its description's config is not a JSON object"),
    "description a FIFO": (lambda p: replace_with(p.with_suffix(".json"), os.mkfifo),
                           "checkpoint-1.json is not a regular file"),
}  # fmt: skip


@pytest.mark.parametrize(("tamper", "fragment"), CHECKPOINT_CASES.values(), ids=CHECKPOINT_CASES)
def test_a_tampered_checkpoint_is_refused_by_resume(runs, tmp_path, monkeypatch, capsys, tamper, fragment):
    monkeypatch.setattr(fm, "FACTS", runs["facts"])
    run = shutil.copytree(runs["interrupted"], tmp_path / "run")
    tamper(run / "checkpoint-1.safetensors")
    assert_one_line_error(["train", "softmax", "--resume", str(run)], fragment, capsys, tmp_path)


def test_the_runs_this_package_writes_pass_the_checks(runs, tmp_path):
    """The checks refuse tampering, not the runs this package writes (resuming them: tests/test_cli_softmax.py)."""
    from linear_nets.pipeline.runs import Run
    from linear_nets.pipeline.saved import linreg_on_its_data, load_softmax

    assert load_softmax(Run.open(runs["softmax"]))[2] == fm.CLASSES
    assert linreg_on_its_data(Run.open(runs["linreg"]))["error_w"] == pytest.approx([0, 0], abs=1e-6)
    tensors, state = Run.open(runs["interrupted"]).load_checkpoint()
    assert state["epoch"] == 1 and torch.isfinite(tensors["model.W"]).all()


# --- predict's images (issue 18, case 10) --------------------------------------------------------------------------


def zeros_png(width: int, height: int) -> bytes:
    """A valid grey PNG of zeros, a few hundred KB even at 20000 x 20000: one compressed MiB of zero rows repeated
    (each copy after a full flush, so it decodes alone); the Adler-32 of n zeros is (n mod 65521) << 16 | 1."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = width + 1  # a filter byte, then the pixels
    rows = max(1, (1 << 20) // row)
    c = zlib.compressobj(9)
    first = c.compress(bytes(row * rows)) + c.flush(zlib.Z_FULL_FLUSH)  # begins with the zlib header
    block = c.compress(bytes(row * rows)) + c.flush(zlib.Z_FULL_FLUSH)
    blocks, rest = divmod(height, rows)
    tail = (c.compress(bytes(row * rest)) + c.flush())[:-4] + struct.pack(">I", (row * height % 65521) << 16 | 1)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = first + block * (blocks - 1) + tail
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_an_image_of_too_many_pixels_is_refused_before_decoding(runs, tmp_path, monkeypatch, capsys):
    from matplotlib import image as mpimg

    (tmp_path / "huge.png").write_bytes(zeros_png(20000, 20000))  # 396 KB; decoding it took 20 s and 2.6 GB
    assert (tmp_path / "huge.png").stat().st_size < 400_000

    def decode(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(mpimg, "imread", decode)
    fragment = "huge.png is 20000 x 20000 pixels, more than the 16,777,216 (4096 x 4096) predict decodes"
    assert_one_line_error(["predict", str(runs["softmax"]), str(tmp_path / "huge.png")], fragment, capsys, tmp_path)


def test_bad_images_among_good_ones_are_reported_and_the_others_predicted(runs, tmp_path, capsys):
    for name in ("a.png", "b.png"):
        Image.new("L", (28, 28), 255 * (name == "b.png")).save(tmp_path / name)
    (tmp_path / "text.png").write_text("not a PNG")
    os.mkfifo(tmp_path / "fifo.png")
    paths = [str(tmp_path / name) for name in ("a.png", "text.png", "fifo.png", "b.png")]
    with deadline(10):
        assert main(["predict", str(runs["softmax"]), *paths]) == 2
    out, err = capsys.readouterr()
    assert [line.split(": ")[0] for line in out.splitlines()] == [paths[0], paths[3]]
    assert err.splitlines() == [
        f"linear-nets: error: image {paths[1]} cannot be read as an image: not a format PIL knows",
        f"linear-nets: error: image {paths[2]} is not a regular file",
    ]


def test_predict_n_is_capped_like_data_show_n(runs, tmp_path, capsys):
    assert_one_line_error(["predict", str(runs["softmax"]), "--n", "201"], "--n must be at most 200, got 201", capsys,
                          tmp_path)  # fmt: skip
