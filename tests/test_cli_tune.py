"""`linear-nets tune softmax`: the table, the choice, the same numbers for the same seed, one-line errors."""

from __future__ import annotations

import json
import os

import pytest
from safetensors.torch import load_file

from linear_nets.cli import main
from linear_nets.pipeline.config import SOFTMAX_PRESETS as PRESETS


@pytest.fixture
def fixture_data(install_fake_fashion_mnist):
    """A 100 + 20 image Fashion-MNIST look-alike (10 per class in train) that the package accepts as the real one."""
    return install_fake_fashion_mnist(n_train=100, n_test=20)


def tune(data, *extra: str) -> list[str]:
    argv = ["tune", "softmax", "--lr", "0.01,0.1", "--weight-decay", "0,0.001", "--epochs", "2"]
    return [*argv, "--val-fraction", "0.2", "--data-dir", str(data), *extra]


def test_prints_a_row_per_configuration_and_the_choice(fixture_data, capsys):
    assert main(tune(fixture_data)) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("tuning softmax regression (concise, momentum, cosine schedule, standardized)")
    assert "100 training images, 0.2 of each class held out" in lines[0]  # 20% of each class held out
    assert lines[1].split() == ["lr", "wd", "batch", "best", "epoch", "val", "acc", "seconds"]
    rows = [line.split() for line in lines[2:6]]
    assert sorted((r[0], r[1]) for r in rows) == [("0.01", "0"), ("0.01", "0.001"), ("0.1", "0"), ("0.1", "0.001")]
    best_acc = max(float(r[4]) for r in rows)
    tied = {f"chosen: lr {r[0]}, weight decay {r[1]}, batch 256" for r in rows if float(r[4]) == best_acc}
    assert lines[6].split(" (best epoch")[0] in tied  # ties go to the faster fit
    assert lines[6].endswith(f"validation accuracy {best_acc:.4f}")
    assert lines[7].startswith("train it: linear-nets train softmax --impl concise --optimizer momentum")
    assert err == ""
    assert os.listdir(".") == ["data"]  # nothing written


def test_same_seed_same_table(fixture_data, capsys):
    def rows(seed: str) -> list[list[str]]:
        assert main(tune(fixture_data, "--seed", seed)) == 0
        return [line.split()[:5] for line in capsys.readouterr().out.splitlines()[2:6]]

    assert rows("3") == rows("3")


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--val-fraction", "1"], "--val-fraction must be a finite number > 0 and < 1, got 1.0"),
        (["--val-fraction", "0"], "--val-fraction must be a finite number > 0 and < 1, got 0.0"),
        (["--weight-decay", "-0.1"], "--weight-decay must be a finite number >= 0, got -0.1"),
        (["--lr", "0,0.1"], "--lr must be a finite number > 0, got 0.0"),
        (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
        (["--batch-size", "2.5"], "--batch-size must be an integer >= 1, got 2.5"),
        (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
    ],
)
def test_bad_values_print_one_line_and_exit_2(fixture_data, capsys, flags, message):
    argv = ["tune", "softmax", *flags, "--data-dir", str(fixture_data)]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"linear-nets: error: {message}\n" or (err.count("\n") == 1 and message in err)
    assert os.listdir(".") == ["data"]


