"""Run directories and tensor files: never overwrite a run, refuse truncated / tampered / foreign files."""

from __future__ import annotations

import json

import pytest
import torch

from linear_nets.errors import ConfigError, DataError
from linear_nets.runs import (
    check_state,
    load_tensors,
    new_run_dir,
    restore_rng_states,
    rng_states,
    save_tensors,
    write_metrics,
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


def test_metrics_files_agree(tmp_path):
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}]
    write_metrics(tmp_path, rows)
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["epoch,loss", "1,0.5", "2,0.25"]
    assert [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == rows


def test_rng_states_restore_the_same_draws():
    gen = torch.Generator().manual_seed(3)
    saved = rng_states(gen)
    first = (torch.rand(4), torch.randperm(10, generator=gen))
    restore_rng_states(saved, gen)
    second = (torch.rand(4), torch.randperm(10, generator=gen))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
