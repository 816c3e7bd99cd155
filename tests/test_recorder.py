"""A fit interrupted after any checkpoint and resumed ends exactly where an uninterrupted fit ends."""

from __future__ import annotations

import json

import pytest
import torch

from linear_nets.errors import DataError
from linear_nets.pipeline.config import SoftmaxConfig
from linear_nets.pipeline.fit import Dataset, build_model, fit_softmax
from linear_nets.pipeline.recorder import RunRecorder
from linear_nets.pipeline.runs import Run
from linear_nets.training import Callback, train

EPOCHS = 5


def _data() -> Dataset:
    gen = torch.Generator().manual_seed(0)
    X = torch.randint(0, 256, (300, 1, 4, 4), dtype=torch.uint8, generator=gen)
    y = (X.flatten(1).float().sum(1) > 2040).long() + (X[:, 0, 0, 0] > 128).long()
    return Dataset((X[:240], y[:240]), (X[240:], y[240:]), ["a", "b", "c"])


CONFIGS = {
    "scratch": SoftmaxConfig(impl="scratch", lr=0.5, batch_size=32, epochs=EPOCHS, seed=1),
    "manual-cosine": SoftmaxConfig(impl="manual", lr=0.5, batch_size=32, epochs=EPOCHS, seed=1, schedule="cosine"),
    "concise-momentum-step": SoftmaxConfig(
        impl="concise", optimizer="momentum", lr=0.2, batch_size=32, epochs=EPOCHS, seed=1, schedule="step"
    ),
    "early-stopping": SoftmaxConfig(
        impl="manual", lr=0.5, batch_size=32, epochs=EPOCHS, seed=1, val_fraction=0.25, early_stopping=2,
        standardize=True,
    ),
}


class _StopAfter(Callback):
    """Simulates a process killed after `epochs` epochs (its checkpoint written)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, record) -> bool:
        return record.epoch >= self.epochs


def _fit(config, tmp_path, name, *callbacks, resume=False):
    run = Run.open(tmp_path / name) if resume else Run.create("softmax", {"config": {}}, out=tmp_path / name)
    recorder = RunRecorder(run, resume=resume)
    return fit_softmax(config, _data(), [recorder, *callbacks]), run


def _rows(run):
    return [
        {k: v for k, v in json.loads(line).items() if k != "seconds"}
        for line in (run.path / "metrics.jsonl").read_text().splitlines()
    ]


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("stop_after", [1, 3])
def test_resume_matches_an_uninterrupted_fit(tmp_path, name, stop_after):
    config = CONFIGS[name]
    straight, straight_run = _fit(config, tmp_path, "straight")
    _fit(config, tmp_path, "interrupted", _StopAfter(stop_after))
    torch.manual_seed(12345)  # the global RNG is restored too
    resumed, resumed_run = _fit(config, tmp_path, "interrupted", resume=True)
    for key, tensor in straight.model.state_tensors().items():
        assert torch.equal(resumed.model.state_tensors()[key], tensor), key
    assert resumed.best_epoch == straight.best_epoch
    assert resumed.test_accuracy == straight.test_accuracy
    assert _rows(resumed_run) == _rows(straight_run)
    assert [r.epoch for r in resumed.history.epochs] == [r.epoch for r in straight.history.epochs]


def test_restore_refuses_a_checkpoint_of_another_shape(tmp_path):
    _fit(CONFIGS["scratch"], tmp_path, "run", _StopAfter(1))
    recorder = RunRecorder(Run.open(tmp_path / "run"), resume=True)
    other = Dataset((torch.zeros(10, 25), torch.arange(10) % 3))
    with pytest.raises(DataError, match="shape"):
        fit_softmax(CONFIGS["scratch"], other, [recorder])


def test_restore_refuses_a_tampered_checkpoint_and_leaves_it_as_it_was(tmp_path):
    _fit(CONFIGS["scratch"], tmp_path, "run", _StopAfter(2))
    path = tmp_path / "run" / "checkpoint-2.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    files = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(DataError, match="modified"):
        _fit(CONFIGS["scratch"], tmp_path, "run", resume=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == files


def test_a_checkpoint_without_early_stopping_state_does_not_fit_a_fit_with_it(tmp_path):
    plain = CONFIGS["early-stopping"]
    import dataclasses

    without = dataclasses.replace(plain, val_fraction=None, early_stopping=None)
    _fit(without, tmp_path, "plain", _StopAfter(2))
    with pytest.raises(DataError, match=r"written with val_fraction None, early_stopping None, but this fit asks for "
                       r"val_fraction 0.25, early_stopping 2"):  # fmt: skip
        _fit(plain, tmp_path, "plain", resume=True)
    description = tmp_path / "plain" / "checkpoint-2.json"  # as checkpoints were before they recorded their config
    old = json.loads(description.read_text())
    del old["meta"]["config"]
    description.write_text(json.dumps(old))
    with pytest.raises(DataError, match=r"does not fit this model.*best_metric"):
        _fit(plain, tmp_path, "plain", resume=True)


def test_a_start_after_the_last_epoch_trains_nothing():
    model = build_model(CONFIGS["scratch"], 16, 3)
    data = _data()
    from linear_nets.data.batches import ArrayLoader

    before = model.state_tensors()["W"].clone()
    history = train(model.net, ArrayLoader(data.train, 32), None, model.loss, 3, model.updater, start_epoch=5)
    assert history.epochs == [] and torch.equal(model.state_tensors()["W"], before)


class _Interrupt(Callback):
    """Ctrl-C in the middle of epoch `epoch` (after its shuffle was drawn)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_begin(self, epoch: int) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_interrupt_mid_epoch_saves_the_last_completed_epoch(tmp_path):
    config = CONFIGS["concise-momentum-step"]
    straight, _ = _fit(config, tmp_path, "straight")
    run = Run.create("softmax", {"config": {}}, out=tmp_path / "interrupted")
    recorder = RunRecorder(run, checkpoint_every=0)
    with pytest.raises(KeyboardInterrupt):
        fit_softmax(config, _data(), [recorder, _Interrupt(3)])
    assert not list(run.path.glob("checkpoint-*"))
    assert recorder.save_checkpoint() and not recorder.save_checkpoint()  # written once
    resumed, _ = _fit(config, tmp_path, "interrupted", resume=True)
    assert torch.equal(resumed.model.state_tensors()["W"], straight.model.state_tensors()["W"])


