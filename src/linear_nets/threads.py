"""Torch's thread count for the library's own work, chosen as the command line chooses it.

A linear model's products are small, so torch splits each into short parallel regions whose threads wait for each
other; when another process holds a core, every region waits for it (with one core busy, the book's 3.7 training
was 5.1x slower with torch's default two threads than with one). So the loaders, the training loop and the `d2l`
facade compute with `OMP_NUM_THREADS` threads where it is set, else with the cores no other process is using.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

import torch

_chosen: int | None = None
"""The threads an enclosing `work_threads` block chose: inner blocks keep them (and ask the machine nothing)."""
_recent: tuple[float, int] | None = None
"""(when, runnable tasks) of the last reading of /proc/loadavg, reused for `REUSE_SECONDS`."""
REUSE_SECONDS = 1.0  # the loaders ask once per epoch: 10 ms of sampling was 40% of a 26 ms epoch of batches


def busy_cores(own_processes: int = 1, samples: int = 3) -> int:
    """How many cores other processes keep busy right now: the runnable tasks (4th field of /proc/loadavg, a count at
    this instant) less our own `own_processes`, median of `samples` readings 1 ms apart, reused for `REUSE_SECONDS`;
    0 where /proc/loadavg is missing."""
    import statistics
    import time

    global _recent
    now = time.monotonic()
    if _recent is None or now - _recent[0] >= REUSE_SECONDS:
        counts = []
        for _ in range(samples):
            try:
                with open("/proc/loadavg") as file:
                    counts.append(int(file.read().split()[3].split("/")[0]))
            except (OSError, IndexError, ValueError):
                return 0
            time.sleep(0.001)
        _recent = (now, statistics.median_low(counts))
    return max(0, _recent[1] - own_processes)


def share_of_idle_cores(processes: int = 1, cores: int | None = None, busy: int | None = None) -> int:
    """Threads for each of `processes` processes: the idle cores (`cores` less `busy`) shared out, at least one.

    Example:
        >>> share_of_idle_cores(cores=2, busy=1), share_of_idle_cores(2, cores=16, busy=0)
        (1, 8)
    """
    cores = cores or os.cpu_count() or 1
    busy = busy_cores(processes) if busy is None else busy
    return max(1, min(cores, cores - busy) // processes)


def omp_threads(environ: Mapping[str, str] = os.environ) -> int | None:
    """`OMP_NUM_THREADS` as a positive number, or None where it is unset or not one.

    Example:
        >>> omp_threads({"OMP_NUM_THREADS": "3"}), omp_threads({})
        (3, None)
    """
    given = environ.get("OMP_NUM_THREADS", "").strip()
    return int(given) if given.isdigit() and int(given) > 0 else None


@contextlib.contextmanager
def work_threads(threads: int | None = None) -> Iterator[int]:
    """Compute with `threads` torch threads inside the block (None: `OMP_NUM_THREADS`, else the idle cores; inside
    another `work_threads` block, the outer choice), and restore the caller's number after it.

    Example:
        >>> before = torch.get_num_threads()
        >>> with work_threads(1) as n:
        ...     n, torch.get_num_threads()
        (1, 1)
        >>> torch.get_num_threads() == before
        True
    """
    global _chosen
    if threads is None:
        threads = chosen_threads()
    before, outer = torch.get_num_threads(), _chosen
    if threads != before:
        torch.set_num_threads(threads)
    _chosen = threads
    try:
        yield threads
    finally:
        _chosen = outer
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def chosen_threads() -> int:
    """The threads `work_threads()` uses here: an enclosing block's choice, else `OMP_NUM_THREADS`, else idle cores."""
    return _chosen or omp_threads() or share_of_idle_cores()
