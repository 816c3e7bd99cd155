"""Tables: a bare pyarrow read against the streamed closed form, peak memory by size, streamed against in-memory SGD.

Writes Parquet files of N rows x 32 float32 features + a float32 target into a temporary directory, row group by
row group (so the largest file never needs all its rows in memory), then measures, each in a fresh subprocess so the
peak resident memory (VmHWM) belongs to that measurement alone:
  (a) bare read: pyarrow's `ParquetFile(pre_buffer=False).iter_batches`, every column of every batch `to_numpy()`
      and summed (pre-buffering, pyarrow's default, held the whole 2 GB file in memory and was slower);
  (b) streamed closed form: `open_table` + `fit_spec` + `stream_least_squares` (TSQR in float64, with its summary);
      (a) and (b) run `--repeat` times each, alternately (the machine is shared: load comes and goes), and the table
      shows the median run (peak RSS: the largest of the runs);
  (c) for the `--sgd-size` file, one epoch of plain linear-regression SGD (torch, no autograd: w -= lr·Xᵀ(Xw+b−y)/B)
      on `stream_batches` (shuffled: row groups and a 64 Ki-row buffer), against the same epoch on in-memory tensors
      (`load_table`, then a `randperm` and `index_select` per batch; the load is timed separately).
  (d) with `--ablation N`, on the N-row file: (b) with one of its speed measures undone at a time (`VARIANTS`,
      patched into the measuring process), each against a bare read run next to it.
Prints a markdown table (rows/s, seconds, peak RSS; "base" is the RSS after imports, before any work) and checks the
targets: (b) at least 0.6x the rows/s of (a), and (b)'s peak RSS for the largest file within 300 MB of the smallest.

Run: .venv/bin/python benchmarks/bench_tables.py [--sizes 1e5,1e6,1e7] [--sgd-size 1e6] [--repeat 3]
         [--ablation 1e7] [--data-dir DIR] [--write]
     (--write puts the tables into benchmarks/RESULTS-tables.md, atomically, keeping its "## Notes" section;
     --data-dir keeps the generated files there and reuses them, instead of a temporary directory)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS-tables.md")
NOTES = "\n## Notes"  # --write replaces the file up to this heading and keeps the rest
COLUMNS = 32
ROW_GROUP = 1 << 17
SGD_LR = 0.01


# ------------------------------------------------------------------------------------------------- generating


def write_parquet(path: Path, rows: int, seed: int = 0) -> None:
    """y = Xw + 1 + noise with X ~ N(0, 1), float32, written one row group of ROW_GROUP rows at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    w = rng.normal(size=COLUMNS).astype(np.float32)
    names = [f"x{j}" for j in range(COLUMNS)] + ["y"]
    schema = pa.schema([(n, pa.float32()) for n in names])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            X = rng.standard_normal((n, COLUMNS), dtype=np.float32)
            y = X @ w + 1 + 0.1 * rng.standard_normal(n, dtype=np.float32)
            writer.write_table(pa.table([*X.T, y], schema=schema), row_group_size=ROW_GROUP)


# ------------------------------------------------------------------------------------ measurements (subprocess)


