"""`linear-nets train linreg`: output, recovery of w and b, reproducibility, and bad arguments."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from linear_nets.cli import main


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # run directories land in runs/ below the working directory


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout without the run-directory line (a timestamp), stderr."""
    try:
        code = main(["train", "linreg", *args])
    except SystemExit as exc:  # argparse rejects a value before the handler runs
        code = exc.code
    out, err = capsys.readouterr()
    out = "".join(line for line in out.splitlines(keepends=True) if not line.startswith("run directory: "))
    return code, out, err


def estimates(out: str) -> tuple[list[float], float]:
    w = re.search(r"^estimated w: \[(.*)\]$", out, re.M).group(1)
    b = re.search(r"^estimated b: (\S+)$", out, re.M).group(1)
    return [float(v) for v in w.split(",")], float(b)


@pytest.mark.parametrize(
    "args",
    [
        ["--impl", "scratch"],
        ["--impl", "manual"],
        ["--impl", "concise"],
        ["--impl", "manual", "--loss", "huber", "--epochs", "5"],
        ["--impl", "concise", "--loss", "l1", "--lr", "0.01", "--epochs", "10"],
        ["--solver", "closed-form"],
    ],
)
def test_recovers_the_true_parameters(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 0 and err == ""
    epochs = re.findall(r"^epoch (\d+), loss (\S+)$", out, re.M)
    expected_epochs = 0 if "closed-form" in args else int(args[args.index("--epochs") + 1]) if "--epochs" in args else 3
    assert [int(e) for e, _ in epochs] == list(range(1, expected_epochs + 1))
    w, b = estimates(out)
    assert abs(w[0] - 2) < 0.01 and abs(w[1] + 3.4) < 0.01 and abs(b - 4.2) < 0.01
    errors = re.search(r"^error in estimating w: \[(.*)\]$", out, re.M).group(1)
    assert [float(v) for v in errors.split(",")] == pytest.approx([2 - w[0], -3.4 - w[1]], abs=2e-6)
    assert float(re.search(r"^error in estimating b: (\S+)$", out, re.M).group(1)) == pytest.approx(4.2 - b, abs=2e-6)


def test_options_change_the_problem(capsys):
    code, out, _ = run(
        capsys, "--true-w", "1,2,3", "--true-b", "-1", "--samples", "500", "--noise", "0", "--epochs", "10"
    )
    assert code == 0
    w, b = estimates(out)
    assert w == pytest.approx([1, 2, 3], abs=1e-3) and b == pytest.approx(-1, abs=1e-3)
    assert "500 examples, 3 features" in out


def test_same_command_same_output(capsys):
    args = ["--impl", "concise", "--loss", "huber", "--huber-delta", "0.5", "--seed", "7"]
    first, second = run(capsys, *args), run(capsys, *args)
    assert first == second and first[0] == 0
    assert run(capsys, *args[:-1], "8")[1] != first[1]


def test_diverging_learning_rate_exits_2_without_printing_weights(capsys):
    code, out, err = run(capsys, "--lr", "100")
    assert code == 2
    assert err.count("\n") == 1 and "training diverged" in err and "--lr" in err
    assert "estimated" not in out and "nan" not in out.lower()
    assert list(Path("runs").iterdir()) == []  # the failed run's directory was removed


def test_run_directory_holds_config_metrics_model_and_summary(capsys):
    import json

    from linear_nets.pipeline.runs import Run

    assert main(["train", "linreg", "--impl", "manual", "--out", "myrun"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "run directory: myrun"
    run_dir = Run.open("myrun", model="linreg")
    assert run_dir.config["config"]["impl"] == "manual" and run_dir.config["versions"]["torch"]
    assert run_dir.config["data"]["synthetic"] == {"true_w": [2.0, -3.4], "true_b": 4.2, "samples": 1000, "noise": 0.01}
    names = {p.name for p in Path("myrun").iterdir()}
    assert {
        "config.json",
        "metrics.csv",
        "metrics.jsonl",
        "curves.png",
        "curves.svg",
        "model.safetensors",
        "model.json",
        "summary.json",
    } <= names
    tensors, meta = run_dir.load_model()
    assert meta["model"] == "linreg"
    summary = json.loads(Path("myrun/summary.json").read_text())
    w, b = estimates(out)
    assert tensors["w"].tolist() == pytest.approx(w, abs=1e-6) and summary["estimated_b"] == pytest.approx(b, abs=1e-6)
    assert len((Path("myrun") / "metrics.jsonl").read_text().splitlines()) == 3 == summary["epochs"]
    # the same --out again is refused and the first run is left as it was
    assert main(["train", "linreg", "--out", "myrun"]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert Run.open("myrun").load_model()[0]["w"].tolist() == tensors["w"].tolist()


def test_rank_deficient_closed_form_warns_in_one_line(capsys):
    code, out, err = run(capsys, "--solver", "closed-form", "--true-w", "1,2,3", "--samples", "2")
    assert code == 0 and "estimated w" in out
    assert err.startswith("linear-nets: warning: the design has rank 2 < 4") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--huber-delta", "2"], "--huber-delta applies to --loss huber only"),
        (["--solver", "closed-form", "--loss", "l1"], "cannot use --loss l1"),
    ],
)
def test_inconsistent_options_exit_2_with_one_line(capsys, args, fragment):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and fragment in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
        (["--batch-size", "abc"], "argument --batch-size: invalid int value: 'abc'"),
        (["--epochs", "-1"], "--epochs must be an integer >= 1, got -1"),
        (["--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
        (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
        (["--samples", "1.5"], "argument --samples: invalid int value: '1.5'"),
        (["--samples", "0"], "--samples must be an integer >= 1, got 0"),
        (["--true-w", "1,nan"], "--true-w must be a non-empty list of finite numbers, got 1,nan"),
        (["--true-w", "1,,2"], "argument --true-w: expected comma-separated numbers"),
        (["--true-b", "inf"], "--true-b must be a finite number, got inf"),
        (["--noise", "-0.1"], "--noise must be a finite number >= 0, got -0.1"),
        (["--huber-delta", "0"], "--huber-delta must be a finite number > 0, got 0.0"),
        (["--impl", "numpy"], "--impl must be one of scratch, manual, concise, got numpy"),
    ],
)
def test_bad_values_print_a_short_error_and_exit_2(capsys, args, fragment):
    """A range error is one line; a value argparse cannot convert is argparse's error under one short usage line."""
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert fragment in err and err.count("\n") <= 2
    assert not list(Path(".").glob("runs/*"))  # nothing was written


def test_console_script_as_a_new_user_runs_it():
    script = Path(sys.executable).with_name("linear-nets")
    result = subprocess.run(
        [str(script), "train", "linreg", "--impl", "manual"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\nepoch ") == 3 and "estimated w" in result.stdout
