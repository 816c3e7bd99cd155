"""The command line as a whole: a closed output pipe ends quietly, `python -m linear_nets` runs."""

from __future__ import annotations

import json
import subprocess
import sys


def test_output_into_a_closed_pipe_exits_quietly():
    # `linear-nets train linreg | head -1`: head exits after one line; no traceback may reach the terminal
    script = "import sys; from linear_nets.cli import main; sys.exit(main(['train', 'linreg', '--epochs', '3']))"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert first.startswith(b"linreg:") and "Traceback" not in err and "BrokenPipeError" not in err


def test_the_command_ends_at_once_with_its_output_flushed_and_its_exit_status(tmp_path):
    """`run` ends the process with os._exit (no interpreter teardown): what it printed must still reach a file (fully
    buffered, not a terminal), its files be whole, and its status be main's; a closed pipe ends quietly."""
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        done = subprocess.run([sys.executable, "-m", "linear_nets", "train", "linreg", "--epochs", "2", "--out",
                               str(tmp_path / "run")], stdout=stdout, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert done.returncode == 0 and done.stderr == ""
    text = out.read_text()
    assert text.startswith("linreg:") and text.endswith(f"run directory: {tmp_path / 'run'}\n")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == 2
    failed = subprocess.run([sys.executable, "-m", "linear_nets", "train", "linreg", "--epochs", "0"],
                            capture_output=True, text=True)  # fmt: skip
    assert failed.returncode == 2 and failed.stderr == "linear-nets: error: --epochs must be an integer >= 1, got 0\n"
    script = "from linear_nets.cli import run; run()"
    proc = subprocess.Popen([sys.executable, "-c", script, "train", "linreg", "--epochs", "3"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.readline()
    proc.stdout.close()
    assert "Traceback" not in proc.stderr.read().decode() and proc.wait(timeout=60) in (0, 1)


def test_version_and_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "linear_nets", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("linear-nets ")


def test_under_torchrun_an_error_line_is_one_write_and_says_which_rank(monkeypatch, capsys):
    """Every process torchrun starts shares the terminal: rank 0's line is the usual one, another rank's says
    which it is, and each is written whole (print's two writes let two processes' lines run together)."""
    from linear_nets.cli import main

    writes = []
    monkeypatch.setattr(sys.stderr, "write", lambda text: writes.append(text) or len(text))
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job")
    monkeypatch.setenv("RANK", "1")
    assert main(["train", "linreg", "--cov", "HC1"]) == 2
    assert writes == ["[rank 1] linear-nets: error: --cov applies to the least-squares solvers (closed-form, "
                      "normal-equations), not --solver sgd\n"]  # fmt: skip
    monkeypatch.setenv("RANK", "0")
    writes.clear()
    assert main(["train", "linreg", "--cov", "HC1"]) == 2
    assert len(writes) == 1 and writes[0].startswith("linear-nets: error: --cov applies")
