"""The machine's memory, asked before a size is allocated: a size that cannot fit is one line, not a swapping machine
or an allocator's traceback. The configs (`--samples`, `--resize`) and the table readers (rows x columns, categories)
ask here; nothing else reads /proc/meminfo.
"""

from __future__ import annotations

import os

from linear_nets.errors import ConfigError


def available_memory() -> int | None:
    """Bytes this process can still allocate: Linux's MemAvailable, lowered by a cgroup (container) limit when there
    is one; otherwise the free physical memory; None where the system does not say."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    for limit_file, usage_file in (("memory.max", "memory.current"),  # cgroup v2, then v1
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):  # fmt: skip
        try:
            with open(f"/sys/fs/cgroup/{limit_file}") as f, open(f"/sys/fs/cgroup/{usage_file}") as g:
                limit, usage = f.read().strip(), g.read().strip()
        except OSError:
            continue
        if limit.isdigit() and usage.isdigit():  # "max" (v2) means no limit; v1 says so with a huge number
            available = min(available, max(0, int(limit) - int(usage)))
        break
    return available


def format_bytes(n: float) -> str:
    """A size in decimal units, one decimal.

    Example:
        >>> format_bytes(80e9), format_bytes(3.9e9), format_bytes(28_800_000)
        ('80.0 GB', '3.9 GB', '28.8 MB')
    """
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def check_memory(what: str, need: int) -> None:
    """Raise `ConfigError` ("--samples 10000000000 of 2 features needs 120.0 GB, this machine has 3.9 GB available")
    when `need` bytes are more than this machine has available."""
    available = available_memory()
    if available is not None and need > available:
        raise ConfigError(f"{what} needs {format_bytes(need)}, this machine has {format_bytes(available)} available")
