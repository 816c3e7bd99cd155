"""Argument types and flags shared by the command groups, and the checks of what only the command line gives: each
refuses with a message naming the flag, before any work."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from linear_nets.errors import ConfigError, flag

MAX_SHOW = 200
"""Most images one figure shows (`data show --n`, `predict --n`): more make an unreadable grid and a slow figure."""


def check_show_count(n: int, available: int | None = None, of: str = "") -> int:
    """Return `n`, or raise `ConfigError` naming `--n` above `MAX_SHOW` or the `available` images `of` a split."""
    if n > MAX_SHOW:
        raise ConfigError(f"--n must be at most {MAX_SHOW}, got {n}")
    if available is not None and n > available:
        raise ConfigError(f"--n {n} is more than the {available} images of {of}")
    return n


def mu_sigma_pairs(values: list[list[float]]) -> list[tuple[float, float]]:
    """`plot normal --mu-sigma`'s (mean, std) pairs: two numbers each, the std > 0."""
    from linear_nets.pipeline.config import joined

    for pair in values:
        if len(pair) != 2 or not pair[1] > 0:
            raise ConfigError(f"--mu-sigma takes MU,SIGMA with SIGMA > 0, got {joined(pair)}")
    return [(mu, sigma) for mu, sigma in values]


def check_table_flags_need_data(args: argparse.Namespace) -> None:
    """Refuse `predict`'s flags about the predictions of a table without `--data`, naming the first given."""
    given = [name for name, value in (("--keep", args.keep), ("--keep-all", args.keep_all),
                                      ("--overwrite", args.overwrite), ("--interval", args.interval is not None))
             if value]  # fmt: skip
    if args.data is None and given:
        raise ConfigError(f"{given[0]} applies to the predictions of a table: give it with --data FILE")


def report_records(paths: Sequence[str], out: str) -> list[Any]:
    """The runs `report` names, read once `--out` names an HTML file in a directory that exists; refused unless each
    opens, none is named twice, and all are of one model."""
    from linear_nets.pipeline.catalog import read_record

    target = Path(out)
    if target.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {out}: the report is an HTML file: name it .html")
    if not target.parent.is_dir():
        raise ConfigError(f"--out {out}: directory {target.parent} does not exist")
    records = [read_record(path) for path in paths]
    for path, record in zip(paths, records, strict=True):
        if record.run is None:
            raise ConfigError(f"cannot report on {path}: {record.problems[0]}")
    if len({r.path.resolve() for r in records}) != len(records):
        raise ConfigError("report: a run is named twice")
    if len({r.model for r in records}) > 1:
        which = ", ".join(f"{r.path} is {r.model}" for r in records)
        raise ConfigError(f"report compares runs of one model, got several ({which}): report each alone")
    return records