def rss_mb(field: str) -> float:
    """VmHWM (peak) or VmRSS (now) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def bare_read(path: str) -> int:
    import pyarrow.parquet as pq

    rows, total = 0, 0.0
    for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=1 << 16):
        for column in batch.columns:
            total += float(column.to_numpy().sum())
        rows += batch.num_rows
    return rows


# Each undoes one speed measure of `stream_least_squares`, or swaps its method, for the ablation (d); "shipped"
# changes nothing.
VARIANTS = {
    "shipped": "as shipped (TSQR: each batch folded into R by a Householder QR)",
    "no-read-ahead": "no read-ahead thread: reading, encoding and the QR one after another in one thread",
    "2^16-row-batches": "read batches of 2^16 rows instead of 2^17",
    "normal-equations": "the book's normal equations: ZᵀZ summed per batch (half the flops, squares κ)",
}


def apply_variant(variant: str) -> dict:
    """Patch the variant into this (measuring) process; returns keyword arguments for `stream_least_squares`."""
    from linear_nets.data import table_stream

    if variant == "no-read-ahead":
        table_stream._read_ahead = lambda items: items
    elif variant == "2^16-row-batches":
        return {"read_rows": 1 << 16}
    elif variant == "normal-equations":
        return {"method": "normal-equations"}
    elif variant != "shipped":
        raise ValueError(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
    return {}


def streamed_closed_form(path: str, variant: str = "shipped") -> tuple[int, float]:
    """Returns the rows and the seconds the calling thread spent inside `closed_form.Factor.add` (the QR fold, or
    ZᵀZ, and its check), timed by a wrapper."""
    from linear_nets.closed_form import Factor
    from linear_nets.data.table_spec import fit_spec
    from linear_nets.data.table_stream import RowCounts, stream_least_squares
    from linear_nets.data.tables import open_table

    kwargs = apply_variant(variant)
    add, inside = Factor.add, [0.0]

    def timed_add(self, *args) -> None:
        start = time.perf_counter()
        add(self, *args)
        inside[0] += time.perf_counter() - start

    Factor.add = timed_add
    source = open_table(path)
    counts = RowCounts()
    result = stream_least_squares(source, fit_spec(source, "y"), counts=counts, **kwargs)
    assert result.w.shape == (COLUMNS,)
    return counts.rows_used, inside[0]


def sgd_step(w, b, X, y) -> None:
    residual = X @ w + b - y
    w -= SGD_LR * (X.T @ residual) / len(y)
    b -= SGD_LR * residual.mean()


def streamed_sgd(path: str, batch_size: int) -> int:
    import torch

    from linear_nets.data.table_spec import fit_spec
    from linear_nets.data.table_stream import stream_batches
    from linear_nets.data.tables import open_table

    source = open_table(path)
    spec = fit_spec(source, "y")
    w, b, rows = torch.zeros(COLUMNS), torch.zeros(()), 0
    for X, y in stream_batches(source, spec, batch_size, seed=0, epoch=0):
        sgd_step(w, b, X, y)
        rows += len(y)
    return rows


def in_memory_sgd(path: str, batch_size: int) -> tuple[int, float]:
    """One epoch on tensors already in memory; returns rows and the seconds the load took (timed apart)."""
    import torch

    from linear_nets.data.tables import load_table

    start = time.perf_counter()
    X_all, y_all, _, _ = load_table(path, "y")
    load_seconds = time.perf_counter() - start
    w, b = torch.zeros(COLUMNS), torch.zeros(())
    order = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0))
    for i in range(0, len(order), batch_size):
        index = order[i : i + batch_size]
        sgd_step(w, b, X_all.index_select(0, index), y_all.index_select(0, index))
    return len(y_all), load_seconds


def measure(kind: str, path: str, batch_size: int, threads: int, variant: str = "shipped") -> dict:
    """Run one measurement in this (fresh) process: its seconds, rows, and memory."""
    import pyarrow.parquet  # noqa: F401  (every kind imports everything before the clock starts)
    import torch

    import linear_nets.data.table_stream  # noqa: F401

    torch.set_num_threads(threads)

    base = rss_mb("VmRSS")
    start = time.perf_counter()
    extra = {}
    if kind == "read":
        rows = bare_read(path)
    elif kind == "closed-form":
        rows, extra["update_seconds"] = streamed_closed_form(path, variant)
    elif kind == "sgd-stream":
        rows = streamed_sgd(path, batch_size)
    elif kind == "sgd-memory":
        rows, extra["load_seconds"] = in_memory_sgd(path, batch_size)
    else:
        raise ValueError(kind)
    seconds = time.perf_counter() - start - extra.get("load_seconds", 0.0)
    return {"rows": rows, "seconds": seconds, "base_mb": base, "peak_mb": rss_mb("VmHWM"), **extra}


def run_measurement(kind: str, path: Path, batch_size: int, threads: int, variant: str = "shipped") -> dict:
    command = [sys.executable, __file__, "--measure", kind, str(path), "--sgd-batch", str(batch_size)]
    command += ["--threads", str(threads), "--variant", variant]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{kind} on {path.name} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


# -------------------------------------------------------------------------------------------------- reporting


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    import pyarrow
    import torch

    return (
        f"{platform.platform()}, {model}, {os.cpu_count()} CPUs (nproc), Python {platform.python_version()}, "
        f"torch {torch.__version__}, pyarrow {pyarrow.__version__} ({pyarrow.cpu_count()} threads)"
    )


def row(what: str, size: int, result: dict, file_mb: float) -> str:
    rate = result["rows"] / result["seconds"]
    return (
        f"| {what} | {size:,} | {file_mb:,.0f} | {result['seconds']:.2f} | {rate / 1e6:.2f} | "
        f"{result['base_mb']:.0f} | {result['peak_mb']:.0f} |"
    )


def median_run(runs: list[dict]) -> dict:
    """The run of median seconds (the lower middle one of an even number), with the largest peak RSS of all."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[(len(ordered) - 1) // 2], "peak_mb": max(r["peak_mb"] for r in runs)}


