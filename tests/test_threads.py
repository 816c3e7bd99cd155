"""Torch's thread count by default: the idle cores, so a busy machine does not make every parallel region wait."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

from linear_nets.cli import main
from linear_nets.pipeline import distributed
from linear_nets.pipeline.distributed import World, busy_cores, choose_threads


def test_threads_are_the_idle_cores_shared_between_this_machines_processes():
    assert choose_threads(cores=2, busy=0) == 2  # idle: both cores
    assert choose_threads(cores=2, busy=1) == 1  # one core held by another process
    assert choose_threads(cores=2, busy=5) == 1  # never fewer than one
    assert choose_threads(World(local_size=2), cores=2, busy=0) == 1  # 2 processes x 1 thread
    assert choose_threads(World(local_size=4), cores=16, busy=4) == 3


def test_a_spinning_process_counts_as_a_busy_core(monkeypatch):
    from linear_nets import threads

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        monkeypatch.setattr(threads, "_recent", None)  # a reading from before the spinner started is not reused
        assert busy_cores() >= 1
    finally:
        spinner.kill()
        spinner.wait()


def test_the_default_command_records_the_threads_it_chose(install_fake_fashion_mnist, monkeypatch):
    data = install_fake_fashion_mnist()
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the tests' own setting would be obeyed (see below)
    try:
        for busy, expected in ((0, 2), (10**6, 1)):
            monkeypatch.setattr(distributed, "busy_cores", lambda own=1, busy=busy: busy)
            monkeypatch.setattr(distributed.os, "cpu_count", lambda: 2)
            out = f"run-{busy}"
            assert main(["train", "softmax", "--epochs", "1", "--data-dir", str(data), "--out", out]) == 0
            config = json.loads((data.parent / out / "config.json").read_text())
            assert config["config"]["threads"] == torch.get_num_threads() == expected
            assert config["options"]["threads"] == "chosen for the idle cores"
        given = ["train", "softmax", "--epochs", "1", "--threads", "1", "--data-dir", str(data), "--out", "given"]
        assert main(given) == 0
        config = json.loads((data.parent / "given" / "config.json").read_text())
        assert config["config"]["threads"] == 1 and config["options"]["threads"] == "--threads"
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert main(["train", "softmax", "--epochs", "1", "--data-dir", str(data), "--out", "omp"]) == 0
        config = json.loads((data.parent / "omp" / "config.json").read_text())
        assert config["config"]["threads"] == 1 and config["options"]["threads"] == "OMP_NUM_THREADS"
        # a resume keeps the threads the run was trained with, so it ends with the same weights
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(distributed, "busy_cores", lambda own=1: 0)
        run_dir = data.parent / "resumable"
        argv = ["train", "softmax", "--epochs", "2", "--data-dir", str(data), "--out", str(run_dir)]
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert main(argv) == 0
        monkeypatch.delenv("OMP_NUM_THREADS")
        (run_dir / "summary.json").unlink()  # as if killed before the end (the checkpoint of epoch 2 stays)
        assert main(["train", "softmax", "--resume", str(run_dir)]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_learners_path_chooses_threads_as_the_command_line_and_restores_the_callers(monkeypatch, tmp_path):
    """The loader's batches, `training.train`, `evaluate_accuracy` and `d2l.train_ch3` compute with the threads the
    command line would choose (here: every other core busy, so one), and the caller's own setting is back after each
    (and in the caller's loop between batches)."""
    from linear_nets import d2l, threads
    from linear_nets.data.batches import ArrayLoader
    from linear_nets.training import evaluate_accuracy, train

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "busy_cores", lambda own=1: 10**6)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.chdir(tmp_path)
    seen: dict[str, set[int]] = {"batch": set(), "loop": set(), "net": set()}
    prepare = ArrayLoader._prepare
    monkeypatch.setattr(ArrayLoader, "_prepare", lambda self, X: seen["batch"].add(torch.get_num_threads())
                        or prepare(self, X))  # fmt: skip
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    forward = net.forward
    net.forward = lambda X: seen["net"].add(torch.get_num_threads()) or forward(X)
    X, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    loader = ArrayLoader((X, y), batch_size=8, shuffle=True, seed=0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the caller's own choice
    try:
        for _ in loader:
            seen["loop"].add(torch.get_num_threads())
        assert seen == {"batch": {1}, "loop": {2}, "net": set()}
        loss = torch.nn.CrossEntropyLoss(reduction="none")
        train(net, loader, loader, loss, 2, torch.optim.SGD(net.parameters(), lr=0.1))
        assert seen["net"] == {1} and torch.get_num_threads() == 2
        evaluate_accuracy(net, loader)
        with pytest.warns(UserWarning):  # two epochs of random data fall short of the book's expectations
            d2l.train_ch3(net, loader, loader, loss, 2, torch.optim.SGD(net.parameters(), lr=0.1))
        assert seen["net"] == {1} and seen["batch"] == {1} and torch.get_num_threads() == 2
        assert train(net, loader, None, loss, 1, torch.optim.SGD(net.parameters(), lr=0.1), threads=2)
        assert 2 in seen["net"]  # an explicit number is obeyed (the pipeline passes its config's)
    finally:
        torch.set_num_threads(before)


def test_the_last_seconds_reading_of_the_machine_is_reused(monkeypatch):
    """The loaders ask once per epoch: sampling /proc/loadavg (10 ms) each time was 40% of a short epoch."""
    from linear_nets import threads

    monkeypatch.setattr(threads, "_recent", (time.monotonic(), 7))
    assert busy_cores(1) == 6  # reused: 7 runnable tasks less this process
    stale = time.monotonic() - 2 * threads.REUSE_SECONDS
    monkeypatch.setattr(threads, "_recent", (stale, 7))
    busy_cores(1)
    assert threads._recent[0] > stale + threads.REUSE_SECONDS  # older than a second: read again, and remembered