def test_lbfgs_fits_checkpoint_and_resume_exactly(tmp_path):
    config = SoftmaxConfig(impl="concise", optimizer="lbfgs", lr=1.0, epochs=3, seed=1, standardize=True)
    straight, _ = _fit(config, tmp_path, "straight")
    _fit(config, tmp_path, "interrupted", _StopAfter(1))
    resumed, _ = _fit(config, tmp_path, "interrupted", resume=True)
    for key, tensor in straight.model.state_tensors().items():
        assert torch.equal(resumed.model.state_tensors()[key], tensor), key


def test_interrupt_once_the_metrics_show_an_epoch_saves_that_epoch(tmp_path, monkeypatch):
    """Ctrl-C just after metrics.jsonl shows epoch 1 (when the CLI test sends it) still finds epoch 1 to save."""
    config = CONFIGS["concise-momentum-step"]
    straight, _ = _fit(config, tmp_path, "straight")
    write_metrics = Run.write_metrics

    def interrupted_after_writing(self, rows):
        write_metrics(self, rows)
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "write_metrics", interrupted_after_writing)
    run = Run.create("softmax", {"config": {}}, out=tmp_path / "interrupted")
    recorder = RunRecorder(run, checkpoint_every=0)
    with pytest.raises(KeyboardInterrupt):
        fit_softmax(config, _data(), [recorder])
    monkeypatch.undo()
    assert recorder.save_checkpoint()  # what the CLI does on Ctrl-C
    assert [p.name for p in run.path.glob("checkpoint-*.safetensors")] == ["checkpoint-1.safetensors"]
    resumed, _ = _fit(config, tmp_path, "interrupted", resume=True)
    assert torch.equal(resumed.model.state_tensors()["W"], straight.model.state_tensors()["W"])
