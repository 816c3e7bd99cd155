"""A run directory's life: created atomically, resumed only as it was started, left complete or not at all.

Kills, concurrent runs and closed pipes run the real command in a subprocess (`DRIVER`: the CLI on the tiny
Fashion-MNIST look-alike); everything else runs in-process on the same data.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from linear_nets import checks, training
from linear_nets.cli import main
from linear_nets.data import fashion_mnist as fm
from linear_nets.pipeline.recorder import RunRecorder
from linear_nets.pipeline.runs import Run

SMALL = ["train", "softmax", "--batch-size", "8", "--threads", "1"]
EARLY_STOP = [*SMALL, "--val-fraction", "0.1", "--early-stopping", "1", "--epochs", "30"]

# The CLI in a fresh process, on the look-alike data whose facts the test passes in $FAKE_FACTS. With $HANG_AT set,
# the run stops after training, in the middle of an atomic write of its first figure, touches that file and waits
# to be killed: the moment after early stopping has decided and before the run has finished.
DRIVER = r"""
import json, os, sys, time
import linear_nets.data.fashion_mnist as fm
fm.FACTS = {split: fm.SplitFacts(*(fm.FileFacts(name, sha, tuple(shape)) for name, sha, shape in files))
            for split, files in json.loads(os.environ["FAKE_FACTS"]).items()}
if os.environ.get("HANG_AT"):
    import linear_nets.cli.train_softmax as train_softmax
    from linear_nets.atomic import atomic_open

    def hang(path, *args, **kwargs):
        with atomic_open(path / "curves.png") as f:
            f.write(b"half a figure")
            f.flush()
            open(os.environ["HANG_AT"], "w").close()
            time.sleep(600)

    train_softmax._figure_jobs = hang
from linear_nets.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def data(install_fake_fashion_mnist) -> str:
    """The look-alike's directory (the test works in its parent)."""
    return str(install_fake_fashion_mnist(n_train=60, n_test=30))