@pytest.mark.needs_data
def test_tunes_on_the_real_data(capsys):
    argv = ["tune", "softmax", "--lr", "0.01", "--weight-decay", "0", "--epochs", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "60000 training images, 0.1 of each class held out for validation" in out
    assert float(out.splitlines()[2].split()[4]) > 0.8


# --- the same flags on `linear-nets train softmax` ----------------------------------------------------------------


def train_softmax(data, *extra: str) -> list[str]:
    return ["train", "softmax", "--epochs", "3", "--batch-size", "16", "--data-dir", str(data), "--out", "run", *extra]


def test_train_with_a_validation_split_scores_the_test_set_once_with_the_best_epoch(fixture_data, capsys):
    argv = train_softmax(fixture_data, "--val-fraction", "0.2", "--standardize", "--weight-decay", "0.001")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "100 train / 20 test images" in out
    assert "val acc" in out.splitlines()[1]
    val_accs = [float(line.split()[3]) for line in out.splitlines() if line.strip()[:1].isdigit()]
    summary = json.loads((fixture_data.parent / "run" / "summary.json").read_text())
    assert summary["val_accuracy"] == pytest.approx(max(val_accs), abs=1e-4)
    assert summary["best_epoch"] == 1 + val_accs.index(max(val_accs))
    assert f"test accuracy   {summary['test_accuracy']:.4f}" in out
    saved = load_file(fixture_data.parent / "run" / "model.safetensors")
    assert {"mean", "std"} <= set(saved)  # the standardisation is stored with the model
    assert saved["std"].min() >= 0.01


def test_early_stopping_stops_and_the_preset_sets_every_flag(fixture_data, capsys):
    assert main(train_softmax(fixture_data, "--preset", "best", "--epochs", "1")) == 0
    out = capsys.readouterr().out
    best = PRESETS["best"]
    assert f"batch 16, lr {best.lr}" in out  # the preset sets lr; the flags given beside it (batch 16) still apply
    config = json.loads((fixture_data.parent / "run" / "config.json").read_text())["config"]
    assert (config["optimizer"], config["schedule"], config["standardize"]) == (best.optimizer, best.schedule, True)
    assert config["early_stopping"] == best.early_stopping and config["val_fraction"] == 0.1
    assert (config["epochs"], config["batch_size"]) == (1, 16)
    epochs = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(epochs) == 1


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--val-fraction", "1.5"], "--val-fraction must be a finite number > 0 and < 1, got 1.5"),
        (["--val-fraction", "0"], "--val-fraction must be a finite number > 0 and < 1, got 0.0"),
        (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0, got -1.0"),
        (["--optimizer", "rmsprop"], "--optimizer must be one of sgd, momentum, adam, lbfgs, got rmsprop"),
        (["--impl", "concise", "--optimizer", "lbfgs", "--schedule", "cosine"], "--optimizer lbfgs chooses its own"),
        (["--schedule", "linear"], "--schedule must be one of constant, step, cosine, got linear"),
        (["--early-stopping", "3"], "--early-stopping needs a validation split: set --val-fraction"),
        (["--impl", "manual", "--optimizer", "adam"], "--optimizer adam needs --impl concise"),
        (["--standardize", "--resize", "14"], "--standardize is fitted on the 28 x 28 pixels"),
    ],
)
def test_train_bad_values_print_one_line_and_exit_2(fixture_data, capsys, flags, message):
    assert main(train_softmax(fixture_data, *flags)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("linear-nets: error: ") and message in err
    assert not os.path.exists("run")  # nothing half-written


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--preset", "fastest"], "argument --preset: invalid choice: 'fastest' (choose from 'book', 'best')"),
        (["--batch-size", "abc"], "argument --batch-size: invalid int value: 'abc'"),
    ],
)
def test_argparse_errors_are_a_short_usage_line_and_the_error(fixture_data, capsys, flags, message):
    with pytest.raises(SystemExit) as exc:
        main(train_softmax(fixture_data, *flags))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 2 and err.startswith("usage: linear-nets train softmax")
    assert message in err
    assert not os.path.exists("run")  # nothing half-written


def test_evaluate_reloads_a_standardized_run(fixture_data, capsys):
    assert main(train_softmax(fixture_data, "--val-fraction", "0.2", "--standardize", "--epochs", "2")) == 0
    capsys.readouterr()
    assert main(["evaluate", "run", "--data-dir", str(fixture_data)]) == 0
    summary = json.loads((fixture_data.parent / "run" / "summary.json").read_text())
    assert f"{summary['test_accuracy']:.4f}" in capsys.readouterr().out  # the mean and std were loaded, not 0 and 1
