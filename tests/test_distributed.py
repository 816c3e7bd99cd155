"""Data-parallel training under torchrun (gloo, CPU): equal to one process, resumable after a kill, two "nodes".

Every torchrun launch costs seconds (torch is imported by the launcher and by each process), so each test launches
as few as it can: one launch runs every implementation and the closed form (tests/torchrun_driver.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from linear_nets.cli import main
from linear_nets.errors import ConfigError
from linear_nets.pipeline.distributed import World, check_rows, detect, share
from linear_nets.pipeline.runs import load_tensors

DRIVER = Path(__file__).parent / "torchrun_driver.py"
CLASSES = ["--data", "classes.parquet", "--target", "label", "--epochs", "3", "--batch-size", "64"]
REGRESSION = ["--data", "regression.parquet", "--target", "y", "--solver", "closed-form"]


def launcher(*options: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *options]


def environment() -> dict[str, str]:
    # one thread per process (torchrun's own default, set here to keep its warning out of the output)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def torchrun(cwd: Path, *args: str, nproc: int = 2, options: tuple[str, ...] = (), timeout: float = 240):
    command = launcher("--standalone", f"--nproc-per-node={nproc}", *options, "-m", "linear_nets", *args)
    return subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=timeout)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_tensors(run / "model.safetensors")[0]


def assert_same_weights(run: Path, reference: Path, atol: float) -> None:
    ours, theirs = weights(run), weights(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=atol, msg=name)


def our_lines(stderr: str) -> list[str]:
    """The lines the processes printed (not torchrun's own log and report)."""
    return [line for line in stderr.splitlines() if line.startswith(("linear-nets", "[rank"))]


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    """A 3-class table of 413 rows (seed 0 holds out 92, so 321 train: batches of 64 end with one row, which leaves
    the other process an empty share) and a 600-row regression table, in Parquet row groups of 100 and 60."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(413, 6))
    label = (X @ rng.normal(size=(6, 3)) + rng.gumbel(size=(413, 3))).argmax(1)
    columns = {f"x{i}": X[:, i] for i in range(6)} | {"label": np.array(["a", "b", "c"])[label]}
    pq.write_table(pa.table(columns), folder / "classes.parquet", row_group_size=100)
    X = rng.normal(size=(600, 5)) * [1, 10, 100, 0.1, 1]
    columns = {f"x{i}": X[:, i] for i in range(5)} | {"y": X @ [1, -2, 0.03, 40, 5] + 3 + rng.normal(size=600)}
    pq.write_table(pa.table(columns), folder / "regression.parquet", row_group_size=60)
    return folder


def test_two_processes_train_what_one_process_trains(tables):
    """Each implementation, and the closed form in memory and streamed: 2 processes x their shares = 1 process."""
    commands = {
        "scratch": ["train", "softmax", *CLASSES, "--impl", "scratch"],
        "manual": ["train", "softmax", *CLASSES, "--impl", "manual", "--weight-decay", "0.01"],
        "concise": ["train", "softmax", *CLASSES, "--impl", "concise", "--optimizer", "momentum", "--standardize",
                    "--val-fraction", "0.2"],
        "streamed": ["train", "softmax", *CLASSES, "--impl", "manual", "--stream"],
        "closed-form": ["train", "linreg", *REGRESSION],
        "closed-form-streamed": ["train", "linreg", *REGRESSION, "--stream"],
        "closed-form-hc3-streamed": ["train", "linreg", *REGRESSION, "--stream", "--cov", "HC3"],
    }
    runs = [[*argv, "--out", f"dp-{name}"] for name, argv in commands.items()]
    (tables / "commands.json").write_text(json.dumps(runs))
    launched = subprocess.run(launcher("--standalone", "--nproc-per-node=2", str(DRIVER), "commands.json"),
                              cwd=tables, env=environment(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert "x 2 processes (data-parallel)" in launched.stdout  # rank 0 says so; rank 1 prints nothing
    assert launched.stdout.count("softmax regression") == 4
    for name, argv in commands.items():
        os.chdir(tables)
        threads = ["--threads", "1"] if argv[1] == "softmax" else []
        assert main([*argv, *threads, "--out", f"one-{name}"]) == 0
        # float32 SGD: the same steps, the sums added in another order (measured: at most 2e-7 apart)
        atol = 1e-12 if name.startswith("closed-form") else 1e-6
        if name.startswith("closed-form"):  # relative to the coefficients, which span 0.03 to 40
            ours, theirs = weights(tables / f"dp-{name}"), weights(tables / f"one-{name}")
            for key in ours:
                assert torch.allclose(ours[key], theirs[key], rtol=1e-8, atol=0), key
            # the OLS summary too: R factors combined across processes (TSQR), second-pass sums gathered
            summary, reference = (json.loads((tables / f"{kind}-{name}" / "summary.json").read_text())
                                  for kind in ("dp", "one"))  # fmt: skip
            for key in ("standard_errors", "p_values", "t_values"):
                for column, value in reference[key].items():
                    assert summary[key][column] == pytest.approx(value, rel=1e-8), (name, key, column)
            for key in ("train_r2", "f_statistic", "log_likelihood", "residual_std"):
                assert summary[key] == pytest.approx(reference[key], rel=1e-8), (name, key)
            assert summary["cov_type"] == reference["cov_type"] == ("HC3" if "hc3" in name else "nonrobust")
            continue
        assert_same_weights(tables / f"dp-{name}", tables / f"one-{name}", atol)
    assert not (tables / "dp-manual" / "predictions.png").exists()  # a table: no images
    summary = json.loads((tables / "dp-concise" / "summary.json").read_text())
    reference = json.loads((tables / "one-concise" / "summary.json").read_text())
    assert summary["test_accuracy"] == pytest.approx(reference["test_accuracy"], abs=1e-9)
    assert summary["val_accuracy"] == pytest.approx(reference["val_accuracy"], abs=1e-9)
    config = json.loads((tables / "dp-manual" / "config.json").read_text())
    assert config["options"]["torchrun_job"]
    assert config["data"]["train_rows"] == 5 * 64 + 1  # the last batch's one row: the other process's share is empty


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def kill_one_worker(launch: subprocess.Popen) -> None:
    """SIGKILL the last worker torchrun started (rank 1)."""
    workers = subprocess.run(["pgrep", "-P", str(launch.pid)], capture_output=True, text=True).stdout.split()
    os.kill(int(workers[-1]), signal.SIGKILL)


FASHION = ["train", "softmax", "--epochs", "4", "--batch-size", "256"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The 4-epoch Fashion-MNIST run of one process, to compare resumed data-parallel runs with."""
    folder = tmp_path_factory.mktemp("reference")
    os.chdir(folder)
    assert main([*FASHION, "--threads", "1", "--out", "reference"]) == 0
    return folder / "reference"


@pytest.mark.needs_data
def test_killed_worker_stops_the_group_and_resume_finishes_the_run(tmp_path, uninterrupted):
    """Without torchrun's restart, a killed worker stops the other with one line (no hang, no traceback);
    `--resume` under torchrun then ends with the weights of an uninterrupted run."""
    command = launcher("--standalone", "--nproc-per-node=2", "-m", "linear_nets", *FASHION, "--out", "run")
    launch = subprocess.Popen(command, cwd=tmp_path, env=environment(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(tmp_path / "run" / "checkpoint-1.json", launch)
    kill_one_worker(launch)
    _, stderr = launch.communicate(timeout=60)
    assert launch.returncode != 0
    lines = our_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("linear-nets: error:"), stderr[-3000:]
    assert "Traceback" not in "".join(line for line in stderr.splitlines() if line.startswith("[rank"))
    assert not (tmp_path / "run" / "model.safetensors").exists()
    resumed = torchrun(tmp_path, "train", "softmax", "--resume", "run")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    assert_same_weights(tmp_path / "run", uninterrupted, atol=1e-5)


@pytest.mark.needs_data
def test_elastic_restart_after_sigkill_resumes_from_the_last_checkpoint(tmp_path, uninterrupted):
    """`torchrun --max-restarts=1`: a worker killed mid-run brings the group back, which resumes from the last
    checkpoint and ends with the weights of an uninterrupted run."""
    command = launcher("--standalone", "--nproc-per-node=2", "--max-restarts=1", "-m", "linear_nets", *FASHION,
                       "--out", "run")  # fmt: skip
    launch = subprocess.Popen(command, cwd=tmp_path, env=environment(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(tmp_path / "run" / "checkpoint-1.json", launch)
    kill_one_worker(launch)
    stdout, stderr = launch.communicate(timeout=240)
    assert launch.returncode == 0, stderr[-3000:]
    assert "resuming" in stdout
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in metrics] == [1, 2, 3, 4]
    assert_same_weights(tmp_path / "run", uninterrupted, atol=1e-5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(cwd: Path, first: list[str], second: list[str]) -> list[subprocess.CompletedProcess]:
    """Two torchrun launches, one process each, meeting at a rendezvous on 127.0.0.1 as two machines would."""
    port = free_port()
    rendezvous = ("--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
                  "--rdzv-id=two-nodes")  # fmt: skip
    launches = [
        subprocess.Popen(launcher(*rendezvous, "-m", "linear_nets", *argv), cwd=cwd, env=environment(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for argv in (first, second)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=240), *p.communicate()) for p in launches]


def test_two_nodes_rendezvous_and_refuse_different_options(tables, tmp_path):
    argv = ["train", "softmax", *CLASSES, "--impl", "manual", "--out", str(tmp_path / "two")]
    for done in two_nodes(tables, argv, argv):
        assert done.returncode == 0, done.stderr[-3000:]
    os.chdir(tables)
    one = str(tmp_path / "one")
    assert main(["train", "softmax", *CLASSES, "--impl", "manual", "--threads", "1", "--out", one]) == 0
    assert_same_weights(tmp_path / "two", tmp_path / "one", atol=1e-6)

    differing = ["train", "softmax", *CLASSES, "--impl", "manual", "--lr", "0.2", "--out", str(tmp_path / "other")]
    for done in two_nodes(tables, [*argv[:-2], "--out", str(tmp_path / "other")], differing):
        assert done.returncode != 0
        lines = our_lines(done.stderr)
        assert len(lines) == 1 and "the processes were started differently: --lr is" in lines[0], done.stderr[-2000:]
    assert not (tmp_path / "other").exists()


def test_more_processes_than_training_rows_is_one_line():
    from linear_nets.pipeline.config import SoftmaxConfig
    from linear_nets.pipeline.fit import Dataset, fit_softmax

    data = Dataset((torch.randn(3, 2), torch.tensor([0, 1, 0])))
    with pytest.raises(ConfigError, match="4 processes but only 3 training rows: start at most 3"):
        fit_softmax(SoftmaxConfig(epochs=1), data, world=World(rank=0, size=4, launched=True))
    check_rows(World(size=3, launched=True), 3)


def test_torchrun_environment_is_read_and_checked():
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "h",
           "MASTER_PORT": "1", "TORCHELASTIC_RESTART_COUNT": "2", "TORCHELASTIC_RUN_ID": "job"}  # fmt: skip
    assert detect(env) == World(1, 2, 0, 1, 2, "job", launched=True)
    with pytest.raises(ConfigError, match="inconsistent"):
        detect(env | {"RANK": "2"})
    with pytest.raises(ConfigError, match="not numbers"):
        detect(env | {"WORLD_SIZE": "two"})


@pytest.mark.parametrize("n", [0, 1, 5, 64])
def test_shares_of_a_batch_add_up_to_the_batch(n):
    rows = torch.arange(n)
    parts = [share(World(rank=r, size=3), (rows,))[0] for r in range(3)]
    assert torch.equal(torch.cat(parts), rows)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("sampling", ["shuffle", "shuffle-fill", "with-replacement"])
def test_each_process_takes_its_share_of_the_same_batches(sampling):
    from linear_nets.data.batches import ArrayLoader

    X, y = torch.arange(50.0).reshape(25, 2), torch.arange(25)
    whole = list(ArrayLoader((X, y), 8, shuffle=True, seed=3, sampling=sampling))
    shares = [list(ArrayLoader((X, y), 8, shuffle=True, seed=3, sampling=sampling, shard=(r, 2))) for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == len(whole)
    for k, (X_batch, y_batch) in enumerate(whole):
        assert torch.equal(torch.cat([shares[0][k][1], shares[1][k][1]]), y_batch)
        assert torch.equal(torch.cat([shares[0][k][0], shares[1][k][0]]), X_batch)


def test_a_failed_fit_does_not_leave_the_group_and_ignores_the_launchers_sigterm(monkeypatch):
    """Leaving a group after a lost peer can wait forever (it did once in CI, until torchrun's SIGKILL, before the
    process wrote its line): the group is left only after a fit that succeeded; after a failure the process, which is
    ending with its own line, ignores torchrun's SIGTERM. The group's calls are stood in for: the policy is tested."""
    import torch.distributed as dist

    from linear_nets.pipeline import distributed

    group = {"joined": False, "left": 0}
    monkeypatch.setattr(dist, "is_initialized", lambda: group["joined"])
    monkeypatch.setattr(dist, "init_process_group", lambda *args, **kwargs: group.update(joined=True))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: group.update(joined=False, left=group["left"] + 1))
    monkeypatch.setattr(distributed, "_attempt_store", lambda world, timeout: None)
    world, before = distributed.World(launched=True), signal.getsignal(signal.SIGTERM)
    try:
        with distributed.started(world):
            assert signal.getsignal(signal.SIGTERM) is distributed._stopped_by_launcher
        assert group == {"joined": False, "left": 1} and signal.getsignal(signal.SIGTERM) is before
        with pytest.raises(distributed.PeerLost), distributed.started(world):
            raise distributed.PeerLost("lost the other processes while adding up")
        assert group == {"joined": True, "left": 1}
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)
