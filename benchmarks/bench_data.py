"""Data loading speed: reading Fashion-MNIST into memory, and one pass of minibatches, vs the book's per-sample path.

Measures (median of `--repeats` runs, default 5):
  (a) loading all 70,000 images from the gzipped IDX files, with the verification cache warm and cold;
  (b) one shuffled pass over the training set at batch 256 with `ArrayLoader` (the first pass of a fresh loader,
      and later passes);
  (c) the same pass the book's way: a per-sample `torch.utils.data.Dataset` whose `__getitem__` turns one uint8
      image into a float tensor, batched by a `DataLoader` with 0 workers.
Prints a markdown table and the machine, and replaces the "## Data loading" section of benchmarks/RESULTS.md.

Run: .venv/bin/python benchmarks/bench_data.py [--repeats 5] [--data-dir DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from linear_nets.atomic import atomic_write_text
from linear_nets.data.batches import ArrayLoader
from linear_nets.data.fashion_mnist import FashionMNIST

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Data loading"
BATCH_SIZE = 256


def median_seconds(
    fn: Callable[[], object], repeats: int, setup: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Median wall time and median CPU time (all threads) of `fn()` over `repeats` runs; `setup()` runs untimed.

    CPU time hardly changes when other processes compete for the cores; wall time does.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        if setup is not None:
            setup()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def load_both(data_dir: str | None) -> tuple[FashionMNIST, FashionMNIST]:
    return FashionMNIST("train", data_dir), FashionMNIST("test", data_dir)


def one_pass(loader) -> int:
    """Draw every batch, as a training loop would; return the examples seen."""
    seen = 0
    for X, y in loader:
        assert X.shape[0] == y.shape[0]
        seen += X.shape[0]
    return seen


class PerSampleDataset(torch.utils.data.Dataset):
    """The book's shape of loader: one Python call and one small tensor per image."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i].to(torch.float32) / 255, int(self.labels[i])


def measure(data_dir: str | None, repeats: int) -> list[tuple[str, tuple[float, float]]]:
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache  # a private verification cache: cold and warm on demand
        memo = Path(cache) / "linear-nets" / "verified.json"
        cold = median_seconds(lambda: load_both(data_dir), repeats, setup=lambda: memo.unlink(missing_ok=True))
        load_both(data_dir)
        warm = median_seconds(lambda: load_both(data_dir), repeats)
        train, _ = load_both(data_dir)
    rows.append(("(a) load all 70,000 images from .gz, verification cache warm", warm))
    rows.append(("(a) load all 70,000 images from .gz, verification cache cold (SHA-256 computed)", cold))

    tensors = (train.images, train.labels)
    first = median_seconds(lambda: one_pass(ArrayLoader(tensors, BATCH_SIZE, shuffle=True, seed=0)), repeats)
    loader = ArrayLoader(tensors, BATCH_SIZE, shuffle=True, seed=0)
    one_pass(loader)
    later = median_seconds(lambda: one_pass(loader), repeats)
    rows.append((f"(b) ArrayLoader: first shuffled pass over 60,000, batch {BATCH_SIZE}", first))
    rows.append((f"(b) ArrayLoader: later shuffled passes over 60,000, batch {BATCH_SIZE}", later))

    book = torch.utils.data.DataLoader(
        PerSampleDataset(train.images, train.labels), batch_size=BATCH_SIZE, shuffle=True, num_workers=0
    )
    rows.append(
        (
            f"(c) per-sample Dataset + DataLoader (0 workers), one shuffled pass, batch {BATCH_SIZE}",
            median_seconds(lambda: one_pass(book), repeats),
        )
    )
    return rows


def machine() -> str:
    """Platform, CPUs, versions, and the load average: on a busy machine every figure is slower and noisier."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    return (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"load average {load} after the run"
    )


def table(rows: list[tuple[str, tuple[float, float]]], repeats: int) -> str:
    lines = [f"| what (median of {repeats}) | wall s | CPU s |", "|---|---:|---:|"]
    lines += [f"| {what} | {wall:.3f} | {cpu:.3f} |" for what, (wall, cpu) in rows]
    return "\n".join(lines)


def replace_section(text: str, heading: str, body: str) -> str:
    """`text` with the section under `heading` (up to the next `## ` heading) replaced by `body`, or appended."""
    lines = text.splitlines()
    new = [heading, "", *body.rstrip("\n").splitlines(), ""]
    if heading not in lines:
        return "\n".join([*lines, "", *new]).strip("\n") + "\n"
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join([*lines[:start], *new, *lines[end:]]).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {RESULTS.name}")
    args = parser.parse_args(argv)
    rows = measure(args.data_dir, args.repeats)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = f"{table(rows, args.repeats)}\n\nMachine: {machine()}. Measured {when} by `benchmarks/bench_data.py`."
    print(body)
    if not args.no_write:
        old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
        atomic_write_text(RESULTS, replace_section(old, SECTION, body))
        print(f"\nupdated {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
