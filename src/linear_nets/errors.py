"""Exceptions a user can cause: each carries a one-line message that says what happened and what to do about it; the
CLI prints that line to stderr and exits with status 2 (no traceback)."""

from __future__ import annotations

import os
import re
from functools import partial

DIVERGENCE_FACTOR = 10.0
"""A training loss above this many times the first epoch's ends a fit as diverged (`pipeline.callbacks`)."""


class LinearNetsError(Exception):
    """Base class of every error this package raises on purpose.

    `LinearNetsError(message, *fields)`: `fields` are the config or data fields the message names (`test_fraction`);
    the command line shows each as its flag (`--test-fraction`, `flag_message`), the library as it is.

    Example:
        >>> str(ConfigError("test_fraction must be < 1, got 2", "test_fraction"))
        'test_fraction must be < 1, got 2'
    """

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.args[1:])

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def flag(field: str) -> str:
    """The command line's flag for a config or data field: `batch_size` -> `--batch-size`."""
    return "--" + field.replace("_", "-")


def flag_message(error: LinearNetsError) -> str:
    """The error's message with each field it names written as the command line's flag (`batch_size` ->
    `--batch-size`). Only the word itself: not a flag already written, nor part of a path, a file name or a quoted
    name (`/srv/data/t.csv`, `data.csv`, column 'data').

    Example:
        >>> flag_message(ConfigError("batch_size must be >= 1, got 0", "batch_size"))
        '--batch-size must be >= 1, got 0'
        >>> flag_message(DataError("/srv/data/t.csv and column 'data' hold no data.", "data"))
        "/srv/data/t.csv and column 'data' hold no --data."
    """
    message = str(error)
    for name in error.fields:
        word = rf"(?<![\w/.'\"-]){re.escape(name)}(?![\w/'\"-]|\.\w)"
        message = re.sub(word, flag(name), message)
    return message


class DataError(LinearNetsError):
    """Data is missing, corrupt, of the wrong shape or contains NaN/inf."""


class ConfigError(LinearNetsError, ValueError):
    """An argument is out of range or inconsistent (names the argument)."""


class WriteError(LinearNetsError, OSError):
    """A file could not be written (the disk is full, or the place is read-only or not ours): the message names the
    file, `errno` is the operating system's. Also an `OSError`, so code that treats a failed write as harmless (a
    cache) keeps catching it as one."""

    def __init__(self, path: object, errno: int) -> None:
        super().__init__(f"cannot write {path}: {os.strerror(errno)}")
        self.errno, self.strerror, self.filename = errno, os.strerror(errno), str(path)

    def __reduce__(self) -> tuple:  # pickled as it was made (e.g. from a worker process), not from its message
        return type(self), (self.filename, self.errno)


class TrainingDiverged(LinearNetsError):
    """The loss became NaN or infinite during training, or rose far above where it started (`start`: the first
    epoch's loss). `hint` says what to do (default: lower the learning rate)."""

    def __init__(
        self, epoch: int, step: int, loss: float, *, start: float | None = None, hint: str | None = None
    ) -> None:
        self.epoch, self.step, self.loss, self.start, self.hint = epoch, step, loss, start, hint
        hint = hint or "lower the learning rate (--lr) and try again"
        if start is None:
            message = f"training diverged: loss became {loss} at epoch {epoch}, step {step}; {hint}"
        else:
            message = (f"training diverged: the training loss rose from {start:.4g} (epoch 1) to {loss:.4g} at epoch "
                       f"{epoch}, more than {DIVERGENCE_FACTOR:g}x where it started; {hint}")  # fmt: skip
        super().__init__(message)

    def __reduce__(self) -> tuple:
        # Pickled as it was made (a worker process's error), then given its message as it is: a caller may have
        # reworded it (the scikit-learn estimators name `lr`, not `--lr`)
        made = partial(TrainingDiverged, start=self.start, hint=self.hint)
        return made, (self.epoch, self.step, self.loss), {"args": self.args}
