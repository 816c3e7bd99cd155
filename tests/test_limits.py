"""Limits and unwritable places (issue 18, cases 7 and 8), through the command line in-process.

Seeds outside 0..2**63-1 and sizes this machine cannot hold are one line and exit 2 before anything is allocated or
written; a full disk or a read-only place is one line naming the file, exit 2, and no half-written run; `evaluate` on
a read-only run prints its results and says they were not saved.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from linear_nets import checks
from linear_nets.cli import main
from linear_nets.errors import ConfigError
from linear_nets.pipeline import config

SEED_RANGE = "must be an integer >= 0 and <= 9223372036854775807"


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fake_data(install_fake_fashion_mnist) -> Path:
    return install_fake_fashion_mnist(n_train=60, n_test=30)


# --- 7. seeds and sizes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "seed"),
    [
        (["train", "linreg"], "-1"),
        (["train", "linreg"], str(2**64)),
        (["train", "softmax", "--data-dir", "missing"], str(2**63)),
        (["tune", "softmax", "--data-dir", "missing"], "-1"),
        (["plot", "regression", "--out", "r.png"], "-1"),
        (["data", "show", "--data-dir", "missing", "--out", "s.png"], str(2**64)),
    ],
)
def test_a_seed_outside_0_to_2_63_is_one_line_and_exit_2(capsys, argv, seed):
    assert cli(capsys, *argv, "--seed", seed) == (2, "", f"linear-nets: error: --seed {SEED_RANGE}, got {seed}\n")
    assert list(Path().iterdir()) == []


def test_configs_take_seeds_0_to_2_63_minus_1_from_python_and_from_run_files():
    assert config.validate(config.SoftmaxConfig(seed=2**63 - 1)).seed == 2**63 - 1
    for seed in (-1, 2**63):
        with pytest.raises(ConfigError, match=f"^seed {SEED_RANGE}, got {seed}$"):
            config.validate(config.LinregConfig(seed=seed))
        with pytest.raises(ConfigError, match=f"^seed {SEED_RANGE}"):
            config.from_dict(config.SoftmaxConfig, {"seed": seed})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "linreg", "--samples", "10000000000"],
         "--samples 10000000000 of 2 features needs 120.0 GB, this machine has 3.9 GB available"),
        (["plot", "regression", "--samples", "10000000000", "--out", "r.png"],
         "--samples 10000000000 of 1 feature needs 80.0 GB, this machine has 3.9 GB available"),
        (["train", "softmax", "--resize", "100000", "--data-dir", "missing"],
         "--resize 100000 needs 840.0 GB, this machine has 3.9 GB available"),
        (["plot", "vectorization", "--n", "1000000000000", "--out", "v.png"],  # a stated limit: the loop's time
         "--n must be an integer >= 1 and <= 1000000, got 1000000000000"),
    ],
)  # fmt: skip
def test_a_size_this_machine_cannot_hold_is_refused_before_allocating(capsys, monkeypatch, argv, message):
    monkeypatch.setattr(checks, "available_memory", lambda: 3_900_000_000)
    assert cli(capsys, *argv) == (2, "", f"linear-nets: error: {message}\n")
    assert list(Path().iterdir()) == []


def test_resize_with_a_batch_of_the_whole_training_set_is_refused_before_the_run_starts(capsys, monkeypatch,
                                                                                       fake_data):  # fmt: skip
    monkeypatch.setattr(checks, "available_memory", lambda: 10_000_000)
    argv = ["train", "softmax", "--resize", "300", "--batch-size", "1000000", "--epochs", "1"]
    # a batch is the 60 training images, 300 x 300 float32, beside the weights and their gradient: 4 * 90,000 * 80
    assert cli(capsys, *argv, "--data-dir", str(fake_data)) == (2, "", "linear-nets: error: --resize 300 with "
                                                                "--batch-size 1000000 needs 28.8 MB, this machine has "
                                                                "10.0 MB available\n")  # fmt: skip
    assert not Path("runs").exists()


def test_available_memory_is_at_most_this_machines_memory():
    available = checks.available_memory()
    assert available is None or 0 <= available <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def test_scoring_resized_images_takes_batches_within_the_memory_budget():
    from linear_nets.pipeline.fit import as_one_batch

    X, y = torch.zeros(10, 1, 28, 28, dtype=torch.uint8), torch.arange(10)
    batches = list(as_one_batch(X, y, resize=10, max_bytes=1000))  # 400 bytes per resized image
    assert [len(labels) for _, labels in batches] == [2, 2, 2, 2, 2]


# --- 8. full disks and read-only places -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["config.json", "summary.json"])
def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_run(capsys, full_disk, name):
    full_disk(name)  # config.json: as the run directory is created; summary.json: its last file
    code, _, err = cli(capsys, "train", "linreg", "--solver", "closed-form", "--out", "run")  # no figure: fast
    assert (code, err) == (2, f"linear-nets: error: cannot write {Path('run', name)}: No space left on device\n")
    assert list(Path().iterdir()) == []


def test_a_full_disk_while_training_softmax_leaves_no_run(capsys, full_disk, fake_data):
    name = "checkpoint-1.safetensors"  # after the first epoch
    full_disk(name)
    argv = ["train", "softmax", "--epochs", "2", "--batch-size", "16", "--data-dir", str(fake_data), "--out", "run"]
    code, _, err = cli(capsys, *argv)
    assert code == 2 and err == f"linear-nets: error: cannot write {Path('run', name)}: No space left on device\n"
    assert not Path("run").exists()


def test_evaluate_on_a_read_only_run_prints_its_results_and_says_they_were_not_saved(capsys, read_only, fake_data):
    from linear_nets.data.fashion_mnist import CLASSES
    from linear_nets.pipeline.fit import build_model
    from linear_nets.pipeline.runs import Run, run_config

    # a run as `train softmax` leaves it, without the training and its figures (seconds of drawing)
    trained = config.SoftmaxConfig(epochs=1)
    run = Run.create("softmax", run_config(config.to_dict(trained), {}, {"data_dir": str(fake_data)}), "run")
    run.save_model(build_model(trained, 784, 10).state_tensors(),
                   {"model": "softmax", "impl": trained.impl, "num_inputs": 784, "classes": list(CLASSES)})  # fmt: skip
    before = sorted(p.name for p in Path("run").iterdir())
    read_only(Path("run"))
    capsys.readouterr()
    code, out, err = cli(capsys, "evaluate", "run", "--data-dir", str(fake_data))
    assert code == 0 and "test accuracy" in out and "confusion matrix" in out and "wrote" not in out
    assert err == ("linear-nets: warning: the evaluation files were not saved "
                   "(cannot save run/confusion.png: directory run is not writable)\n")  # fmt: skip
    assert sorted(p.name for p in Path("run").iterdir()) == before