def driver(*argv: str, **env: str) -> subprocess.Popen:
    facts = {split: [(f.name, f.sha256, list(f.shape)) for f in s.files] for split, s in fm.FACTS.items()}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, *argv],
        env={**os.environ, "FAKE_FACTS": json.dumps(facts), "PYTHONUNBUFFERED": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def files_of(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below `root`: its bytes and modification time."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def without_seconds(path: Path) -> list:
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.suffix == ".jsonl" else [
        json.loads(path.read_text())]  # fmt: skip
    timings = ("seconds", "train_seconds", "load_seconds", "wall_seconds")

    def strip(value):
        return {k: strip(v) for k, v in value.items() if k not in timings} if isinstance(value, dict) else value

    return [strip(row) for row in rows]


def assert_same_run(ours: Path, theirs: Path) -> None:
    mine, reference = Run.open(ours).load_model()[0], Run.open(theirs).load_model()[0]
    assert all(torch.equal(mine[k], reference[k]) for k in reference)
    for name in ("metrics.jsonl", "summary.json"):
        assert without_seconds(ours / name) == without_seconds(theirs / name), name


def one_line_error(err: str, fragment: str) -> None:
    assert err.count("\n") == 1 and err.startswith("linear-nets: error: ") and "Traceback" not in err, err
    assert fragment in err, err


# --- 1 and 11: early stopping's decision survives a kill, a finished run stays as it is; stale temporaries go ---


def test_a_run_killed_after_early_stopping_decided_resumes_without_training_on(data, capsys):
    assert main([*EARLY_STOP, "--data-dir", data, "--out", "straight"]) == 0
    stopped_at = json.loads(Path("straight/summary.json").read_text())["epochs"]
    assert stopped_at < 30
    proc = driver(*EARLY_STOP, "--data-dir", data, "--out", "killed", HANG_AT="hanging")
    deadline = time.monotonic() + 120
    while not Path("hanging").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never reached its figures"
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    killed = Path("killed")
    assert not (killed / "summary.json").exists() and (killed / f"checkpoint-{stopped_at}.json").exists()
    assert list(killed.glob(".curves.png.*.tmp"))  # what the kill left mid-write (case 11)
    capsys.readouterr()
    assert main(["train", "softmax", "--resume", "killed"]) == 0
    assert_same_run(killed, Path("straight"))  # the same epochs, weights and summary: nothing trained past the stop
    assert "epoch  train loss" not in capsys.readouterr().out
    assert sorted(p.name for p in killed.iterdir()) == sorted(p.name for p in Path("straight").iterdir())
    assert_finished_run_stays("straight", stopped_at, capsys)  # stopped early


def assert_finished_run_stays(run: str, epochs: int, capsys) -> None:
    before = files_of(Path(run))
    capsys.readouterr()
    assert main(["train", "softmax", "--resume", run]) == 0
    assert capsys.readouterr() == (f"{run} already finished ({epochs} epochs): nothing to resume\n", "")
    assert files_of(Path(run)) == before


def test_resuming_a_finished_run_changes_nothing_and_says_so(data, capsys):
    assert main([*SMALL, "--epochs", "2", "--data-dir", data, "--out", "run"]) == 0
    assert_finished_run_stays("run", 2, capsys)


# --- 2: two runs at once never share a directory ---

_exists = Path.exists


def slow_exists(self: Path, *args, **kwargs) -> bool:
    """`Path.exists`, descheduled for a moment after answering about a run directory, as on a busy machine: a
    look-then-create race cannot hide."""
    answer = _exists(self, *args, **kwargs)
    if self.name == "shared" or self.name.startswith("linreg-"):
        time.sleep(0.2)
    return answer


RACE = ["train", "linreg", "--solver", "closed-form"]  # a run without figures: no plotting to import


def race(seed: str) -> list[int]:
    """One of two racers: at a start line both train with the same --out, at a second one with no --out (so in the
    same second); the exit codes."""

    def start_line(name: str) -> None:
        open(f"{name}-{seed}", "w").close()
        while not all(os.path.exists(f"{name}-{s}") for s in ("1", "2")):
            time.sleep(0.005)

    start_line("ready")
    codes = [main([*RACE, "--seed", seed, "--out", "shared"])]
    start_line("again")
    return [*codes, main([*RACE, "--seed", seed])]


def test_runs_started_at_the_same_moment_never_share_a_directory(capsys, monkeypatch):
    references = {}
    for seed in (1, 2):
        assert main([*RACE, "--seed", str(seed), "--out", f"ref-{seed}"]) == 0
        references[seed] = without_seconds(Path(f"ref-{seed}/summary.json"))
    capsys.readouterr()
    # racer 2 in a subprocess (everything imported before its start line), racer 1 here
    code = "\n".join(["import os, sys, time", "from pathlib import Path", "from linear_nets.cli import main",
                      "import linear_nets.pipeline.fit", f"RACE = {RACE!r}", "_exists = Path.exists",
                      inspect.getsource(slow_exists), "Path.exists = slow_exists", inspect.getsource(race),
                      "print('codes', *race('2'))"])  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with monkeypatch.context() as patch:
        patch.setattr(Path, "exists", slow_exists)
        here = race("1")
    out, err = proc.communicate(timeout=120)
    there = [int(c) for c in out.split("codes ")[-1].split()]
    ours = capsys.readouterr().err
    assert sorted([here[0], there[0]]) == [0, 2], (here, there, out, err)  # one took --out shared, one was refused
    one_line_error(ours if here[0] == 2 else err, "--out shared: exists and is not an empty directory")
    assert here[1] == there[1] == 0, (here, there, out, err)
    made = [Path("shared"), *Path("runs").iterdir()]
    assert len(made) == 3  # the winner's shared run and two default names
    seeds = []
    for run in made:  # each directory holds one run: its config and its results agree
        seed = json.loads((run / "config.json").read_text())["config"]["seed"]
        assert without_seconds(run / "summary.json") == references[seed], run
        seeds.append(seed)
    assert sorted(seeds) in ([1, 1, 2], [1, 2, 2])
    assert not [p for p in Path().rglob(".*") if p.name.endswith(".tmp")]


# --- 3: resume continues a run as it was started ---


def test_resume_refuses_every_option_that_would_change_the_run_naming_each(data, capsys):
    assert main([*SMALL, "--epochs", "2", "--data-dir", data, "--out", "run"]) == 0
    before = files_of(Path())
    capsys.readouterr()
    assert main(["train", "softmax", "--resume", "run", "--epochs", "50", "--lr", "9", "--out", "X"]) == 2
    one_line_error(capsys.readouterr().err, "--lr 9.0 (run: 0.1), --epochs 50 (run: 2), --out X (run: run) cannot "
                   "change when resuming; only --data-dir, --threads and --device may differ")  # fmt: skip
    assert files_of(Path()) == before
    # the run's own values, typed again, are no change
    assert main(["train", "softmax", "--resume", "run", "--epochs", "2", "--lr", "0.1", "--out", "run",
                 "--data-dir", data]) == 0  # fmt: skip


def test_resume_refuses_a_checkpoint_that_disagrees_with_config_json(data, capsys, monkeypatch):
    on_epoch_end = RunRecorder.on_epoch_end

    def interrupt_after_epoch_1(self, record):
        on_epoch_end(self, record)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunRecorder, "on_epoch_end", interrupt_after_epoch_1)
    assert main([*SMALL, "--epochs", "3", "--data-dir", data, "--out", "run"]) == 130
    monkeypatch.setattr(RunRecorder, "on_epoch_end", on_epoch_end)
    config = json.loads(Path("run/config.json").read_text())
    config["config"]["lr"] = 50.0
    Path("run/config.json").write_text(json.dumps(config))
    before = files_of(Path("run"))
    capsys.readouterr()
    assert main(["train", "softmax", "--resume", "run"]) == 2
    one_line_error(capsys.readouterr().err, "run/checkpoint-1.safetensors was written with lr 0.1, but this fit asks "
                   "for lr 50.0")  # fmt: skip
    assert files_of(Path("run")) == before


# --- 4: Ctrl-C before any epoch was saved leaves nothing to resume, so nothing at all ---


def test_ctrl_c_in_the_first_epoch_removes_the_run_instead_of_offering_a_resume(data, capsys, monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_epoch", ctrl_c)
    assert main([*SMALL, "--epochs", "3", "--data-dir", data, "--out", "run"]) == 130
    err = capsys.readouterr().err
    assert err == "linear-nets: interrupted in epoch 1, before any epoch was saved; removed run\n"
    assert not Path("run").exists()


# --- 5: an overflowing step is a divergence; --out through a symlink; a closed output pipe ---


@pytest.mark.parametrize(
    "argv",
    [
        [*SMALL, "--impl", "manual", "--lr", "1e300"],
        [*SMALL, "--impl", "scratch", "--weight-decay", "1e300"],
        [*SMALL, "--impl", "concise", "--optimizer", "adam", "--lr", "1e300"],
        [*SMALL, "--impl", "concise", "--optimizer", "lbfgs", "--lr", "1e300"],
        [*SMALL, "--impl", "concise", "--optimizer", "lbfgs", "--lr", "1e30"],  # NaN: torch's line search fails
        ["train", "linreg", "--impl", "concise", "--lr", "1e300"],
    ],
    ids=["manual-lr", "scratch-weight-decay", "adam-lr", "lbfgs-lr", "lbfgs-nan", "linreg-concise-lr"],
)
def test_a_step_that_overflows_is_a_divergence(data, capsys, argv):
    data_dir = ["--data-dir", data] if argv[1] == "softmax" else []
    assert main([*argv, *data_dir, "--out", "run"]) == 2
    one_line_error(capsys.readouterr().err, "training diverged")
    assert not Path("run").exists()


def test_out_through_a_symlink_to_an_empty_directory(capsys):
    Path("target").mkdir()
    Path("link").symlink_to("target")
    assert main(["train", "linreg", "--lr", "100", "--out", "link"]) == 2  # diverges
    one_line_error(capsys.readouterr().err, "training diverged")
    assert not Path("target").exists() or not any(Path("target").iterdir())
    Path("target").mkdir(exist_ok=True)
    assert main(["train", "linreg", "--out", "link"]) == 0
    assert (Path("target") / "summary.json").exists() and Path("link").is_symlink()


def test_output_into_a_closed_pipe_stops_quietly_and_leaves_a_resumable_run(tmp_path, install_fake_fashion_mnist):
    # `linear-nets train softmax ... | head -1`: 2000 images a batch at a time, so training is still on when head
    # has left
    data = str(install_fake_fashion_mnist(n_train=2000, n_test=30))
    proc = driver(*SMALL, "--batch-size", "1", "--epochs", "20", "--data-dir", data, "--out", "run")
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert first.startswith("softmax regression") and proc.returncode == 1
    saved = re.fullmatch(r"linear-nets: output closed after epoch (\d+); saved to run\. "
                         r"Resume with: linear-nets train softmax --resume run\n", err)  # fmt: skip
    assert saved, err
    assert Run.open("run").load_checkpoint()[1]["epoch"] == int(saved.group(1)) < 20


KILLED_BEFORE_THE_FIRST_EPOCH = """
import os, sys
import linear_nets.pipeline.fit as fit
fit.fit_softmax = lambda *args, **kwargs: os.kill(os.getpid(), 9)  # SIGKILL once config.json is all there is
from linear_nets.cli import main
main(sys.argv[1:])
"""


def test_a_run_killed_before_its_first_epoch_is_started_again_by_the_same_command(tmp_path, capsys):
    """SIGKILL between config.json and the first checkpoint leaves a directory with nothing to resume: `--resume`
    says so in one line, and the same command run again reuses the directory. A run still starting (its process
    alive, holding the directory's lock) is never taken over."""
    Path("t.csv").write_text("x,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(40)))
    argv = ["train", "softmax", "--data", "t.csv", "--target", "label", "--epochs", "1", "--out", "run"]
    killed = subprocess.run([sys.executable, "-c", KILLED_BEFORE_THE_FIRST_EPOCH, *argv], capture_output=True)
    assert killed.returncode == -9 and sorted(p.name for p in Path("run").iterdir()) == ["config.json"]
    assert main(["train", "softmax", "--resume", "run"]) == 2
    assert "stopped before its first epoch ended: there is nothing to resume" in capsys.readouterr().err
    assert main(argv) == 0 and Path("run/summary.json").exists()
    Run.create("softmax", {"config": {}}, "starting")  # this process lives and holds it: a run still starting
    assert main([*argv[:-1], "starting"]) == 2
    assert "--out starting: exists and is not an empty directory" in capsys.readouterr().err


def test_training_never_writes_a_config_its_readers_would_refuse(capsys, monkeypatch):
    Path("t.csv").write_text("x,city,y\n" + "".join(f"{i},{'c' * 300}{i % 50},{i}\n" for i in range(200)))
    argv = ["train", "linreg", "--data", "t.csv", "--target", "y", "--categorical", "city", "--solver",
            "closed-form", "--out", "run"]  # fmt: skip
    with monkeypatch.context() as patch:
        patch.setattr(checks, "MAX_JSON_BYTES", 10_000)  # 50 names of 300 characters: about 40 kB of config.json
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert "above the 0 MiB a run directory's files may hold" in err and not Path("run").exists()
    assert main(argv) == 0 and main(["evaluate", "run"]) == 0
