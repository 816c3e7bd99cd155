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


def resolve_device(name: str | None):
    """The torch device `--device` names; `ConfigError` when cuda is asked for and there is none.

    Example:
        >>> resolve_device("cpu").type
        'cpu'
    """
    import torch

    from linear_nets.errors import ConfigError

    if name in (None, "cpu"):
        return torch.device("cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device cuda: this torch ({torch.__version__}) sees no CUDA device; use --device cpu")
    return torch.device("cuda")