def check_tensorboard() -> None:
    """Raise `ConfigError` when `--tensorboard`'s package cannot be imported (checked before any work)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        message = "--tensorboard needs the tensorboard package: pip install 'linear-nets[tensorboard]'"
        raise ConfigError(message) from None


def _number(kind: type, ok: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """An argparse type: `kind(text)` where `ok` holds of it, else one line saying what was `expected`.

    Example:
        >>> positive_int("3"), non_negative_int("0"), confidence_level("0.95")
        (3, 0, 0.95)
    """

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return convert


positive_int = _number(int, lambda v: v > 0, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: 0 < v < math.inf, "a positive finite number")
confidence_level = _number(float, lambda v: 0 < v < 1, "a confidence level between 0 and 1 such as 0.95")


def float_list(text: str) -> list[float]:
    """argparse type: comma-separated finite floats, e.g. `2,-3.4`."""
    from linear_nets.pipeline.config import number_list

    values = list(number_list(text))
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def name_list(text: str) -> list[str]:
    """argparse type: comma-separated column names, e.g. `area,rooms`."""
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names like area,rooms, got {text!r}")
    return names


def add_train_arguments(parser: argparse.ArgumentParser, run: Callable, *, resumable: bool,
                        tensorboard_help: str) -> None:  # fmt: skip
    """The flags every `train` command takes after its model's own: your table, `--out` (and `--resume` when
    `resumable`), `--tensorboard` (whose help says it writes `tensorboard_help`). `run` handles the command."""
    group = parser.add_argument_group("your own table (CSV, CSV.gz, Parquet, or a directory of Parquet files)")
    group.add_argument("--data", default=None, metavar="FILE", help="the table to train on")
    group.add_argument("--target", default=None, metavar="COLUMN", help="the column to predict")
    group.add_argument("--features", type=name_list, default=None, metavar="A,B,...",
                       help="input columns (default: every other column)")  # fmt: skip
    group.add_argument("--categorical", type=name_list, default=[], metavar="A,B,...",
                       help="string columns to one-hot encode with the categories seen in training")  # fmt: skip
    group.add_argument("--categorical-coding", choices=("auto", "treatment", "onehot"), default=None,
                       help="treatment: no column for the first category (the reference); onehot: a column per "
                       "category (default auto: treatment for least squares with an intercept, onehot for SGD)")
    group.add_argument("--test-data", default=None, metavar="FILE", help="a table to test on")
    group.add_argument("--test-fraction", type=float, default=None, metavar="F",  # None: not given
                       help="share of rows held out for testing without --test-data (default: 0.2)")  # fmt: skip
    group.add_argument("--drop-missing", action="store_true", help="drop rows with an empty, NaN or inf cell")
    group.add_argument("--stream", action="store_true", help="read the table in batches (larger than memory)")
    group.add_argument("--na-values", type=name_list, default=[], metavar="A,B,...",
                       help="CSV texts that mark a missing value besides an empty cell (e.g. NA,n/a); by default "
                            "'NA' is text, as in Parquet")  # fmt: skip
    group.add_argument("--no-standardize", dest="standardize", action="store_const", const=False,
                       help="fit on the raw features (SGD on a table standardises them by default)")  # fmt: skip
    parser.add_argument(
        "--out", default=None, metavar="DIR", help="run directory to create (default: runs/<model>-<timestamp>)"
    )
    if resumable:
        parser.add_argument(
            "--checkpoint-every",
            type=non_negative_int,
            default=None,  # None: not given (1 for a new run; a resumed run keeps its own)
            metavar="N",
            help="write a checkpoint every N epochs, 0 for none (default: 1); Ctrl-C always saves the last epoch",
        )
        parser.add_argument(
            "--resume",
            default=None,
            metavar="RUN_DIR",
            help="continue an interrupted run from its newest checkpoint, with the options in its config.json "
            "(only --data-dir, --threads and --device may differ; a finished run is left as it is)",
        )
    parser.add_argument("--tensorboard", action="store_true",
                        help=f"{tensorboard_help}; needs pip install 'linear-nets[tensorboard]'")  # fmt: skip
    parser.set_defaults(func=run)


def standardize_tables(args: argparse.Namespace, sgd: bool = True) -> argparse.Namespace:
    """`--standardize` unless `--no-standardize` was given, for SGD on a table (`--data`): on raw scales any one
    learning rate diverges on some features and crawls on others.

    Example:
        >>> standardize_tables(argparse.Namespace(data="t.csv", standardize=None)).standardize
        True
    """
    if args.data is not None and args.standardize is None and sgd:
        args.standardize = True
    return args


def table_options(args: argparse.Namespace) -> Any:
    """The `TableOptions` the flags give, or None without `--data` (then `--target` and friends are refused)."""
    given = given_table_fields(args)
    if args.data is None:
        if given:
            raise ConfigError(f"{flag(next(iter(given)))} needs --data FILE (your own table)")
        return None
    if args.target is None:
        raise ConfigError("--data needs --target COLUMN: the column to predict")
    from linear_nets.pipeline.tables import TableOptions

    return TableOptions(**given).check()


def read_table(options: Any, task: str, config: Any, dtype: Any = None) -> Any:
    """Your table for a fit of `config`: a `StreamedTable` (once `config` is found to stream), or read into memory
    (`TableData` of `dtype`, float32 by default), saying how many rows `--drop-missing` dropped."""
    import torch

    from linear_nets.pipeline.fit import check_streamable
    from linear_nets.pipeline.tables import StreamedTable, load_in_memory

    if options.stream:
        check_streamable(config)  # before the table is read
        return StreamedTable(options, config.seed, task)
    data = load_in_memory(options, task, config.seed, dtype or torch.float32)
    if data.rows_dropped:
        print(f"dropped {data.rows_dropped} rows with a missing value (--drop-missing)")
    return data


def given_table_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The table flags given on the command line (those not given are None, False or empty), by `TableOptions` field.

    Example:
        >>> given_table_fields(argparse.Namespace(data="t.csv", target="y", features=None, categorical=[],
        ...                                       test_data=None, test_fraction=0.0, drop_missing=False, stream=False,
        ...                                       categorical_coding=None, na_values=[]))
        {'data': 't.csv', 'target': 'y', 'test_fraction': 0.0}
    """
    names = ("data", "target", "features", "categorical", "test_data", "test_fraction", "drop_missing", "stream",
             "categorical_coding", "na_values")
    values = {name: getattr(args, name, None) for name in names}
    return {name: v for name, v in values.items() if v is not None and v is not False and v != []}


