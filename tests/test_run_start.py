"""A run's life, as `pipeline.recorder` decides it for every `train` command: opened to resume (a finished run left as
it is), its threads and options chosen and recorded, created once, removed when a new fit fails or stops before its
first checkpoint, kept when a resumed one does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from linear_nets.errors import ConfigError, DataError
from linear_nets.pipeline.config import LinregConfig, SoftmaxConfig
from linear_nets.pipeline.fit import Dataset, fit_softmax
from linear_nets.pipeline.recorder import open_run, run_options, start_run
from linear_nets.training import Callback

CONFIG = SoftmaxConfig(impl="manual", lr=0.5, batch_size=32, epochs=3, seed=1, threads=1)


def _data() -> Dataset:
    gen = torch.Generator().manual_seed(0)
    X = torch.randint(0, 256, (120, 1, 4, 4), dtype=torch.uint8, generator=gen)
    y = (X[:, 0, 0, 0] > 128).long()
    return Dataset((X[:96], y[:96]), (X[96:], y[96:]), ["a", "b"])


class _CtrlC(Callback):
    """Ctrl-C once `epochs` epochs have ended (0: before the first has)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_begin(self, epoch: int) -> None:
        if epoch > self.epochs:
            raise KeyboardInterrupt


def test_a_new_run_is_created_once_with_its_config_data_and_options(tmp_path):
    config, options = run_options(CONFIG, {"data_dir": "images", "checkpoint_every": 2})
    recorder = start_run("softmax", config, {"dir": "images"}, options, str(tmp_path / "run"))
    assert [p.name for p in tmp_path.iterdir()] == ["run"] and not recorder.resume
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    assert written["model"] == "softmax" and written["config"]["lr"] == 0.5 and written["data"] == {"dir": "images"}
    assert written["options"] == {"data_dir": "images", "checkpoint_every": 2, "threads": "--threads"}
    assert recorder.checkpoint_every == 2
    assert open_run("softmax", resume=str(tmp_path / "run"))[1:] == (None, None)  # unfinished: resumable
    with pytest.raises(ConfigError, match="exists"):
        start_run("softmax", config, {}, options, str(tmp_path / "run"))


def test_threads_not_given_are_chosen_and_recorded_and_a_resumed_run_keeps_its_options(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    config, options = run_options(SoftmaxConfig(), {"data_dir": None})
    assert config.threads == 3 and options == {"data_dir": None, "threads": "OMP_NUM_THREADS"}
    run = start_run("softmax", config, {}, {**options, "checkpoint_every": 0}, str(tmp_path / "run")).run
    assert run_options(config, {"data_dir": None}, resumed=run)[1] == {**options, "checkpoint_every": 0}
    moved = run_options(config, {"data_dir": "elsewhere"}, resumed=run)[1]  # the same data, elsewhere
    assert moved == {"data_dir": "elsewhere", "threads": "OMP_NUM_THREADS", "checkpoint_every": 0}


def test_a_finished_run_is_reported_with_its_summary(tmp_path):
    recorder = start_run("linreg", LinregConfig(), {}, {}, str(tmp_path / "run"))
    recorder.finish({"w": torch.zeros(2)}, {"note": 1}, {"model": "linreg"})
    run, summary, out = open_run("linreg", resume=str(tmp_path / "run"))
    assert run.path == tmp_path / "run" and out is None and summary["note"] == 1 and summary["epochs"] == 0
    (tmp_path / "run" / "summary.json").write_text("null")  # finished still, whatever it holds
    assert open_run("linreg", resume=str(tmp_path / "run"))[1] == {}
    with pytest.raises(DataError, match="is a run of model 'linreg', not 'softmax'"):
        open_run("softmax", resume=str(tmp_path / "run"))


def test_a_new_out_that_exists_is_refused_before_any_work(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    with pytest.raises(ConfigError, match="taken: exists and is not an empty directory"):
        open_run("softmax", out=str(tmp_path / "taken"))
    assert open_run("softmax") == (None, None, None)  # the default name, made when the run is created


def test_a_failing_fit_removes_a_new_run_but_keeps_a_resumed_one(tmp_path):
    recorder = start_run("softmax", CONFIG, {}, {"checkpoint_every": 1}, str(tmp_path / "run"))
    with pytest.raises(DataError), recorder.removed_on_error():
        fit_softmax(CONFIG, _data(), [recorder])
        raise DataError("the disk is full")
    assert not (tmp_path / "run").exists()
    recorder = start_run("softmax", CONFIG, {}, {"checkpoint_every": 1}, str(tmp_path / "run"))
    with pytest.raises(KeyboardInterrupt):
        fit_softmax(CONFIG, _data(), [recorder, _CtrlC(2)])
    assert recorder.stop() and (tmp_path / "run" / "checkpoint-2.json").exists()
    run, summary, _ = open_run("softmax", resume=str(tmp_path / "run"))
    assert summary is None  # not finished: resumed
    resumed = start_run("softmax", CONFIG, {}, run.config["options"], resumed=run)
    assert resumed.resume and resumed.run is run
    with pytest.raises(DataError), resumed.removed_on_error():
        raise DataError("diverged")
    assert (tmp_path / "run" / "checkpoint-2.json").exists()


def test_a_fit_stopped_before_its_first_checkpoint_is_removed_after_one_it_is_kept(tmp_path):
    recorder = start_run("softmax", CONFIG, {}, {"checkpoint_every": 0}, str(tmp_path / "early"))
    with pytest.raises(KeyboardInterrupt):
        fit_softmax(CONFIG, _data(), [recorder, _CtrlC(0)])
    assert not recorder.stop() and not (tmp_path / "early").exists()
    recorder = start_run("softmax", CONFIG, {}, {"checkpoint_every": 0}, str(tmp_path / "later"))
    with pytest.raises(KeyboardInterrupt):
        fit_softmax(CONFIG, _data(), [recorder, _CtrlC(1)])
    assert recorder.stop() and Path(tmp_path / "later" / "checkpoint-1.json").exists()  # saved though every 0
