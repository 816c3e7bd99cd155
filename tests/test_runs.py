"""Run directories and tensor files: never overwrite a run, refuse truncated / tampered / foreign files."""

from __future__ import annotations

import json

import pytest
import torch

from linear_nets.errors import ConfigError, DataError
from linear_nets.pipeline.runs import (
    Run,
    check_state,
    load_optimizer_state,
    load_tensors,
    new_run_dir,
    optimizer_state,
    restore_rng_states,
    rng_states,
    save_tensors,
)


def test_default_run_dirs_are_distinct(tmp_path):
    first = new_run_dir("softmax", root=tmp_path)
    (first / "config.json").write_text("{}")
    second = new_run_dir("softmax", root=tmp_path)
    assert first != second and first.name.startswith("softmax-") and second.is_dir()


def test_non_empty_out_is_refused_and_left_alone(tmp_path):
    (tmp_path / "old.txt").write_text("earlier run")
    with pytest.raises(ConfigError, match="not an empty directory"):
        new_run_dir("softmax", out=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt"]


def test_unwritable_out_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot create"):
        new_run_dir("softmax", out=blocker / "run")


def test_tensors_round_trip_with_description(tmp_path):
    tensors = {"W": torch.randn(784, 10), "b": torch.zeros(10, dtype=torch.float64)}
    save_tensors(tmp_path / "model.safetensors", tensors, {"model": "softmax"})
    loaded, meta = load_tensors(tmp_path / "model.safetensors")
    assert meta == {"model": "softmax"}
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    description = json.loads((tmp_path / "model.json").read_text())
    assert description["tensors"]["W"] == {"shape": [784, 10], "dtype": "float32"}


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # one bit flipped in the data
        lambda b: b"",  # emptied
    ],
    ids=["truncated", "tampered", "empty"],
)
def test_damaged_tensor_file_is_refused(tmp_path, damage):
    path = tmp_path / "model.safetensors"
    save_tensors(path, {"W": torch.randn(5, 3)})
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match="truncated or was modified"):
        load_tensors(path)


def test_missing_and_corrupt_sidecar(tmp_path):
    path = tmp_path / "model.safetensors"
    save_tensors(path, {"W": torch.randn(2)})
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(DataError, match="corrupt"):
        load_tensors(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(DataError, match="missing"):
        load_tensors(path)
    path.with_suffix(".json").write_text('{"format": "something else"}')
    with pytest.raises(DataError, match="not a linear-nets"):
        load_tensors(path)


def test_check_state_refuses_other_models(tmp_path):
    model = {"W": torch.zeros(784, 10), "b": torch.zeros(10)}
    check_state({"W": torch.ones(784, 10), "b": torch.ones(10)}, model, tmp_path)
    with pytest.raises(DataError, match="shape"):
        check_state({"W": torch.ones(400, 10), "b": torch.ones(10)}, model, tmp_path)
    with pytest.raises(DataError, match="holds tensors"):
        check_state({"w": torch.ones(2, 1)}, model, tmp_path)


def test_accuracys_files_agree(tmp_path):
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}]
    Run(tmp_path, {}).write_metrics(rows)
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["epoch,loss", "1,0.5", "2,0.25"]
    assert [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == rows


def test_rng_states_restore_the_same_draws():
    gen = torch.Generator().manual_seed(3)
    saved = rng_states(gen)
    first = (torch.rand(4), torch.randperm(10, generator=gen))
    restore_rng_states(saved, gen)
    second = (torch.rand(4), torch.randperm(10, generator=gen))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_run_create_open_and_refuse_foreign_dirs(tmp_path):
    run = Run.create("softmax", {"args": {"lr": 0.1}}, out=tmp_path / "run")
    assert Run.open(run.path, model="softmax").config["args"] == {"lr": 0.1}
    with pytest.raises(DataError, match="run of model 'softmax', not 'linreg'"):
        Run.open(run.path, model="linreg")
    with pytest.raises(ConfigError, match="does not exist"):
        Run.open(tmp_path / "missing")
    (tmp_path / "foreign").mkdir()
    with pytest.raises(DataError, match=r"config\.json is missing"):
        Run.open(tmp_path / "foreign")
    (tmp_path / "foreign" / "config.json").write_text('{"something": 1}')
    with pytest.raises(DataError, match="not a linear-nets run directory"):
        Run.open(tmp_path / "foreign")


def test_checkpoints_keep_only_the_newest_and_survive_a_kill_between_files(tmp_path):
    run = Run.create("softmax", {"args": {}}, out=tmp_path / "run")
    with pytest.raises(DataError, match="no checkpoint"):
        run.load_checkpoint()
    run.save_checkpoint(1, {"W": torch.zeros(2)}, {"history": []})
    run.save_checkpoint(2, {"W": torch.ones(2)}, {"history": [1]})
    assert sorted(p.name for p in run.path.glob("checkpoint-*")) == ["checkpoint-2.json", "checkpoint-2.safetensors"]
    # a kill after epoch 3's tensors were written but before its description: epoch 2 is still used
    (run.path / "checkpoint-3.safetensors").write_bytes(b"partial")
    tensors, state = run.load_checkpoint()
    assert state["epoch"] == 2 and torch.equal(tensors["W"], torch.ones(2))


def test_optimizer_state_round_trip_restores_momentum():
    def make():
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        return p, torch.optim.SGD([p], lr=0.1, momentum=0.9)

    p, opt = make()
    for _ in range(3):
        opt.zero_grad()
        (p**2).sum().backward()
        opt.step()
    tensors, rest = optimizer_state(opt)
    assert set(tensors) == {"optimizer.0.momentum_buffer"}
    q, opt2 = make()
    with torch.no_grad():
        q.copy_(p)
    saved = {k: v.clone() for k, v in tensors.items()}  # as if read back from a file
    load_optimizer_state(opt2, saved, json.loads(json.dumps(rest)))
    for param, optimizer in ((p, opt), (q, opt2)):
        optimizer.zero_grad()
        (param**2).sum().backward()
        optimizer.step()
    assert torch.equal(p, q)
