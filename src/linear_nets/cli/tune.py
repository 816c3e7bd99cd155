"""`linear-nets tune softmax`: a small seeded search for the best softmax regression on the validation split.

Carves a stratified validation split out of the training set, trains every combination of the given learning
rates, weight decays and batch sizes (other settings from `--preset`, default best), early-stopping each on the
validation split, and prints a row per fit, then the configuration with the best validation accuracy and the
command that trains it. The test set is not looked at: report it with `linear-nets train softmax`.
"""

from __future__ import annotations

import argparse
import dataclasses

from linear_nets.cli.common import float_list
from linear_nets.errors import flag
from linear_nets.pipeline.config import SOFTMAX_PRESETS, as_flags, grid_configs, joined, validate
from linear_nets.pipeline.config import TUNING_GRID as GRID


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `tune` group with its `softmax` command."""
    parser = subparsers.add_parser("tune", help="search hyperparameters on a validation split")
    models = parser.add_subparsers(dest="model", metavar="MODEL")
    models.required = True
    softmax = models.add_parser(
        "softmax", help="softmax regression on Fashion-MNIST", description=__doc__.split("\n\n")[1]
    )
    for name, values in (("lr", "learning rates"), ("weight_decay", "weight decays"), ("batch_size", "batch sizes")):
        softmax.add_argument(flag(name), type=float_list, default=GRID[name], metavar="LIST",
                             help=f"{values} (default: {joined(GRID[name])})")
    softmax.add_argument("--preset", choices=tuple(SOFTMAX_PRESETS), default="best",
                         help="the other settings (default: best)")  # fmt: skip
    softmax.add_argument("--epochs", type=int, default=None, help="maximum epochs per fit (default: the preset's)")
    softmax.add_argument("--val-fraction", type=float, default=0.1, help="share of each class held out (0.1)")
    softmax.add_argument("--seed", type=int, default=0, help="fixes the split, initialisation and shuffling (0)")
    softmax.add_argument("--data-dir", default=None, metavar="DIR", help="directory holding the four IDX files")
    softmax.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: torch's)")
    softmax.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The `tune softmax` handler: every configuration checked before the data is read, a row per fit, the choice."""
    from linear_nets.pipeline.fit import fashion_mnist
    from linear_nets.pipeline.tuning import Trial, tune_softmax

    preset = SOFTMAX_PRESETS[args.preset]
    base = validate(dataclasses.replace(preset, seed=args.seed, val_fraction=args.val_fraction, threads=args.threads,
                                        epochs=preset.epochs if args.epochs is None else args.epochs))  # fmt: skip
    sizes = [int(b) if float(b).is_integer() else b for b in args.batch_size]
    grid = {"lr": args.lr, "weight_decay": args.weight_decay, "batch_size": sizes}
    grid_configs(base, grid)
    data = fashion_mnist(args.data_dir)
    print(
        f"tuning softmax regression ({base.impl}, {base.optimizer}, {base.schedule} schedule"
        f"{', standardized' if base.standardize else ''}) on {len(data.train[1])} training images, "
        f"{base.val_fraction:g} of each class held out for validation, up to {base.epochs} epochs per fit, "
        f"seed {args.seed}"
    )
    print(f"{'lr':>8}  {'wd':>8}  {'batch':>5}  {'best epoch':>10}  {'val acc':>7}  {'seconds':>7}", flush=True)

    def row(trial: Trial) -> None:
        c = trial.config
        print(
            f"{c.lr:>8g}  {c.weight_decay:>8g}  {c.batch_size:>5}  {trial.best_epoch:>10}  "
            f"{trial.val_accuracy:>7.4f}  {trial.seconds:>7.2f}",
            flush=True,
        )

    best = tune_softmax(data, base, grid, on_trial=row)[0]
    c = best.config
    print(
        f"chosen: lr {c.lr:g}, weight decay {c.weight_decay:g}, batch {c.batch_size} (best epoch {best.best_epoch}): "
        f"validation accuracy {best.val_accuracy:.4f}"
    )
    print(f"train it: linear-nets train softmax {as_flags(c)}")
    return 0
