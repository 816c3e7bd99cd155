"""A run interrupted after any checkpoint and resumed ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json

import pytest
import torch

from linear_nets.concise import softmax_regression as concise
from linear_nets.data.batches import ArrayLoader
from linear_nets.errors import ConfigError, DataError
from linear_nets.manual import softmax_regression as manual
from linear_nets.recorder import RunRecorder
from linear_nets.regularization import EarlyStopping, parameters
from linear_nets.runs import Run
from linear_nets.scratch import softmax_regression as scratch
from linear_nets.training import train

EPOCHS = 5


def _problem():
    gen = torch.Generator().manual_seed(0)
    X = torch.randint(0, 256, (300, 1, 4, 4), dtype=torch.uint8, generator=gen)
    y = (X.flatten(1).float().sum(1) > 2040).long() + (X[:, 0, 0, 0] > 128).long()
    return X[:240], y[:240], X[240:], y[240:]


def _make(build):
    X, y, Xt, yt = _problem()
    loader = ArrayLoader((X, y), batch_size=32, shuffle=True, seed=7)
    model = build()
    return model, loader, ArrayLoader((Xt, yt), batch_size=64)


BUILDERS = {
    "scratch": lambda: scratch.SoftmaxRegression(16, 3, lr=0.5, generator=torch.Generator().manual_seed(1)),
    "manual": lambda: manual.SoftmaxRegression(16, 3, lr=0.5, generator=torch.Generator().manual_seed(1)),
    "concise-momentum": lambda: concise.SoftmaxRegression(
        16, 3, lr=0.2, optimizer="momentum", generator=torch.Generator().manual_seed(1)
    ),
}


def _run(build, tmp_path, name, stop_after=None):
    model, loader, test = _make(build)
    run = Run.create("softmax", {"args": {}}, out=tmp_path / name)
    recorder = RunRecorder(run, model, [loader.generator])
    train(model.net, loader, test, model.loss, stop_after or EPOCHS, model.updater, on_epoch_end=recorder.on_epoch_end)
    return model, run


@pytest.mark.parametrize("impl", BUILDERS)
@pytest.mark.parametrize("stop_after", [1, 3])
def test_resume_matches_an_uninterrupted_run(tmp_path, impl, stop_after):
    build = BUILDERS[impl]
    straight, straight_run = _run(build, tmp_path, "straight")
    _, interrupted_run = _run(build, tmp_path, "interrupted", stop_after=stop_after)

    # a new process would build everything afresh from the config, then restore the checkpoint
    model, loader, test = _make(build)
    torch.manual_seed(12345)  # the global RNG is restored too
    recorder = RunRecorder(Run.open(interrupted_run.path), model, [loader.generator])
    start = recorder.restore()
    assert start == stop_after + 1
    history = train(
        model.net,
        loader,
        test,
        model.loss,
        EPOCHS,
        model.updater,
        on_epoch_end=recorder.on_epoch_end,
        start_epoch=start,
    )
    assert [r.epoch for r in history.epochs] == list(range(start, EPOCHS + 1))
    for name, tensor in straight.state_tensors().items():
        assert torch.equal(model.state_tensors()[name], tensor), name

    def rows(run):
        return [
            {k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run.path / "metrics.jsonl").read_text().splitlines()
        ]

    assert rows(interrupted_run) == rows(straight_run)


def test_restore_refuses_a_checkpoint_of_another_shape(tmp_path):
    _, run = _run(BUILDERS["manual"], tmp_path, "run", stop_after=1)
    other = manual.SoftmaxRegression(25, 3)
    with pytest.raises(DataError, match="shape"):
        RunRecorder(run, other).restore()


def test_restore_refuses_a_tampered_checkpoint(tmp_path):
    _, run = _run(BUILDERS["scratch"], tmp_path, "run", stop_after=2)
    path = run.path / "checkpoint-2.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="modified"):
        RunRecorder(run, BUILDERS["scratch"]()).restore()


class _StopperState:
    """An `ExtraState`: early stopping's best epoch and weights."""

    def __init__(self, model) -> None:
        self.stopper = EarlyStopping(parameters(model), patience=None)

    def state_tensors(self):
        return self.stopper.state_tensors()

    def load_state_tensors(self, tensors, epochs_done):
        self.stopper.load_state_tensors(tensors)


def test_extra_state_round_trips_and_a_checkpoint_without_it_is_refused(tmp_path):
    model, loader, test = _make(BUILDERS["manual"])
    run = Run.create("softmax", {"args": {}}, out=tmp_path / "with-extra")
    extra = _StopperState(model)
    recorder = RunRecorder(run, model, [loader.generator], extra=extra)

    def end(record):
        extra.stopper(record)
        recorder.on_epoch_end(record)

    train(model.net, loader, test, model.loss, 3, model.updater, on_epoch_end=end)
    fresh = BUILDERS["manual"]()
    restored = _StopperState(fresh)
    assert RunRecorder(Run.open(run.path), fresh, extra=restored).restore() == 4
    assert restored.stopper.best_epoch == extra.stopper.best_epoch >= 1
    assert restored.stopper.best_metric == extra.stopper.best_metric
    for got, want in zip(restored.stopper._best, extra.stopper._best, strict=True):
        assert torch.equal(got, want)

    # a checkpoint written without that state (a run without early stopping) does not fit, and stays as it was
    _, plain_run = _run(BUILDERS["manual"], tmp_path, "plain", stop_after=2)
    files = {p.name: p.read_bytes() for p in plain_run.path.iterdir()}
    other = BUILDERS["manual"]()
    with pytest.raises(DataError, match=r"does not fit this model.*best_metric"):
        RunRecorder(plain_run, other, extra=_StopperState(other)).restore()
    assert {p.name: p.read_bytes() for p in plain_run.path.iterdir()} == files


def test_start_epoch_is_checked():
    model, loader, test = _make(BUILDERS["scratch"])
    with pytest.raises(ConfigError, match="start_epoch"):
        train(model.net, loader, test, model.loss, 3, model.updater, start_epoch=5)


def test_interrupt_mid_epoch_saves_the_last_completed_epoch(tmp_path):
    build = BUILDERS["concise-momentum"]
    straight, _ = _run(build, tmp_path, "straight")
    model, loader, test = _make(build)
    run = Run.create("softmax", {"args": {}}, out=tmp_path / "interrupted")
    recorder = RunRecorder(run, model, [loader.generator], checkpoint_every=0)
    train(model.net, loader, test, model.loss, 2, model.updater, on_epoch_end=recorder.on_epoch_end)
    next(iter(loader))  # part of epoch 3 ran (the shuffle drew) before Ctrl-C
    assert not list(run.path.glob("checkpoint-*"))
    assert recorder.save_checkpoint() and not recorder.save_checkpoint()  # written once

    model, loader, test = _make(build)
    recorder = RunRecorder(Run.open(run.path), model, [loader.generator])
    start = recorder.restore()
    train(model.net, loader, test, model.loss, EPOCHS, model.updater, start_epoch=start)
    assert start == 3 and torch.equal(model.state_tensors()["W"], straight.state_tensors()["W"])
