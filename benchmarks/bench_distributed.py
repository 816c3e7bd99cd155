"""Data-parallel training on this machine: 1 process x 2 threads against 2 processes x 1 thread (torchrun, gloo).

Rows, interleaved per round, medians of `--rounds`:
- the book recipe (`train softmax`: Fashion-MNIST, manual, batch 256, 10 epochs), whole command and training seconds;
- least squares on a 10^6-row, 32-column Parquet table (`train linreg --stream --solver closed-form`).
Then, inside one 2-process group, the cost of one all-reduce of the softmax gradient (784 x 10 + 10 + 1 floats) and
of the least-squares sums (34 x 34 + 1 doubles), against the time of one training step of one process; and from
those, on paper, the speed-up to expect from 2 to 64 machines with the data split across them.

Usage: python benchmarks/bench_distributed.py [--rounds 3] [--write]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_data import machine, replace_section

from linear_nets.atomic import atomic_write_text

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Data-parallel: torchrun on this machine, and on paper past it"
CLI = [sys.executable, "-m", "linear_nets"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "linear_nets"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

ALL_REDUCE_PROBE = r"""
import json, os, time, torch, torch.distributed as dist
from linear_nets.pipeline.distributed import detect, started
world = detect()
with started(world):
    result = {}
    for name, tensor in (("softmax gradient", torch.zeros(784 * 10 + 10 + 1)),
                         ("least-squares sums", torch.zeros(34 * 34 + 1, dtype=torch.float64))):
        for _ in range(20):
            world.sum(tensor)
        times = []
        for _ in range(300):
            start = time.perf_counter(); world.sum(tensor); times.append(time.perf_counter() - start)
        result[name] = sorted(times)[len(times) // 2]
    if world.leader:
        print(json.dumps(result))
"""


def timed(argv: list[str], cwd: str) -> tuple[float, dict]:
    """Wall seconds of the whole command, and the summary.json it wrote."""
    out = Path(cwd) / f"run-{time.monotonic_ns()}"
    start = time.perf_counter()
    subprocess.run([*argv, "--out", str(out)], check=True, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start, json.loads((out / "summary.json").read_text())


def write_table(path: Path, rows: int = 10**6, columns: int = 32) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, columns)).astype(np.float32)
    y = X @ rng.normal(size=columns).astype(np.float32) + 1
    pq.write_table(pa.table({**{f"x{i}": X[:, i] for i in range(columns)}, "y": y}), path, row_group_size=1 << 17)


def step_seconds() -> float:
    """One manual SGD step on a batch of 256 Fashion-MNIST-sized inputs, one thread (median of 300)."""
    import torch

    from linear_nets.manual.softmax_regression import SoftmaxRegression

    torch.set_num_threads(1)
    model = SoftmaxRegression(784, 10)
    X, y = torch.rand(256, 784), torch.randint(0, 10, (256,))
    times = []
    for _ in range(330):
        start = time.perf_counter()
        y_hat = model.net(X)
        model.loss(y_hat, y)
        model.step(X, y, y_hat)
        times.append(time.perf_counter() - start)
    return statistics.median(times[30:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"write the results into {RESULTS.name}")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="bench-distributed-")
    write_table(Path(scratch) / "table.parquet")
    commands = {
        "book recipe, 1 process x 2 threads": [*CLI, "train", "softmax", "--threads", "2"],
        "book recipe, 2 processes x 1 thread": [*TORCHRUN, "train", "softmax", "--threads", "1"],
        "least squares 10^6 rows, 1 process x 2 threads": [*CLI, "train", "linreg", "--data", "table.parquet",
                                                          "--target", "y", "--stream", "--solver", "closed-form"],
        "least squares 10^6 rows, 2 processes x 1 thread": [*TORCHRUN, "train", "linreg", "--data",
                                                           "table.parquet", "--target", "y", "--stream",
                                                           "--solver", "closed-form"],
    }  # fmt: skip
    walls: dict[str, list[float]] = {name: [] for name in commands}
    trains: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, argv in commands.items():
            wall, summary = timed(argv, scratch)
            walls[name].append(wall)
            trains[name].append(summary.get("train_seconds", summary.get("wall_seconds")))
    script = Path(scratch) / "probe.py"
    script.write_text(ALL_REDUCE_PROBE)
    probe = subprocess.run([*TORCHRUN[:-2], str(script)], capture_output=True, text=True, env=ENV, check=True)
    all_reduce = json.loads(probe.stdout.strip().splitlines()[-1])
    step = step_seconds()

    lines = [f"Machine: {machine()}", "", f"| command (median of {args.rounds}) | whole command s | fit s |",
             "|---|---:|---:|"]  # fmt: skip
    lines += [f"| {name} | {statistics.median(walls[name]):.2f} | {statistics.median(trains[name]):.2f} |"
              for name in commands]  # fmt: skip
    grad, sums = all_reduce["softmax gradient"], all_reduce["least-squares sums"]
    lines += ["", f"One all-reduce of the softmax gradient (7,851 floats, 31 KB) between 2 processes: "
              f"{grad * 1e3:.3f} ms; of the least-squares sums (1,157 doubles): {sums * 1e3:.3f} ms. "
              f"One manual SGD step on a batch of 256, one thread: {step * 1e3:.3f} ms. "
              f"A book-recipe epoch has 235 steps, so 2 processes add "
              f"{235 * grad:.2f} s of all-reduce per epoch to {235 * step / 2:.2f} s of halved compute."]  # fmt: skip
    lines += ["", "On paper, P machines with the data split (compute / P, plus one all-reduce per step, whose latency",
              "grows like log2 P for a message this small; least squares: one all-reduce in all):", "",
              "| machines P | Fashion-MNIST SGD speed-up | 10^9-row least squares speed-up |", "|---:|---:|---:|"]
    rows_per_second = 10**6 / statistics.median(trains["least squares 10^6 rows, 1 process x 2 threads"])
    for P in (2, 4, 8, 16, 32, 64):
        sgd = step / (step / P + grad * math.log2(P))
        one = 10**9 / rows_per_second
        lsq = one / (one / P + sums * math.log2(P))
        lines.append(f"| {P} | {sgd:.2f}x | {lsq:.1f}x |")
    body = "\n".join(lines) + "\n"
    print(body)
    if args.write:
        atomic_write_text(RESULTS, replace_section(RESULTS.read_text(), SECTION, body))


if __name__ == "__main__":
    main()
