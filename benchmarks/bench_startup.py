"""Whole commands as a user times them, start-up included, against `python -c "import torch"` in the same run.

Rows, interleaved per round so that a noisy machine hurts them alike; medians of `--rounds` runs:
- `import torch` alone (the floor for any command that trains);
- `linear-nets --help` and `linear-nets data path` (must not import torch);
- the default `linear-nets train softmax` (the book's recipe: manual implementation, 1 thread), with 2 threads,
  and with the concise implementation (whose first `torch.optim` optimizer imports `torch._dynamo`);
- `train softmax --preset best` against scikit-learn's `LogisticRegression(solver="lbfgs")` (C=1, max_iter=100) fit
  on the same 60,000 images (pixels / 255) as a whole process too (`--sklearn`: about 10 s a round);
- with `--busy`, the default command, `--threads 1` and `--threads 2` while other processes keep one core busy,
  then both (spinning Python loops).
The breakdown of the default command comes from its own summary.json (data loading, training) and the rest.

Usage: python benchmarks/bench_startup.py [--rounds 5] [--busy] [--sklearn] [--write]
"""
from __future__ import annotations

import argparse
import json
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
SECTION = "## Start-up: whole commands as a user times them"
CLI = [sys.executable, "-m", "linear_nets"]
SKLEARN_ROW = "scikit-learn LogisticRegression(lbfgs) on the same images"
SKLEARN = """
from sklearn.linear_model import LogisticRegression
from linear_nets.data.fashion_mnist import FashionMNIST
train = FashionMNIST("train")
LogisticRegression(C=1.0, max_iter=100).fit(train.images.reshape(60000, -1).numpy() / 255.0, train.labels.numpy())
"""


def timed(argv: list[str], env: dict | None = None, cwd: str | None = None) -> float:
    """Wall seconds of one whole process."""
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})}, cwd=cwd)
    return time.perf_counter() - start


def threads_chosen(run: Path) -> int:
    """The torch threads a run used, as its config.json records them."""
    return json.loads((run / "config.json").read_text())["config"]["threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--busy", action="store_true", help="also time with one core kept busy")
    parser.add_argument("--sklearn", action="store_true", help="also time scikit-learn's LogisticRegression fit")
    parser.add_argument("--write", action="store_true", help=f"write the table into {RESULTS.name}")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="bench-startup-")
    rows: dict[str, list[float]] = {}
    breakdown: dict[str, list[float]] = {"load_seconds": [], "train_seconds": [], "wall_seconds": []}
    chosen: dict[str, list[int]] = {}  # the threads the default command chose, by how busy the machine was
    commands = {
        'python -c "import torch"': ([sys.executable, "-c", "import torch"], None),
        "linear-nets --help": ([*CLI, "--help"], None),
        "linear-nets data path": ([*CLI, "data", "path"], None),
        "train softmax (default)": ([*CLI, "train", "softmax"], None),
        "train softmax --threads 1": ([*CLI, "train", "softmax", "--threads", "1"], None),
        "train softmax --threads 2": ([*CLI, "train", "softmax", "--threads", "2"], None),
        "train softmax --impl concise": ([*CLI, "train", "softmax", "--impl", "concise"], None),
        "train softmax --preset best": ([*CLI, "train", "softmax", "--preset", "best"], None),
    }
    if args.sklearn:
        commands[SKLEARN_ROW] = ([sys.executable, "-c", SKLEARN], None)
    for round_ in range(args.rounds):
        for name, (argv, env) in commands.items():
            out = None
            if "softmax" in argv:
                out = Path(scratch) / f"run-{round_}-{len(rows.get(name, []))}-{abs(hash(name))}"
                argv = [*argv, "--out", str(out)]
            rows.setdefault(name, []).append(timed(argv, env))
            if name == "train softmax (default)":
                summary = json.loads((out / "summary.json").read_text())
                for key in breakdown:
                    breakdown[key].append(summary[key])
                chosen.setdefault("idle", []).append(threads_chosen(out))
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in rows.items()), flush=True)
    for hogs in (1, 2) if args.busy else ():
        busy = f"{hogs} busy core{'s' * (hogs > 1)}: "
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
        try:
            time.sleep(0.5)
            for round_ in range(args.rounds):
                for k, (label, extra) in enumerate((("(default)", []), ("--threads 1", ["--threads", "1"]),
                                                    ("--threads 2", ["--threads", "2"]))):  # fmt: skip
                    out = Path(scratch) / f"busy-{hogs}-{round_}-{k}"
                    name = f"{busy}train softmax {label}"
                    rows.setdefault(name, []).append(timed([*CLI, "train", "softmax", *extra, "--out", str(out)]))
                    if not extra:
                        chosen.setdefault(busy, []).append(threads_chosen(out))
                rows.setdefault(f'{busy}python -c "import torch"', []).append(
                    timed([sys.executable, "-c", "import torch"]))
        finally:
            for spinner in spinners:
                spinner.kill()
    torch_median = statistics.median(rows['python -c "import torch"'])
    lines = ["| command | median s | min s | x import torch |", "|---|---:|---:|---:|"]
    for name, values in rows.items():
        busy = name.split(":")[0] + ": " if "busy" in name else ""
        base = statistics.median(rows[f'{busy}python -c "import torch"']) if busy else torch_median
        lines.append(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | "
                     f"{statistics.median(values) / base:.2f} |")  # fmt: skip
    if args.sklearn:
        best, sklearn = (statistics.median(rows[k]) for k in ("train softmax --preset best", SKLEARN_ROW))
        lines += ["", f"`train softmax --preset best` as a whole process is {best / sklearn:.2f}x scikit-learn's "
                  f"LogisticRegression(lbfgs) as a whole process ({best:.2f} s against {sklearn:.2f} s, medians)."]
    whole = statistics.median(rows["train softmax (default)"])
    load, train = (statistics.median(breakdown[k]) for k in ("load_seconds", "train_seconds"))
    lines += [
        "",
        f"Breakdown of the default `train softmax` (medians): whole process {whole:.2f} s = `import torch` "
        f"{torch_median:.2f} s + reading Fashion-MNIST {load:.2f} s + the fit (10 epochs, test scored each epoch) "
        f"{train:.2f} s + the rest {whole - torch_median - load - train:.2f} s (the package's imports, run "
        "directory, figures, model and summary files, interpreter exit).",
        "",
        "Threads the default command chose, per round: "
        + "; ".join(f"{where.rstrip(': ')}: {', '.join(map(str, numbers))}" for where, numbers in chosen.items())
        + ".",
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        text = f"{machine()}; {args.rounds} rounds, interleaved; {time.strftime('%Y-%m-%d')}.\n\n{table}\n"
        atomic_write_text(RESULTS, replace_section(RESULTS.read_text(), SECTION, text))


if __name__ == "__main__":
    main()
