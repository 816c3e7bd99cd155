"""Argument types shared by the command groups: they reject bad values with a message naming the argument."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def float_list(text: str) -> list[float]:
    """argparse type: comma-separated finite floats, e.g. `2,-3.4`."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 2,-3.4, got {text!r}") from None
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def add_run_arguments(parser: argparse.ArgumentParser, *, resumable: bool) -> None:
    """The run-directory options every `train` command shares (`--out`; with checkpoints also `--resume`)."""
    parser.add_argument(
        "--out", default=None, metavar="DIR", help="run directory to create (default: runs/<model>-<timestamp>)"
    )
    if resumable:
        parser.add_argument(
            "--checkpoint-every",
            type=non_negative_int,
            default=1,
            metavar="N",
            help="write a checkpoint every N epochs, 0 for none (default: 1); Ctrl-C always saves the last epoch",
        )
        parser.add_argument(
            "--resume",
            default=None,
            metavar="RUN_DIR",
            help="continue an interrupted run from its newest checkpoint, with the options in its config.json "
            "(only --data-dir and --threads may differ)",
        )


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


DEVICES = ("cpu", "cuda", "auto")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """`--device cpu|cuda|auto` (default: cpu)."""
    parser.add_argument(
        "--device", choices=DEVICES, default=None, help="where to compute: cpu (default), cuda, or auto (cuda if any)"
    )


class Warming:
    """Imports running in a background thread (see `start_warming`); `join()` waits for them."""

    def __init__(self, steps: list) -> None:
        import threading

        self.thread = threading.Thread(target=self._run, args=(steps,), name="linear-nets-warming", daemon=True)
        self.thread.start()

    @staticmethod
    def _run(steps: list) -> None:
        for step in steps:
            try:
                step()
            except Exception:  # the foreground import of the same module reports any real problem
                return

    def join(self) -> None:
        self.thread.join()


def start_warming(*, pyplot: bool) -> Warming:
    """Start importing, in a background thread, what a training command needs after it has read its data.

    The first `torch.optim` optimizer imports `torch._dynamo` (about 1.4 s on a 2-core machine) and the figures need
    pyplot (about 0.5 s): both are pure start-up cost. Reading and decompressing the data releases the GIL for much of
    its time, so the two overlap on a second core instead of following each other (benchmarks/RESULTS.md measures
    the whole command with and without). `LINEAR_NETS_NO_WARMING=1` turns it off, for that comparison.
    """
    import importlib
    import os

    if os.environ.get("LINEAR_NETS_NO_WARMING"):
        return Warming([])
    steps = [lambda: importlib.import_module("torch._dynamo")]
    if pyplot:
        steps.append(lambda: importlib.import_module("linear_nets.plotting").pyplot())
    return Warming(steps)
