"""Your own table against scikit-learn: its bundled datasets written to CSV and Parquet, trained through our CLI.

- diabetes (regression): `train linreg --solver closed-form` on the whole table against `LinearRegression`:
  the largest relative difference of the coefficients and the intercept (target: 1e-6).
- iris, wine, breast cancer, digits (classification): `train softmax --standardize` on the seeded, about 80/20 split
  the CLI makes (`Holdout`), against `LogisticRegression` (lbfgs, C=1, standardised) on exactly the same rows: test
  accuracy (target: within 0.02) and seconds.

Usage: python benchmarks/bench_own_data.py [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sklearn import datasets
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from bench_data import machine, replace_section

from linear_nets.atomic import atomic_write_text
from linear_nets.cli import main as cli
from linear_nets.data.tables import Holdout

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Your own table against scikit-learn"
SOFTMAX_FLAGS = ["--standardize", "--lr", "0.1", "--epochs", "100", "--batch-size", "32", "--impl", "manual"]


def write(table: pa.Table, directory: Path, name: str, fmt: str) -> Path:
    path = directory / f"{name}.{fmt}"
    pq.write_table(table, path) if fmt == "parquet" else pacsv.write_csv(table, path)
    return path


def run(argv: list[str]) -> dict:
    out = Path(argv[argv.index("--out") + 1])
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli(argv) == 0, argv
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-own-data-"))
    lines = ["| dataset | format | ours | scikit-learn | difference | our s | sklearn s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    d = datasets.load_diabetes()
    table = pa.table({**{n: d.data[:, i] for i, n in enumerate(d.feature_names)}, "target": d.target})
    reference = LinearRegression().fit(d.data, d.target)
    for fmt in ("csv", "parquet"):
        path = write(table, scratch, "diabetes", fmt)
        started = time.perf_counter()
        summary = run(["train", "linreg", "--data", str(path), "--target", "target", "--solver", "closed-form",
                       "--test-fraction", "0", "--out", str(scratch / f"diabetes-{fmt}")])  # fmt: skip
        ours_s = time.perf_counter() - started
        ours = np.array([summary["coefficients"][n] for n in d.feature_names] + [summary["intercept"]])
        theirs = np.append(reference.coef_, reference.intercept_)
        rel = np.max(np.abs(ours - theirs) / np.abs(theirs))
        lines.append(f"| diabetes (closed form) | {fmt} | coefficients | LinearRegression | max rel {rel:.1e} | "
                     f"{ours_s:.2f} | - |")  # fmt: skip
    for name, loader in (("iris", datasets.load_iris), ("wine", datasets.load_wine),
                         ("breast cancer", datasets.load_breast_cancer), ("digits", datasets.load_digits)):  # fmt: skip
        data = loader()
        columns = {f"f{i}": data.data[:, i].astype(np.float64) for i in range(data.data.shape[1])}
        labels = [str(data.target_names[t]) for t in data.target]
        table = pa.table({**columns, "label": labels})
        # the CLI's split: classes sorted by name, the rows seed 0 holds out
        classes = sorted(set(labels))
        y = np.array([classes.index(v) for v in labels])
        test = Holdout(0.2, seed=0, part="test").keep(np.arange(len(y)))
        train_idx, test_idx = np.flatnonzero(~test), np.flatnonzero(test)
        started = time.perf_counter()
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data.data[train_idx],
                                                                                       y[train_idx])  # fmt: skip
        sk_s = time.perf_counter() - started
        sk_acc = model.score(data.data[test_idx], y[test_idx])
        for fmt in ("csv", "parquet"):
            path = write(table, scratch, name.replace(" ", "-"), fmt)
            started = time.perf_counter()
            summary = run(["train", "softmax", "--data", str(path), "--target", "label", *SOFTMAX_FLAGS,
                           "--out", str(scratch / f"{name}-{fmt}")])  # fmt: skip
            ours_s = time.perf_counter() - started
            diff = summary["test_accuracy"] - sk_acc
            lines.append(f"| {name} ({len(y)} rows, {len(classes)} classes) | {fmt} | {summary['test_accuracy']:.4f} "
                         f"| {sk_acc:.4f} | {diff:+.4f} | {ours_s:.2f} | {sk_s:.2f} |")  # fmt: skip
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.write:
        body = (f"{machine()}; {time.strftime('%Y-%m-%d')}. Softmax: `train softmax {' '.join(SOFTMAX_FLAGS)}` "
                "against `StandardScaler + LogisticRegression(lbfgs, C=1)` on the same seeded, about 80/20 split "
                "(seed 0); our seconds are the whole CLI call in-process (reading, fitting, writing the run "
                "directory).\n\n" + text + "\n")  # fmt: skip
        atomic_write_text(RESULTS, replace_section(RESULTS.read_text(), SECTION, body))


if __name__ == "__main__":
    main()
