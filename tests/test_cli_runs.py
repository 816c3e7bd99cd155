"""Run directories end to end through the CLI: kill and resume, Ctrl-C, evaluate, predict, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from linear_nets.cli import main
from linear_nets.pipeline.runs import Run

pytestmark = pytest.mark.needs_data

TRAIN = ["train", "softmax", "--epochs", "5", "--batch-size", "64", "--threads", "1"]


def cli(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "linear_nets", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C must reach it however pytest was started: a script's `cmd &` starts cmd with SIGINT ignored, and a
        # Python that starts with SIGINT ignored never raises KeyboardInterrupt (the Ctrl-C test then saw exit 0).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training ended before {path.name} appeared: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{path.name} did not appear in {timeout} s"
        time.sleep(0.005)


def metrics_without_seconds(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """A complete 5-epoch run (concise, SGD): the reference every interrupted run must match exactly.

    Trained in this process (a new one would cost an import of torch and nothing more); the interrupted runs train
    in their own, so the comparison also spans processes. The module scope outlives the per-test cache and working
    directory (conftest.py), so this sets both itself."""
    cwd = tmp_path_factory.mktemp("straight")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        mp.chdir(cwd)
        assert main([*TRAIN, "--out", "run"]) == 0
    return cwd / "run"


def resume_in_this_process(directory: Path, monkeypatch, capsys) -> str:
    """`linear-nets train softmax --resume run` in `directory`; returns its stdout. Nothing kills the resumed run,
    so it needs no process of its own."""
    monkeypatch.chdir(directory)
    capsys.readouterr()
    assert main(["train", "softmax", "--resume", "run", "--threads", "1"]) == 0
    return capsys.readouterr().out


def assert_same_run(resumed: Path, reference: Path) -> None:
    ours, theirs = Run.open(resumed).load_model()[0], Run.open(reference).load_model()[0]
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert metrics_without_seconds(resumed) == metrics_without_seconds(reference)


def test_killed_run_resumes_to_exactly_the_uninterrupted_result(tmp_path, uninterrupted, monkeypatch, capsys):
    proc = cli(*TRAIN, "--out", "run", cwd=tmp_path)
    wait_for(tmp_path / "run" / "checkpoint-2.json", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert "resuming run after epoch" in resume_in_this_process(tmp_path, monkeypatch, capsys)
    assert_same_run(tmp_path / "run", uninterrupted)


def test_ctrl_c_saves_the_last_epoch_and_says_how_to_resume(tmp_path, uninterrupted, monkeypatch, capsys):
    proc = cli(*TRAIN, "--out", "run", "--checkpoint-every", "0", cwd=tmp_path)
    wait_for(tmp_path / "run" / "metrics.jsonl", proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "Resume with: linear-nets train softmax --resume run" in err
    assert list((tmp_path / "run").glob("checkpoint-*.safetensors"))  # saved although --checkpoint-every 0
    resume_in_this_process(tmp_path, monkeypatch, capsys)
    assert_same_run(tmp_path / "run", uninterrupted)


def test_evaluate_reproduces_the_final_test_accuracy(uninterrupted, capsys):
    assert main(["evaluate", str(uninterrupted)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((uninterrupted / "summary.json").read_text())
    evaluation = json.loads((uninterrupted / "evaluation.json").read_text())
    assert evaluation["test_accuracy"] == pytest.approx(summary["final"]["test_accuracy"], abs=1e-12)
    assert f"test accuracy {summary['final']['test_accuracy']:.4f}" in out
    confusion = np.array(evaluation["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 10_000 and (confusion.sum(axis=1) == 1000).all()
    assert np.trace(confusion) / 10_000 == pytest.approx(evaluation["test_accuracy"])
    assert (uninterrupted / "confusion.png").stat().st_size > 0


def test_predict_test_images_and_image_files(uninterrupted, tmp_path, capsys):
    from matplotlib import image as mpimg

    from linear_nets.data.fashion_mnist import CLASSES, FashionMNIST
    from linear_nets.pipeline.saved import load_softmax

    out_png = tmp_path / "preds.png"
    assert main(["predict", str(uninterrupted), "--n", "5", "--out", str(out_png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("test image") for line in lines) == 5 and out_png.stat().st_size > 0

    test = FashionMNIST("test")
    model, _, _ = load_softmax(Run.open(uninterrupted))
    images = test.images[:2].float() / 255
    expected = model.predict(images).tolist()
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    mpimg.imsave(small, images[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    mpimg.imsave(large, np.kron(images[1, 0].numpy(), np.ones((3, 3))), cmap="gray", vmin=0, vmax=1)  # 84 x 84
    assert main(["predict", str(uninterrupted), str(small), str(large)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[1].split(" (")[0] for line in lines] == [CLASSES[k] for k in expected]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["evaluate", "missing-dir"], "run directory missing-dir does not exist"),
        (["evaluate", "."], "config.json is missing"),
        (["predict", "linreg-run"], "is a linear regression on synthetic data: it has no images to predict"),
        (["predict", "softmax-run", "not-an-image.png"], "cannot be read as an image"),
        (["predict", "softmax-run", "no-such.png"], "does not exist"),
        (["predict", "softmax-run", "--out", "preds.gif"], ".gif"),
        (["evaluate", "tampered-run"], "truncated or was modified"),
        (["predict", "softmax-run", "--keep-all"], "--keep-all applies to the predictions of a table"),
        (["predict", "softmax-run", "--interval", "0.9"], "--interval applies to the predictions of a table"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(uninterrupted, tmp_path, monkeypatch, capsys, argv, fragment):
    import shutil

    monkeypatch.chdir(tmp_path)
    assert main(["train", "linreg", "--out", "linreg-run"]) == 0
    shutil.copytree(uninterrupted, "softmax-run")
    shutil.copytree(uninterrupted, "tampered-run")
    model = Path("tampered-run/model.safetensors")
    model.write_bytes(model.read_bytes()[:-4] + b"\0\0\0\0")
    Path("not-an-image.png").write_bytes(b"this is not a PNG")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("linear-nets: error: ") and fragment in err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_evaluate_a_linreg_run_regenerates_its_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "linreg", "--loss", "squared", "--seed", "3", "--out", "lr"]) == 0
    summary = json.loads(Path("lr/summary.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", "lr"]) == 0
    lines = capsys.readouterr().out.splitlines()
    loss = float(lines[1].rsplit(": ", 1)[1])
    assert loss == pytest.approx(summary["final_train_loss"], rel=1e-3)  # the same data, regenerated from the seed
    assert float(lines[3].rsplit(": ", 1)[1]) == pytest.approx(summary["error_b"], abs=1e-5)


def test_read_image_scales_uint8_formats_by_type_not_value(tmp_path):
    from matplotlib import image as mpimg

    from linear_nets.pipeline.saved import read_image

    dark = np.zeros((28, 28, 3), dtype=np.uint8)
    dark[10:18, 10:18] = 1  # a JPEG this dark has its maximum at 1 / 255, not 1.0
    mpimg.imsave(tmp_path / "dark.png", dark)
    png = read_image(tmp_path / "dark.png", 28)
    assert png.shape == (1, 28, 28) and 0 < png.max().item() < 0.02
    mpimg.imsave(tmp_path / "dark.jpg", dark)
    jpeg = read_image(tmp_path / "dark.jpg", 28)
    assert 0 < jpeg.max().item() < 0.05


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "run", "--interval", "1.5"],
         "argument --interval: expected a confidence level between 0 and 1 such as 0.95, got '1.5'"),
        (["predict", "run", "--n", "0"], "argument --n: expected a positive integer, got '0'"),
        (["data", "download", "--timeout", "inf"], "argument --timeout: expected a positive finite number, got 'inf'"),
        (["train", "softmax", "--checkpoint-every", "-1"], "--checkpoint-every: expected an integer >= 0, got '-1'"),
    ],
)  # fmt: skip
def test_argument_types_refuse_saying_what_they_expect(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err
