"""The `linear-nets` command line. Each command group's module has a `register(subparsers)` that adds its parser and
sets `func`, the handler (parsed args -> exit status)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from linear_nets import __version__
from linear_nets.errors import LinearNetsError, flag_message

# Modules under linear_nets.cli that add command groups, in the order `--help` lists them.
COMMAND_MODULES = ["data", "train", "saved_runs", "runs", "report", "plot", "tune"]


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser (its subcommands' too), whose errors are one short usage line and the error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"usage: {self.prog} [options] (see {self.prog} --help)", file=sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command group registered. Imports no torch (command modules import
    what they need inside their handlers), so `--help` and `data path` start fast."""
    parser = ArgumentParser(
        prog="linear-nets", description="Linear regression and softmax regression (d2l chapter 3), offline and fast."
    )
    parser.add_argument("--version", action="version", version=f"linear-nets {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"linear_nets.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 a user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LinearNetsError as exc:
        # One write of the whole line, "[rank N] " first in a process torchrun started other than rank 0: every
        # process shares the terminal, and print's separate writes of the text and its newline let lines run together.
        rank = os.environ.get("RANK", "0") if "TORCHELASTIC_RUN_ID" in os.environ else "0"
        prefix = "" if rank == "0" else f"[rank {rank}] "
        sys.stderr.write(f"{prefix}linear-nets: error: {flag_message(exc)}\n")
        sys.stderr.flush()
        return 2
    except KeyboardInterrupt:
        print("linear-nets: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (e.g. `| head`): stop quietly, no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit cannot fail again
        return 1


def run() -> None:
    """The `linear-nets` command (and `python -m linear_nets`): `main`, its output flushed, then `os._exit`: the
    interpreter's teardown after torch takes about 0.3 s (benchmarks/RESULTS.md) and frees nothing the operating
    system does not (every file written is closed). `main` is what tests and other Python code call."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader left (`| head`), or the stream is closed: nothing to keep
            code = code or 1
    os._exit(code)