def resumed_config(args: argparse.Namespace, run: Any, preset: Any = None) -> Any:
    """The config `run` was trained with, the machine flags given beside `--resume` applied; `ConfigError` naming
    every other flag given (each field of a `preset`, the table flags, `--checkpoint-every`, `--out`) whose value
    differs from the run's own."""
    from linear_nets.pipeline.config import given_fields, validate

    saved = run.fit_config
    options = run.config.get("options", {})
    table = options.get("table") or {}
    given = given_fields(args, type(saved))
    typed: list[tuple[str, Any, Any]] = []  # (flag and value as given, the value given, the run's value)
    for p in saved.PARAMS:
        if p.name in given and not p.machine:
            typed.append((f"{p.flag} {given[p.name]}", given[p.name], getattr(saved, p.name)))
        elif preset is not None and not p.machine:
            value = getattr(preset, p.name)
            typed.append((f"{p.flag} {value} from --preset {args.preset}", value, getattr(saved, p.name)))
    for name, value in given_table_fields(args).items():
        typed.append((f"{flag(name)} {value}", value, table.get(name)))
    if args.checkpoint_every is not None:
        typed.append((f"--checkpoint-every {args.checkpoint_every}", args.checkpoint_every,
                      options.get("checkpoint_every", 1)))  # fmt: skip
    if args.out is not None and Path(args.out).resolve() != run.path.resolve():  # `--out RUN` is the same place
        typed.append((f"--out {args.out}", args.out, run.path))
    changed = [f"{shown} (run: {'not set' if was is None else was})" for shown, value, was in typed if value != was]
    if changed:
        raise ConfigError(f"{', '.join(changed)} cannot change when resuming; only --data-dir, --threads and "
                          "--device may differ")  # fmt: skip
    machine = {p.name: given[p.name] for p in saved.PARAMS if p.machine and p.name in given}
    return validate(dataclasses.replace(saved, **machine))


@contextlib.contextmanager
def data_parallel() -> Iterator[Any]:
    """The `pipeline.distributed.World` of this process, inside its process group when torchrun started it; the
    processes other than rank 0 print nothing on stdout (their errors still reach stderr)."""
    from linear_nets.pipeline.distributed import detect, started

    world = detect()
    with started(world):
        if world.leader:
            yield world
            return
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            yield world