def alternate(kinds: list[tuple[str, str]], path: Path, args: argparse.Namespace) -> dict[tuple[str, str], list]:
    """Run each (kind, variant) `args.repeat` times, taking turns, so load that comes and goes hits all alike."""
    runs: dict[tuple[str, str], list] = {k: [] for k in kinds}
    for _ in range(args.repeat):
        for kind, variant in kinds:
            runs[kind, variant].append(run_measurement(kind, path, args.sgd_batch, args.threads, variant))
    return runs


def rate(result: dict) -> float:
    return result["rows"] / result["seconds"]


def parquet_file(directory: Path, size: int) -> tuple[Path, float]:
    """The generated file of `size` rows in `directory`, written unless a complete one is already there."""
    import pyarrow.parquet as pq

    path = directory / f"rows-{size}.parquet"
    if not (path.exists() and pq.ParquetFile(path).metadata.num_rows == size):
        t = time.perf_counter()
        write_parquet(path, size)
        print(f"wrote {size:,} rows in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path, path.stat().st_size / 1e6


def ablation(path: Path, size: int, args: argparse.Namespace) -> list[str]:
    """Table (d): the streamed closed form with one speed measure undone at a time, against the bare read."""
    kinds = [("read", "shipped")] + [("closed-form", v) for v in VARIANTS]
    runs = alternate(kinds, path, args)
    read = median_run(runs["read", "shipped"])
    shipped = median_run(runs["closed-form", "shipped"])
    lines = [
        f"Ablation on the {size:,}-row file (medians of {args.repeat} runs, taking turns; bare read "
        f"{read['seconds']:.2f} s, {rate(read) / 1e6:.2f} M rows/s):",
        "",
        "| (b) with | seconds | M rows/s | / bare read | seconds vs shipped |",
        "|---|---:|---:|---:|---:|",
    ]
    for variant, description in VARIANTS.items():
        result = median_run(runs["closed-form", variant])
        lines.append(
            f"| {description} | {result['seconds']:.2f} | {rate(result) / 1e6:.2f} | {rate(result) / rate(read):.2f}x "
            f"| {result['seconds'] - shipped['seconds']:+.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6,1e7", help="rows per file, comma-separated")
    parser.add_argument("--sgd-size", default="1e6", help="the file (rows) to run the SGD comparison on; 0: none")
    parser.add_argument("--sgd-batch", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a) and (b) per size (and per variant)")
    parser.add_argument("--ablation", default="0", help="the file (rows) to run the ablation (d) on; 0: none")
    parser.add_argument("--data-dir", type=Path, help="keep and reuse the generated files here")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 by default: on a busy 2-core machine 2 are slower)"
    )
    parser.add_argument("--write", action="store_true", help=f"write the table to {RESULTS.name}")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="shipped", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, args.sgd_batch, args.threads, args.variant)))
        return

    sizes = [int(float(s)) for s in args.sizes.split(",")]
    sgd_size, ablation_size = int(float(args.sgd_size)), int(float(args.ablation))
    lines = [
        "| what | rows | file MB | seconds | M rows/s | base RSS MB | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rates, pairs, peaks, updates = {}, {}, {}, {}
    ablation_lines: list[str] = []
    started = time.perf_counter()
    if args.data_dir:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    keep = nullcontext(str(args.data_dir)) if args.data_dir else tempfile.TemporaryDirectory(prefix="bench-tables-")
    with keep as directory:
        for size in sizes:
            path, file_mb = parquet_file(Path(directory), size)
            runs = alternate([("read", "shipped"), ("closed-form", "shipped")], path, args)
            read, closed = median_run(runs["read", "shipped"]), median_run(runs["closed-form", "shipped"])
            rates[size] = rate(closed) / rate(read)
            pairs[size] = [
                rate(c) / rate(r) for r, c in zip(runs["read", "shipped"], runs["closed-form", "shipped"], strict=True)
            ]
            peaks[size] = closed["peak_mb"]
            updates[size] = (closed["update_seconds"], closed["seconds"])
            lines.append(row("(a) bare pyarrow read", size, read, file_mb))
            lines.append(row("(b) streamed closed form", size, closed, file_mb))
            if size == sgd_size:
                streamed = run_measurement("sgd-stream", path, args.sgd_batch, args.threads)
                memory = run_measurement("sgd-memory", path, args.sgd_batch, args.threads)
                lines.append(row(f"(c) SGD 1 epoch, streamed (batch {args.sgd_batch})", size, streamed, file_mb))
                lines.append(
                    row(f"(c) SGD 1 epoch, in memory (batch {args.sgd_batch}; load not counted)", size, memory, file_mb)
                )
                lines.append(
                    f"| (c) ... its `load_table` (not in the row above) | {size:,} | {file_mb:,.0f} | "
                    f"{memory['load_seconds']:.2f} | {size / memory['load_seconds'] / 1e6:.2f} | | |"
                )
        if ablation_size:
            path, _ = parquet_file(Path(directory), ablation_size)
            ablation_lines = ["", *ablation(path, ablation_size, args)]
    checks = [
        "- of (b)'s seconds, in its main thread inside `closed_form.Factor.add` (the QR fold of each batch and its "
        "NaN check; reading and encoding run alongside, in the read-ahead thread): "
        + ", ".join(f"{s:,} rows {u:.2f} s of {t:.2f} s" for s, (u, t) in updates.items())
    ]
    checks += [
        "- (b) / (a) rows per second, medians: "
        + ", ".join(f"{s:,} rows {r:.2f}x" for s, r in rates.items())
        + "; run by run: "
        + "; ".join(f"{s:,} rows " + ", ".join(f"{r:.2f}" for r in p) for s, p in pairs.items())
    ]
    ratio_met = all(r >= 0.6 for r in rates.values())
    checks.append(f"- {'met' if ratio_met else 'NOT met'}: streamed closed form at least 0.6x the bare read's rows/s")
    if len(sizes) > 1:
        growth = peaks[max(sizes)] - peaks[min(sizes)]
        met = "met" if growth <= 300 else "NOT met"
        checks.append(
            f"- {met}: (b)'s peak RSS grows by {growth:.0f} MB from {min(sizes):,} to {max(sizes):,} rows "
            "(target: within 300 MB)"
        )
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    footer = (
        f"Machine: {machine()}; load average {load} after the run. Measured {when} by `benchmarks/bench_tables.py "
        f"--sizes {args.sizes} --sgd-size {args.sgd_size} --repeat {args.repeat} --ablation {args.ablation} "
        f"--threads {args.threads}` (torch threads) in {time.perf_counter() - started:.0f} s."
    )
    text = "\n".join([*lines, "", *checks, *ablation_lines, "", footer])
    print(text)
    if args.write:
        from linear_nets.atomic import atomic_write_text

        how = __doc__.split("\n", 1)[1].strip()
        old = RESULTS.read_text() if RESULTS.exists() else ""
        notes = old[old.index(NOTES) :] if NOTES in old else ""  # written by hand: kept
        atomic_write_text(RESULTS, f"# Tables: streamed reading and closed form\n\n{how}\n\n{text}\n{notes}")


if __name__ == "__main__":
    main()
