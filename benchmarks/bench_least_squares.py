"""Least squares to the last digit, and at scale: NIST's reference sets through the command line, and a 10^7-row table.

(a) Digits. NIST's 11 linear StRD sets (tests/data/nist_strd.json), each written as a table (x, x², ... as doubles
    for the polynomial sets), fitted by `linear-nets train linreg --solver closed-form --test-fraction 0` three ways:
    in memory (CSV), `--stream` over Parquet with row groups of 4 rows, and `torchrun --nproc-per-node 2 ... --stream`
    (each process folds every other row group). Beside them, on the same doubles: numpy's lstsq, scikit-learn's
    LinearRegression, statsmodels OLS with method "pinv" and "qr", and the book's normal equations
    (`--solver normal-equations`, in memory). Correct digits (LRE, capped at 15) of the coefficients and standard
    errors (fewest over the set), the residual standard deviation and R², against the exact least-squares answer of
    each table in rational arithmetic (tests/strd.py); NIST's certified values are judged the same way beside them.
(b) Scale. A Parquet file of N rows x 32 float64 features + y (row groups of 2^17 rows), for N in --sizes: one bare
    pyarrow read of every column, then the whole command `linear-nets train linreg --data F --target y --stream
    --solver closed-form --test-fraction 0` (classical summary; one pass over the file when the second would change
    no digit) and with `--cov HC3` (two passes), each in a fresh process: wall seconds (median of --repeat, the runs
    alternated with the bare read, the machine being shared) and peak RSS. Beside it, for the largest N, the peer a
    user would pick: the file read into pandas and `statsmodels.api.OLS(y, add_constant(X)).fit()`.

Run: .venv/bin/python benchmarks/bench_least_squares.py [--sizes 1e5,1e7] [--repeat 3] [--skip-scale] [--write]
     (--write puts the tables into benchmarks/RESULTS.md under "## Least squares", replacing that section)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from strd import certified, design, exact_least_squares, load_strd, lre, min_lre  # noqa: E402

PYTHON = sys.executable
COLUMNS = 32


# --- (a) digits ----------------------------------------------------------------------------------------------------


def write_set(folder: Path, name: str, entry: dict) -> tuple[Path, Path, list[str]]:
    """The set as a CSV (read in memory) and a Parquet file of 4-row groups (streamed); its feature names."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    X, y = design(entry)
    names = [f"x{j + 1}" for j in range(X.shape[1])]
    table = pa.table({**{n: X[:, j] for j, n in enumerate(names)}, "y": y})
    csv, parquet = folder / f"{name}.csv", folder / f"{name}.parquet"
    pacsv.write_csv(table, csv)
    pq.write_table(table, parquet, row_group_size=4)
    back = pacsv.read_csv(csv)  # the CSV must hold the very doubles (pyarrow writes the shortest round trip)
    assert all(np.array_equal(back[n].to_numpy(), table[n].to_numpy()) for n in [*names, "y"]), name
    return csv, parquet, names


def command_line_fit(argv: list[str], cwd: Path, torchrun: bool = False) -> dict:
    """summary.json of one `linear-nets train linreg` run (in a fresh process)."""
    out = cwd / f"run-{len(list(cwd.glob('run-*')))}"
    launcher = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"] if torchrun else [PYTHON]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([*launcher, "-m", "linear_nets", "train", "linreg", "--target", "y", "--test-fraction", "0",
                           *argv, "--out", str(out)], cwd=cwd, env=env, capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads((out / "summary.json").read_text())


def ours(summary: dict, names: list[str], intercept: bool) -> dict | None:
    if "error" in summary:
        return None
    order = [*names, *(["intercept"] if intercept else [])]
    coefficients = summary["coefficients"] | {"intercept": summary["intercept"]}
    return {"coefficients": [coefficients[n] for n in order],
            "standard_errors": [summary["standard_errors"][n] or 0.0 for n in order],
            "residual_std": summary["residual_std"] or 0.0, "r2": summary["train_r2"]}  # fmt: skip


