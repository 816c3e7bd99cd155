"""`linear-nets train MODEL ...`: one subcommand per model, each in its own module."""

from __future__ import annotations

import argparse
import importlib

# Modules under linear_nets.cli that add a model to `train`; each has `register(train_subparsers)`.
TRAIN_MODULES: list[str] = ["train_linreg", "train_softmax"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` group and every model's subcommand."""
    parser = subparsers.add_parser("train", help="train a model and report its metrics")
    models = parser.add_subparsers(dest="model", metavar="MODEL")
    models.required = True
    for name in TRAIN_MODULES:
        importlib.import_module(f"linear_nets.cli.{name}").register(models)
