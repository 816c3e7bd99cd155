"""`linear-nets tune softmax`: a small seeded search for the best softmax regression on the validation split.

Carves a stratified validation split out of the training set, trains every combination of the given learning
rates, weight decays and batch sizes (other settings from `--preset`, default best), early-stopping each on the
validation split, and prints a row per fit, then the configuration with the best validation accuracy and the
command that trains it. The test set is not looked at: report it with `linear-nets train softmax`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import TextIO

import torch

from linear_nets.cli.common import float_list
from linear_nets.errors import ConfigError
from linear_nets.optim import check_weight_decay
from linear_nets.regularization import check_val_fraction
from linear_nets.tuning import DEFAULT_GRID, PRESETS, Trial, as_flags, grid_configs, load_splits, tune_softmax


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `tune` group with its `softmax` command."""
    parser = subparsers.add_parser("tune", help="search hyperparameters on a validation split")
    models = parser.add_subparsers(dest="model", metavar="MODEL")
    models.required = True
    softmax = models.add_parser(
        "softmax", help="softmax regression on Fashion-MNIST", description=__doc__.split("\n\n")[1]
    )
    grid = DEFAULT_GRID
    softmax.add_argument("--lr", type=float_list, default=list(grid["lr"]), metavar="LIST",
                         help=f"learning rates (default: {_join(grid['lr'])})")  # fmt: skip
    softmax.add_argument("--weight-decay", type=float_list, default=list(grid["weight_decay"]), metavar="LIST",
                         help=f"weight decays (default: {_join(grid['weight_decay'])})")  # fmt: skip
    softmax.add_argument("--batch-size", type=float_list, default=list(grid["batch_size"]), metavar="LIST",
                         help=f"batch sizes (default: {_join(grid['batch_size'])})")  # fmt: skip
    softmax.add_argument("--preset", choices=tuple(PRESETS), default="best", help="the other settings (default: best)")
    softmax.add_argument("--epochs", type=int, default=None, help="maximum epochs per fit (default: the preset's)")
    softmax.add_argument("--val-fraction", type=float, default=0.1, help="share of each class held out (0.1)")
    softmax.add_argument("--seed", type=int, default=0, help="fixes the split, initialisation and shuffling (0)")
    softmax.add_argument("--data-dir", default=None, metavar="DIR", help="directory holding the four IDX files")
    softmax.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: torch's)")
    softmax.set_defaults(func=run)


def _join(values) -> str:
    return ",".join(f"{v:g}" for v in values)


def grid_from_args(args: argparse.Namespace) -> dict[str, list]:
    """The search grid the flags ask for; `ConfigError` naming the flag for a value out of range."""
    check_val_fraction_flag(args.val_fraction)
    for lr in args.lr:
        if not lr > 0:
            raise ConfigError(f"--lr values must be positive, got {lr:g}")
    for wd in args.weight_decay:
        try:
            check_weight_decay(wd)
        except ConfigError:
            raise ConfigError(f"--weight-decay values must be >= 0, got {wd:g}") from None
    if any(b != int(b) or b <= 0 for b in args.batch_size):
        raise ConfigError(f"--batch-size values must be positive integers, got {_join(args.batch_size)}")
    if args.epochs is not None and args.epochs <= 0:
        raise ConfigError(f"--epochs must be a positive integer, got {args.epochs}")
    if args.threads is not None and args.threads <= 0:
        raise ConfigError(f"--threads must be a positive integer, got {args.threads}")
    return {"lr": args.lr, "weight_decay": args.weight_decay, "batch_size": [int(b) for b in args.batch_size]}


def check_val_fraction_flag(value: float) -> float:
    """`check_val_fraction`, with the message naming the flag."""
    try:
        return check_val_fraction(value)
    except ConfigError:
        raise ConfigError(f"--val-fraction must lie strictly between 0 and 1, got {value:g}") from None


HEADER = f"{'lr':>8}  {'wd':>8}  {'batch':>5}  {'best epoch':>10}  {'val acc':>7}  {'seconds':>7}"


def row(trial: Trial) -> str:
    """One line of the table."""
    c = trial.config
    return (
        f"{c.lr:>8g}  {c.weight_decay:>8g}  {c.batch_size:>5}  {trial.best_epoch:>10}  "
        f"{trial.val_accuracy:>7.4f}  {trial.seconds:>7.2f}"
    )


def tune(args: argparse.Namespace, out: TextIO | None = None) -> list[Trial]:
    """Run the search the flags describe, printing the table and the choice to `out` (default stdout)."""
    out = sys.stdout if out is None else out
    grid = grid_from_args(args)
    base = replace(PRESETS[args.preset], seed=args.seed)
    if args.epochs is not None:
        base = replace(base, epochs=args.epochs)
    grid_configs(base, grid)  # every configuration checked before the data is read
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    splits = load_splits(args.data_dir, args.val_fraction, split_seed=args.seed)
    print(
        f"tuning softmax regression ({base.impl}, {base.optimizer}, {base.schedule} schedule"
        f"{', standardized' if base.standardize else ''}) on {len(splits.train[1])} train / {len(splits.val[1])} "
        f"validation images, up to {base.epochs} epochs per fit, seed {args.seed}",
        file=out,
    )
    print(HEADER, file=out, flush=True)
    trials = tune_softmax(splits, base, grid, on_trial=lambda t: print(row(t), file=out, flush=True))
    best = trials[0]
    c = best.config
    print(
        f"chosen: lr {c.lr:g}, weight decay {c.weight_decay:g}, batch {c.batch_size} (best epoch {best.best_epoch}): "
        f"validation accuracy {best.val_accuracy:.4f}",
        file=out,
    )
    flags = as_flags(replace(best.config, epochs=base.epochs), PRESETS["book"])
    print(f"train it: linear-nets train softmax {flags} --val-fraction {args.val_fraction:g}", file=out)
    return trials


def run(args: argparse.Namespace) -> int:
    """The `tune softmax` handler."""
    tune(args)
    return 0
