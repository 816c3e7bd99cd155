"""`Timer`: record the duration of several runs (d2l section 3.1)."""

from __future__ import annotations

import itertools
import time


class Timer:
    """Record multiple running times.

    Example:
        >>> timer = Timer()
        >>> _ = sum(range(1000))
        >>> elapsed = timer.stop()
        >>> elapsed >= 0 and len(timer.times) == 1
        True
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self.start()

    def start(self) -> None:
        """Start (or restart) the clock."""
        self._tik = time.perf_counter()

    def stop(self) -> float:
        """Stop the clock, record the elapsed seconds and return them."""
        self.times.append(time.perf_counter() - self._tik)
        return self.times[-1]

    def avg(self) -> float:
        """Mean of the recorded times."""
        return sum(self.times) / len(self.times)

    def sum(self) -> float:
        """Total of the recorded times."""
        return sum(self.times)

    def cumsum(self) -> list[float]:
        """Running totals of the recorded times."""
        return list(itertools.accumulate(self.times))
