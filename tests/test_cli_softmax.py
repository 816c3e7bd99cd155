"""`linear-nets train softmax`: the table, the progress bar, the same numbers for the same seed, one-line errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
import torch

from linear_nets.cli import main
from linear_nets.data.batches import ArrayLoader
from linear_nets.data.fashion_mnist import CLASSES
from linear_nets.pipeline import fit
from linear_nets.pipeline.fit import Dataset
from linear_nets.pipeline.recorder import RunRecorder
from linear_nets.pipeline.runs import Run

IMPLS = ["scratch", "manual", "concise"]


@pytest.fixture
def fixture_data(install_fake_fashion_mnist):
    """A 60 + 30 image Fashion-MNIST look-alike that the package accepts as the real thing."""
    return install_fake_fashion_mnist(n_train=60, n_test=30)


def without_seconds(path) -> list:
    """The JSON objects of a file (one, or one per line) with every timing left out."""
    rows = (
        [json.loads(line) for line in path.read_text().splitlines()]
        if path.suffix == ".jsonl"
        else [json.loads(path.read_text())]
    )
    timings = ("seconds", "train_seconds", "load_seconds", "wall_seconds")

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in timings}
        return value

    return [strip(row) for row in rows]


def table_rows(stdout: str) -> list[list[str]]:
    """The per-epoch rows without the seconds column."""
    rows = [line.split() for line in stdout.splitlines() if line.strip()[:1].isdigit()]
    return [row[:-1] for row in rows]


@pytest.mark.parametrize("impl", IMPLS)
def test_prints_a_header_a_row_per_epoch_and_the_total(fixture_data, capsys, impl):
    argv = ["train", "softmax", "--impl", impl, "--epochs", "3", "--batch-size", "16", "--data-dir", str(fixture_data)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"softmax regression ({impl}) on Fashion-MNIST: 60 train / 30 test images, 784 inputs")
    assert lines[1].split() == ["epoch", "train", "loss", "train", "acc", "test", "acc", "seconds"]
    rows = table_rows(out)
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert all(0 <= float(value) <= 1 for row in rows for value in row[2:])
    summary = dict(line.split(maxsplit=1) for line in lines[-6:])
    assert summary["epochs"] == "3" and float(summary["test"].split()[-1]) == float(rows[-1][-1])
    assert err == ""  # stderr is not a terminal here: no progress bar
    assert sorted(os.listdir(".")) == ["data", "runs"]  # the run directory, nothing else
    (run_dir,) = os.listdir("runs")
    assert run_dir.startswith("softmax-") and summary["run"].split() == ["directory", f"runs/{run_dir}"]


def test_same_seed_same_numbers_other_seed_other_numbers(fixture_data, capsys):
    def rows(seed: str) -> list[list[str]]:
        argv = ["train", "softmax", "--epochs", "2", "--batch-size", "8", "--seed", seed]
        argv += ["--data-dir", str(fixture_data)]
        assert main(argv) == 0
        return table_rows(capsys.readouterr().out)

    assert rows("5") == rows("5")
    assert rows("5") != rows("6")


def test_resize_changes_the_number_of_inputs(fixture_data, capsys):
    assert main(["train", "softmax", "--epochs", "1", "--resize", "14", "--data-dir", str(fixture_data)]) == 0
    assert "196 inputs" in capsys.readouterr().out


def test_threads_sets_torch_threads(fixture_data, capsys):
    before = torch.get_num_threads()
    try:
        assert main(["train", "softmax", "--epochs", "1", "--threads", "2", "--data-dir", str(fixture_data)]) == 0
        assert torch.get_num_threads() == 2 and ", 2 threads;" in capsys.readouterr().out
        assert main(["train", "softmax", "--epochs", "1", "--data-dir", str(fixture_data)]) == 0  # the default: 1
        assert torch.get_num_threads() == 1 and ", 1 thread;" in capsys.readouterr().out
    finally:
        torch.set_num_threads(before)


def test_progress_bar_goes_to_a_terminal_stderr_and_the_table_stays_on_stdout(fixture_data, capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["train", "softmax", "--epochs", "2", "--batch-size", "16", "--data-dir", str(fixture_data)]) == 0
    assert "batch" in terminal.getvalue()  # tqdm's unit
    assert [row[0] for row in table_rows(capsys.readouterr().out)] == ["1", "2"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--resize", "0"], "--resize must be an integer >= 1, got 0"),
        (["--resize", "-3"], "--resize must be an integer >= 1, got -3"),
        (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
        (["--batch-size", "-1"], "--batch-size must be an integer >= 1, got -1"),
        (["--threads", "0"], "--threads must be an integer >= 1 and <= 1024, got 0"),
        (["--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
        (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
        (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
        (["--impl", "fast"], "--impl must be one of scratch, manual, concise, got fast"),
        (["--val-fraction", "1"], "--val-fraction must be a finite number > 0 and < 1, got 1.0"),
        (["--lr", "1e38", "--batch-size", "8"], "training diverged: loss became nan at epoch 1"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(fixture_data, capsys, args, fragment):
    assert main(["train", "softmax", "--epochs", "2", "--data-dir", str(fixture_data), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("linear-nets: error: ") and fragment in err
    assert sorted(os.listdir(".")) in (["data"], ["data", "runs"])
    assert not os.path.exists("runs") or os.listdir("runs") == []  # no run directory is left behind


def test_labels_outside_0_to_9_print_one_line_and_exit_2(capsys, monkeypatch):
    images = torch.zeros(20, 1, 28, 28, dtype=torch.uint8)
    labels = torch.arange(20) % 11  # 10 is not a class

    def bad_data(data_dir=None):
        return Dataset((images, labels), (images, labels), list(CLASSES))

    monkeypatch.setattr(fit, "fashion_mnist", bad_data)
    assert main(["train", "softmax", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err == "linear-nets: error: labels must lie in 0..9 (10 classes), got values from 0 to 10\n"


def test_missing_data_prints_one_line_and_exits_2(tmp_path, capsys):
    assert main(["train", "softmax", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.needs_data
def test_real_data_same_command_prints_the_same_numbers_in_a_new_process(capsys):
    argv = ["train", "softmax", "--impl", "manual", "--epochs", "1"]
    argv += ["--threads", "1"]  # one thread: two fight badly with other work on a busy 2-core machine
    assert main(argv) == 0  # first in this process, whatever earlier tests did to torch's global state
    here = capsys.readouterr()
    assert here.err == ""
    done = subprocess.run([sys.executable, "-m", "linear_nets", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert table_rows(here.out) == table_rows(done.stdout)
    assert float(table_rows(here.out)[0][3]) > 0.7  # test accuracy after one epoch (0.77 with seed 0)


@pytest.mark.needs_data
@pytest.mark.parametrize("impl", IMPLS)
def test_real_data_one_epoch_each_implementation(capsys, impl):
    before = torch.get_num_threads()
    try:
        assert main(["train", "softmax", "--impl", impl, "--epochs", "1", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(before)
    row = table_rows(capsys.readouterr().out)[0]
    assert float(row[2]) > 0.7 and float(row[3]) > 0.7  # train and test accuracy after one epoch


def test_the_test_set_is_evaluated_as_one_batch_equal_to_the_loaders_batches():
    images = torch.randint(0, 256, (50, 1, 6, 6), dtype=torch.uint8)
    labels = torch.arange(50) % 10
    for resize in (None, 3):
        loader = ArrayLoader((images, labels), 8, resize=resize)
        [(X, y)] = fit.as_one_batch(images, labels, resize)
        torch.testing.assert_close(X, torch.cat([Xb for Xb, _ in loader]), rtol=0, atol=0)
        assert torch.equal(y, labels)
    batches = fit.as_one_batch(images, labels, None, max_bytes=50 * 36 * 4 - 1)  # one float batch would not fit
    assert isinstance(batches, ArrayLoader) and batches.num_examples == 50


@pytest.mark.parametrize(
    "flags",
    [
        [],
        ["--schedule", "cosine"],
        ["--impl", "concise", "--optimizer", "momentum", "--schedule", "step"],
        ["--val-fraction", "0.5", "--early-stopping", "3", "--lr", "2"],
    ],
    ids=["constant", "cosine", "step", "early-stopping"],
)
def test_an_interrupted_run_resumes_to_the_uninterrupted_result_with_schedules_and_early_stopping(
    fixture_data, monkeypatch, capsys, flags
):
    run = ["train", "softmax", "--epochs", "6", "--batch-size", "16", "--data-dir", str(fixture_data), *flags]
    assert main([*run, "--out", "straight"]) == 0
    on_epoch_end = RunRecorder.on_epoch_end

    def interrupt_after_epoch_2(self, record):  # Ctrl-C just after epoch 2 was recorded
        on_epoch_end(self, record)
        if record.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunRecorder, "on_epoch_end", interrupt_after_epoch_2)
    assert main([*run, "--out", "interrupted"]) == 130
    monkeypatch.setattr(RunRecorder, "on_epoch_end", on_epoch_end)
    assert main(["train", "softmax", "--resume", "interrupted"]) == 0
    straight, resumed = Run.open("straight"), Run.open("interrupted")
    ours, theirs = resumed.load_model()[0], straight.load_model()[0]
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    for name in ("metrics.jsonl", "summary.json"):
        assert without_seconds(resumed.path / name) == without_seconds(straight.path / name), name
    if "--early-stopping" in flags:  # the best epoch lies before the interruption: its weights came from the checkpoint
        assert without_seconds(straight.path / "summary.json")[0]["best_epoch"] <= 2
