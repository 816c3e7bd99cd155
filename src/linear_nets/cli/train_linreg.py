"""`linear-nets train linreg`: fit linear regression to synthetic data and compare with the truth (d2l 3.2, 3.3).

Generates y = Xw + b + ε from the true w and b, fits it with minibatch SGD (from scratch, with hand-derived
gradients, or concisely with torch.nn; any of the three losses) or with the closed-form least-squares
solution, prints the training-set loss after each epoch, then the estimated w and b and their errors
(true minus estimated, as the book prints them). The seed fixes the data, the initialisation and the
shuffling, so the same command prints the same numbers.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from importlib import import_module

import torch

from linear_nets.cli.common import float_list, positive_float, positive_int
from linear_nets.closed_form import RankDeficientWarning, least_squares
from linear_nets.data.synthetic import synthetic_data
from linear_nets.errors import ConfigError
from linear_nets.losses import LOSSES

IMPLS = ("scratch", "manual", "concise")
SOLVERS = ("sgd", "closed-form")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `linreg` to the `train` group."""
    parser = subparsers.add_parser(
        "linreg",
        help="linear regression on synthetic data (d2l 3.2, 3.3)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("--impl", choices=IMPLS, default="scratch", help="implementation (default: scratch)")
    parser.add_argument("--loss", choices=tuple(LOSSES), default="squared", help="loss (default: squared)")
    parser.add_argument(
        "--huber-sigma", type=positive_float, default=None, metavar="SIGMA", help="Huber threshold (default: 1)"
    )
    parser.add_argument(
        "--solver",
        choices=SOLVERS,
        default="sgd",
        help="sgd, or closed-form least squares (squared loss only; ignores --impl, --lr, --epochs, --batch-size)",
    )
    parser.add_argument("--true-w", type=float_list, default=[2.0, -3.4], metavar="W1,W2,...", help="default: 2,-3.4")
    parser.add_argument("--true-b", type=_finite_float, default=4.2, metavar="B", help="default: 4.2")
    parser.add_argument("--samples", type=positive_int, default=1000, help="number of examples (default: 1000)")
    parser.add_argument("--noise", type=_non_negative_float, default=0.01, help="noise std (default: 0.01)")
    parser.add_argument("--lr", type=positive_float, default=0.03, help="learning rate (default: 0.03)")
    parser.add_argument("--epochs", type=positive_int, default=3, help="default: 3")
    parser.add_argument("--batch-size", type=positive_int, default=10, help="default: 10")
    parser.add_argument("--seed", type=int, default=0, help="fixes data, initialisation and shuffling (default: 0)")
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    if args.huber_sigma is not None and args.loss != "huber":
        raise ConfigError(f"--huber-sigma applies to --loss huber only, not --loss {args.loss}")
    if args.solver == "closed-form" and args.loss != "squared":
        raise ConfigError(f"--solver closed-form minimises the squared loss; it cannot use --loss {args.loss}")


def _format(values: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:.6f}" for v in values.tolist()) + "]"


def run(args: argparse.Namespace) -> int:
    """Generate the data, fit, and print the losses, the estimates and their errors."""
    _check(args)
    true_w = torch.tensor(args.true_w, dtype=torch.float32)
    features, labels = synthetic_data(
        true_w, args.true_b, args.samples, args.noise, generator=torch.Generator().manual_seed(args.seed)
    )
    if args.solver == "closed-form":
        print(f"linreg: closed-form least squares (float64), {args.samples} examples, {len(true_w)} features")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RankDeficientWarning)
            w, b = least_squares(features, labels)
        for warning in caught:  # one plain line, not Python's two-line warning with a source excerpt
            print(f"linear-nets: warning: {warning.message}", file=sys.stderr)
    else:
        print(
            f"linreg: {args.impl}, {args.loss} loss, SGD lr {args.lr} batch {args.batch_size}, "
            f"{args.samples} examples, {len(true_w)} features"
        )
        fit = import_module(f"linear_nets.{args.impl}.linear_regression").fit
        w, b, _ = fit(
            features,
            labels,
            loss=args.loss,
            huber_sigma=args.huber_sigma if args.huber_sigma is not None else 1.0,
            lr=args.lr,
            num_epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            on_epoch_end=lambda epoch, loss: print(f"epoch {epoch}, loss {loss:f}", flush=True),
        )
    w, b = w.to(torch.float64), b.to(torch.float64)
    print(f"estimated w: {_format(w)}")
    print(f"estimated b: {b.item():.6f}")
    print(f"error in estimating w: {_format(true_w.to(torch.float64) - w)}")
    print(f"error in estimating b: {args.true_b - b.item():.6f}")
    return 0
