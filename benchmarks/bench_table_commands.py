"""Whole-command time of `evaluate RUN` (a table run's own held-out rows) and `predict RUN --data` on a 10^5-row
table, against `python -c "import torch"` in the same rounds (issue 23's measure).

Writes a CSV of `--rows` rows (10 numeric features, a 5-level text column, a 3-class label and a numeric target) into
a temporary directory, trains a softmax and a linear-regression run on it, then times each command `--rounds` times,
interleaved per round so that a noisy machine hurts them alike, and prints the medians. It also checks that
`evaluate RUN` reports the test accuracy (and MSE) training reported.

Usage: python benchmarks/bench_table_commands.py [--rows 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv


def write_table(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 10)) * np.arange(1, 11) * 10
    colour = rng.choice(["red", "green", "blue", "white", "black"], rows)
    score = X[:, 0] / 10 - X[:, 1] / 20 + (colour == "red") + rng.normal(size=rows)
    label = np.where(score < -0.5, "low", np.where(score < 0.5, "mid", "high"))
    columns = {f"x{j}": X[:, j] for j in range(10)} | {"colour": colour, "label": label, "y": score * 3}
    pacsv.write_csv(pa.table(columns), path)


def seconds(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "linear_nets"]
    with tempfile.TemporaryDirectory() as tmp:
        here = Path(tmp)
        write_table(here / "t.csv", args.rows)
        table = ["--data", "t.csv", "--categorical", "colour"]
        subprocess.run([*cli, "train", "softmax", *table, "--target", "label", "--features",
                        ",".join([*(f"x{j}" for j in range(10)), "colour"]), "--epochs", "5", "--out", "softmax"],
                       cwd=here, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        subprocess.run([*cli, "train", "linreg", *table, "--target", "y", "--features",
                        ",".join([*(f"x{j}" for j in range(10)), "colour"]), "--solver", "closed-form", "--out",
                        "linreg"], cwd=here, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        commands = {
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            "evaluate RUN (softmax, held-out rows)": [*cli, "evaluate", "softmax"],
            "evaluate RUN (linreg, held-out rows)": [*cli, "evaluate", "linreg"],
            "predict RUN --data (softmax)": [*cli, "predict", "softmax", "--data", "t.csv", "--overwrite"],
            "predict RUN --data (linreg)": [*cli, "predict", "linreg", "--data", "t.csv", "--overwrite"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(seconds(argv, here))
        subprocess.run([*cli, "evaluate", "softmax"], cwd=here, check=True, stdout=subprocess.DEVNULL)
        trained = json.loads((here / "softmax/summary.json").read_text())["test_accuracy"]
        evaluated = json.loads((here / "softmax/evaluation.json").read_text())["accuracy"]
        subprocess.run([*cli, "evaluate", "linreg"], cwd=here, check=True, stdout=subprocess.DEVNULL)
        mse = json.loads((here / "linreg/summary.json").read_text())["test_mse"]
        evaluated_mse = json.loads((here / "linreg/evaluation.json").read_text())["mse"]
    floor = statistics.median(times['python -c "import torch"'])
    print(f"| command ({args.rows:,} rows; median of {args.rounds}) | seconds | minus import torch |")
    print("|---|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {median - floor:+.2f} |")
    print(f"\nsoftmax test accuracy: trained {trained}, evaluate RUN {evaluated}; "
          f"linreg test MSE: trained {mse}, evaluate RUN {evaluated_mse}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
