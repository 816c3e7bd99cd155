"""`linear-nets report` as a user times it, and the learner's path (the d2l facade, the loader) on a busy machine.

Rows, medians of `--rounds` runs, interleaved per round so that a noisy machine hurts them alike:
- `python -c "import torch"` (the floor of any command that loads a model), `report` on one Fashion-MNIST run and on
  10 runs (the whole command), and the size of the page;
- with one core kept busy (a spinning Python loop): the book's 3.7 training through `from linear_nets import d2l`
  (tests/d2l_chapter/ch3_7..., its `train_ch3` seconds) and one epoch of `load_data_fashion_mnist(256)` batches,
  each with the threads the package now chooses, against `OMP_NUM_THREADS=1`, and, with `--before SRC`, the same
  with an earlier checkout's package (torch's default threads).

Usage: python benchmarks/bench_report.py [--rounds 5] [--before /path/to/old/src] [--write]
"""

from __future__ import annotations

import argparse
import os
import re
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
SECTION = "## Report, and the learner's path on a busy machine"
ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
BOOK_3_7 = ROOT / "tests" / "d2l_chapter" / "ch3_7_softmax_regression_concise.py"
LOADER_EPOCH = ("import time; from linear_nets import d2l; it, _ = d2l.load_data_fashion_mnist(256)\n"
                "t = time.perf_counter()\nfor X, y in it: pass\nprint(f'epoch {time.perf_counter() - t:.4f}')")


def run(argv: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, str]:
    """(wall seconds of one whole process, its stdout)."""
    start = time.perf_counter()
    done = subprocess.run(argv, check=True, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd)
    return time.perf_counter() - start, done.stdout


def with_src(src: Path, omp: bool) -> dict[str, str]:
    env = {"PYTHONPATH": str(src), "MPLBACKEND": "Agg"}
    if omp:
        env["OMP_NUM_THREADS"] = "1"
    return env


def make_runs(where: Path, n: int) -> list[Path]:
    """`n` Fashion-MNIST runs: an lr sweep of 3 epochs each (the report reads them; their training is not timed)."""
    runs = []
    for i in range(n):
        out = where / f"sm-{i}"
        run([sys.executable, "-m", "linear_nets", "train", "softmax", "--epochs", "3", "--lr", f"{0.05 * (i + 1):g}",
             "--out", str(out)], with_src(SRC, omp=False))  # fmt: skip
        runs.append(out)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=Path, default=None, help="an earlier checkout's src/ to compare against")
    parser.add_argument("--write", action="store_true", help=f"replace the section in {RESULTS.name}")
    args = parser.parse_args()
    env = os.environ.copy()
    env.pop("OMP_NUM_THREADS", None)
    os.environ.clear()
    os.environ.update(env)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        runs = make_runs(where, 10)
        report = [sys.executable, "-m", "linear_nets", "report"]
        size = {}
        for _ in range(args.rounds):
            times.setdefault("import torch", []).append(run([sys.executable, "-c", "import torch"])[0])
            times.setdefault("report, 1 run", []).append(
                run([*report, str(runs[0]), "--out", str(where / "one.html")], with_src(SRC, False))[0])
            times.setdefault("report, 10 runs", []).append(
                run([*report, *map(str, runs), "--out", str(where / "ten.html")], with_src(SRC, False))[0])
        size = {"1 run": (where / "one.html").stat().st_size, "10 runs": (where / "ten.html").stat().st_size}
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(1.0)
            variants = [("now, default threads", SRC, False), ("now, OMP_NUM_THREADS=1", SRC, True)]
            if args.before is not None:
                variants += [("before, default threads", args.before, False), ("before, OMP_NUM_THREADS=1",
                                                                              args.before, True)]  # fmt: skip
            for _ in range(args.rounds):
                for name, src, omp in variants:
                    _, out = run([sys.executable, str(BOOK_3_7)], with_src(src, omp), cwd=where)
                    seconds = float(re.search(r"trained 10 epochs in ([\d.]+) sec", out).group(1))
                    times.setdefault(f"3.7 train_ch3, {name}", []).append(seconds)
                    _, out = run([sys.executable, "-c", LOADER_EPOCH], with_src(src, omp), cwd=where)
                    times.setdefault(f"loader epoch, {name}", []).append(float(out.split()[-1]))
        finally:
            spinner.kill()
            spinner.wait()
    median = {k: statistics.median(v) for k, v in times.items()}
    lines = [f"| what (median of {args.rounds}) | seconds | × reference |", "|---|---:|---:|"]
    for key in ("import torch", "report, 1 run", "report, 10 runs"):
        lines.append(f"| {key} | {median[key]:.3f} | {median[key] / median['import torch']:.2f} × import torch |")
    for what in ("3.7 train_ch3", "loader epoch"):
        base = median[f"{what}, now, OMP_NUM_THREADS=1"]
        for key in [k for k in median if k.startswith(what)]:
            lines.append(f"| {key} (one core busy) | {median[key]:.3f} | {median[key] / base:.2f} × now with "
                         "OMP_NUM_THREADS=1 |")  # fmt: skip
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = "\n".join([
        "`linear-nets report` is the whole command (start-up, reading the run, scoring the 10,000 test images again, "
        "drawing), against `python -c \"import torch\"` in the same rounds. The threads rows keep one core busy with a "
        "spinning Python process; `train_ch3` is the seconds the book's 3.7 script prints, the loader row one pass "
        "over `load_data_fashion_mnist(256)`'s training batches. 'before' is the package before this change (torch's "
        "default threads on the learner's path).",
        "", *lines, "",
        f"report.html: {size['1 run'] / 1024:.0f} KiB for one Fashion-MNIST run, {size['10 runs'] / 1024:.0f} KiB for "
        "10 runs compared.",
        "", f"Machine: {machine()}. Measured {when} by `benchmarks/bench_report.py --rounds {args.rounds}`.",
    ])  # fmt: skip
    print(body)
    if args.write:
        atomic_write_text(RESULTS, replace_section(RESULTS.read_text(encoding="utf-8"), SECTION, body))


if __name__ == "__main__":
    main()
