"""`linear-nets train linreg`: fit linear regression to synthetic data and compare with the truth (d2l 3.2, 3.3).

Generates y = Xw + b + ε from the true w and b, fits it with minibatch SGD (from scratch, with hand-derived
gradients, or concisely with torch.nn; any of the three losses) or with the closed-form least-squares
solution, prints the training-set loss after each epoch, then the estimated w and b and their errors
(true minus estimated, as the book prints them). The seed fixes the data, the initialisation and the
shuffling, so the same command prints the same numbers. Every run writes a run directory (`--out`, default
`runs/linreg-<timestamp>`): config.json, metrics.csv/.jsonl, curves.png/.svg (SGD), model.safetensors and
summary.json with the estimates and their errors.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from importlib import import_module

import torch

from linear_nets.cli.common import add_run_arguments, float_list, positive_float, positive_int
from linear_nets.closed_form import RankDeficientWarning, least_squares
from linear_nets.data.synthetic import synthetic_data
from linear_nets.errors import ConfigError
from linear_nets.losses import LOSSES
from linear_nets.runs import Run, run_config
from linear_nets.timing import Timer

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
    add_run_arguments(parser, resumable=False)
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    if args.huber_sigma is not None and args.loss != "huber":
        raise ConfigError(f"--huber-sigma applies to --loss huber only, not --loss {args.loss}")
    if args.solver == "closed-form" and args.loss != "squared":
        raise ConfigError(f"--solver closed-form minimises the squared loss; it cannot use --loss {args.loss}")


def _format(values: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:.6f}" for v in values.tolist()) + "]"


def make_data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The run's synthetic data (true w, X, y), regenerated exactly from its arguments (also by `evaluate`)."""
    true_w = torch.tensor(args.true_w, dtype=torch.float32)
    features, labels = synthetic_data(
        true_w, args.true_b, args.samples, args.noise, generator=torch.Generator().manual_seed(args.seed)
    )
    return true_w, features, labels


def run(args: argparse.Namespace) -> int:
    """Generate the data, fit, print the losses, the estimates and their errors, and record the run."""
    _check(args)
    timer = Timer()
    true_w, features, labels = make_data(args)
    arguments = {k: v for k, v in vars(args).items() if k not in ("func", "command", "model")}
    run_dir = Run.create("linreg", run_config(arguments), args.out)
    losses: list[dict] = []

    def record(epoch: int, loss: float) -> None:
        print(f"epoch {epoch}, loss {loss:f}", flush=True)
        losses.append({"epoch": epoch, "train_loss": loss})
        run_dir.write_metrics(losses)

    with run_dir.removed_on_error():  # e.g. diverged: no half-recorded run is left behind
        w, b = _fit(args, features, labels, record)
    w, b = w.to(torch.float64), b.to(torch.float64)
    print(f"estimated w: {_format(w)}")
    print(f"estimated b: {b.item():.6f}")
    print(f"error in estimating w: {_format(true_w.to(torch.float64) - w)}")
    print(f"error in estimating b: {args.true_b - b.item():.6f}")
    _finish(run_dir, w, b, true_w, args, losses, timer.stop())
    return 0


def _fit(args: argparse.Namespace, features: torch.Tensor, labels: torch.Tensor, record) -> tuple:
    """Fit with the chosen solver and implementation; `record(epoch, loss)` is called after each SGD epoch."""
    num_features = features.shape[1]
    if args.solver == "closed-form":
        print(f"linreg: closed-form least squares (float64), {args.samples} examples, {num_features} features")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RankDeficientWarning)
            w, b = least_squares(features, labels)
        for warning in caught:  # one plain line, not Python's two-line warning with a source excerpt
            print(f"linear-nets: warning: {warning.message}", file=sys.stderr)
    else:
        print(
            f"linreg: {args.impl}, {args.loss} loss, SGD lr {args.lr} batch {args.batch_size}, "
            f"{args.samples} examples, {num_features} features"
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
            on_epoch_end=record,
        )
    return w, b


def _finish(run_dir: Run, w: torch.Tensor, b: torch.Tensor, true_w: torch.Tensor, args, losses, seconds) -> None:
    """Write the model, the loss curve (SGD only) and the summary; print where they are."""
    run_dir.save_model({"w": w, "b": b.reshape(())}, {"model": "linreg", "solver": args.solver, "impl": args.impl})
    if losses:
        from linear_nets.plotting import plot, pyplot, save_figure  # pyplot only once needed

        axes = plot(
            [r["epoch"] for r in losses],
            [[r["train_loss"] for r in losses]],
            xlabel="epoch",
            ylabel=f"{args.loss} loss",
            yscale="log",
        )
        save_figure(axes.figure, run_dir.path / "curves")
        pyplot().close(axes.figure)
    run_dir.write_summary(
        {
            "estimated_w": w.tolist(),
            "estimated_b": b.item(),
            "error_w": (true_w.to(torch.float64) - w).tolist(),
            "error_b": args.true_b - b.item(),
            "final_train_loss": losses[-1]["train_loss"] if losses else None,
            "epochs": len(losses),
            "wall_seconds": round(seconds, 3),
        }
    )
    print(f"run directory: {run_dir.path}")
