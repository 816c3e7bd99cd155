"""`linear-nets train MODEL ...`: one subcommand per model, each in its own module."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` group and every model's subcommand."""
    from linear_nets.cli import train_linreg, train_softmax

    parser = subparsers.add_parser("train", help="train a model and report its metrics")
    models = parser.add_subparsers(dest="model", metavar="MODEL")
    models.required = True
    for module in (train_linreg, train_softmax):
        module.register(models)