def anchors(X: np.ndarray, y: np.ndarray, intercept: bool) -> dict[str, dict]:
    import statsmodels.api as sm
    from sklearn.linear_model import LinearRegression

    A = np.column_stack([X, np.ones(len(y))]) if intercept else X
    found = {"numpy lstsq": {"coefficients": np.linalg.lstsq(A, y, rcond=None)[0]}}
    model = LinearRegression(fit_intercept=intercept).fit(X, y)
    found["scikit-learn"] = {"coefficients": [*model.coef_, *([model.intercept_] if intercept else [])]}
    for method in ("pinv", "qr"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.OLS(y, A).fit(method=method)
            found[f"statsmodels {method}"] = {"coefficients": fit.params, "standard_errors": fit.bse,
                                              "residual_std": np.sqrt(fit.scale), "r2": fit.rsquared}  # fmt: skip
    return found


def digits(result: dict | None, reference: dict) -> tuple[str, ...]:
    """Correct digits of coefficients, standard errors, residual SD, R² (blank where the method reports none)."""
    if result is None:
        return ("failed",) * 4
    cells = [f"{min_lre(result['coefficients'], reference['coefficients']):.1f}"]
    cells.append(f"{min_lre(result['standard_errors'], reference['standard_errors']):.1f}"
                 if "standard_errors" in result else "")  # fmt: skip
    cells.append(f"{lre(float(result['residual_std']), reference['residual_std']):.1f}" if "residual_std" in result
                 else "")  # fmt: skip
    cells.append(f"{lre(float(result['r2']), reference['r2']):.1f}" if "r2" in result else "")
    return tuple(cells)


def nist_digits() -> list[str]:
    paths = {"in memory": [], "--stream (4-row groups)": ["--stream"], "torchrun x2 --stream": ["--stream"],
             "normal equations (book)": ["--solver", "normal-equations"]}  # fmt: skip
    rows, means = [], {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for name, entry in load_strd().items():
            X, y = design(entry)
            exact = exact_least_squares(X, y, entry["intercept"])
            csv, parquet, names = write_set(folder, name, entry)
            extra = [] if entry["intercept"] else ["--no-intercept"]
            results = {}
            for path, argv in paths.items():
                data = parquet if "--stream" in argv else csv
                solver = [] if "--solver" in argv else ["--solver", "closed-form"]
                summary = command_line_fit([*solver, *argv, *extra, "--data", str(data)], folder,
                                           torchrun=path.startswith("torchrun"))  # fmt: skip
                results[f"linear-nets {path}"] = ours(summary, names, entry["intercept"])
            results |= anchors(X, y, entry["intercept"])
            results["NIST certified"] = certified(entry)
            for method, result in results.items():
                cells = digits(result, exact)
                rows.append(f"| {name} | {method} | " + " | ".join(cells) + " |")
                for k, cell in enumerate(cells[:2]):
                    means.setdefault((method, k), []).append(float(cell) if cell not in ("", "failed") else 0.0)
            print(f"  {name}: done", file=sys.stderr, flush=True)
    table = ["| set | method | coefficients | std errors | residual SD | R² |", "|---|---|---:|---:|---:|---:|", *rows]
    summary = ["", "| method | mean digits, coefficients | mean digits, std errors |", "|---|---:|---:|"]
    for method in dict.fromkeys(m for m, _ in means):
        coefficient, error = np.mean(means[(method, 0)]), np.mean(means[(method, 1)]) if (method, 1) in means else None
        has_errors = method.startswith("linear-nets") or method.startswith("statsmodels") or method.startswith("NIST")
        summary.append(f"| {method} | {coefficient:.2f} | {f'{error:.2f}' if has_errors else ''} |")
    return table + summary


# --- (b) scale -----------------------------------------------------------------------------------------------------


def parquet_file(folder: Path, rows: int) -> Path:
    """N rows x 32 standard-normal float64 features and y = Xw + 1 + 3ε, written row group by row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"table-{rows}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    w = rng.standard_normal(COLUMNS)
    schema = pa.schema([*(pa.field(f"x{j}", pa.float64()) for j in range(COLUMNS)), pa.field("y", pa.float64())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 1 << 17):
            n = min(1 << 17, rows - start)
            X = rng.standard_normal((n, COLUMNS))
            y = X @ w + 1 + 3 * rng.standard_normal(n)
            writer.write_table(pa.table({**{f"x{j}": X[:, j] for j in range(COLUMNS)}, "y": y}, schema=schema))
    return path


BARE_READ = """
import sys, pyarrow.parquet as pq
total = 0.0
for batch in pq.ParquetFile(sys.argv[1], pre_buffer=False).iter_batches(batch_size=1 << 17):
    for column in batch.columns:
        total += float(column.to_numpy().sum())
"""

STATSMODELS = """
import sys, pandas as pd, statsmodels.api as sm
frame = pd.read_parquet(sys.argv[1])
fit = sm.OLS(frame["y"], sm.add_constant(frame.drop(columns="y"))).fit()
fit.summary()
"""


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a command, from GNU time."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return seconds, int(done.stderr.strip().splitlines()[-1]) / 1024


def scale(sizes: list[int], repeat: int, folder: Path) -> list[str]:
    lines = ["| rows | bare pyarrow read | `--stream` closed form (s, x read) | peak RSS "
             "| with `--cov HC3` (s, x read) | peak RSS |", "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    peer = []
    for rows in sizes:
        path = parquet_file(folder, rows)
        runs: dict[str, list[tuple[float, float]]] = {"read": [], "classical": [], "hc3": []}
        for _ in range(repeat):
            fit = [PYTHON, "-m", "linear_nets", "train", "linreg", "--data", str(path), "--target", "y", "--stream",
                   "--solver", "closed-form", "--test-fraction", "0"]  # fmt: skip
            runs_dir = Path(tempfile.mkdtemp(prefix="runs-", dir=folder))  # fresh: --data-dir may be reused
            runs["read"].append(timed([PYTHON, "-c", BARE_READ, str(path)], folder))
            runs["classical"].append(timed([*fit, "--out", str(runs_dir / "classical")], folder))
            runs["hc3"].append(timed([*fit, "--cov", "HC3", "--out", str(runs_dir / "hc3")], folder))
            shutil.rmtree(runs_dir)
        median = {key: float(np.median([s for s, _ in v])) for key, v in runs.items()}
        peak = {key: max(m for _, m in v) for key, v in runs.items()}
        lines.append(f"| {rows:,} | {median['read']:.2f} s | {median['classical']:.2f} s "
                     f"({median['classical'] / median['read']:.2f}x) | {peak['classical']:.0f} MB | "
                     f"{median['hc3']:.2f} s ({median['hc3'] / median['read']:.2f}x) | {peak['hc3']:.0f} MB |")
        print(lines[-1], file=sys.stderr, flush=True)
    rows = sizes[-1]
    path = parquet_file(folder, rows)
    seconds, memory = timed([PYTHON, "-c", STATSMODELS, str(path)], folder)
    peer.append(f"- the peer, {rows:,} rows: pandas `read_parquet` + statsmodels `OLS(...).fit()` + `summary()`: "
                f"{seconds:.2f} s, peak RSS {memory:.0f} MB (one run)")  # fmt: skip
    return [*lines, "", *peer]


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))  # fmt: skip
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{cpu}, {os.cpu_count()} cores ({simd}), {platform.python_version()}, load {os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e5,1e7")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--data-dir", default=None, help="keep the generated Parquet files here and reuse them")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["## Least squares", "", f"Measured {stamp} on {machine()} by `benchmarks/bench_least_squares.py`.", ""]
    if not args.skip_digits:
        lines += ["### NIST StRD: correct digits against the exact answer of each table", "", *nist_digits(), ""]
    if not args.skip_scale:
        sizes = [int(float(s)) for s in args.sizes.split(",")]
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(args.data_dir) if args.data_dir else Path(scratch)
            folder.mkdir(parents=True, exist_ok=True)
            heading = "### Scale: 32 features streamed from Parquet, the whole command"
            lines += [heading, "", *scale(sizes, args.repeat, folder), ""]
    results = ROOT / "benchmarks" / "RESULTS.md"
    old = results.read_text()
    for skipped, heading in ((args.skip_digits, "### NIST StRD"), (args.skip_scale, "### Scale")):
        start = old.find(heading)
        if skipped and start >= 0:  # keep the subsection measured before, with the date it says
            end = old.find("\n#", start + 1)
            lines += [old[start : end if end >= 0 else len(old)].rstrip("\n"), ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        start = old.find("## Least squares")
        if start >= 0:
            end = old.find("\n## ", start + 1)
            old = old[:start] + (old[end + 1 :] if end >= 0 else "")
        from linear_nets.atomic import atomic_write_text

        atomic_write_text(results, old.rstrip("\n") + "\n\n" + text + "\n")


if __name__ == "__main__":
    main()
