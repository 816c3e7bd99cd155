"""`linear-nets plot FIGURE --out FILE`: the notes' figures as PNG or SVG files, for terminal users.

The output path, the sizes and the seed are checked before any work (`pipeline.config`'s rules), so a bad argument
costs nothing and writes nothing.
"""

from __future__ import annotations

import argparse

from linear_nets.cli.common import float_list, mu_sigma_pairs, positive_float
from linear_nets.pipeline.config import SEED, VECTOR_LENGTH, SyntheticData, validate

FIGURES = {
    "losses": "squared, absolute and Huber loss with their likelihoods and derivatives",
    "normal": "normal densities for several (mean, std) pairs",
    "regression": "synthetic one-feature data with the closed-form least-squares line",
    "vectorization": "time of a Python for loop vs one vectorised addition",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `plot FIGURE [options] --out FILE`."""
    parser = subparsers.add_parser(
        "plot",
        help="draw one of the notes' figures into a PNG or SVG file",
        description="Draw one of the notes' figures: " + "; ".join(f"{k}: {v}" for k, v in FIGURES.items()) + ".",
    )
    parser.add_argument("figure", choices=list(FIGURES), help="which figure")
    parser.add_argument("--out", help="FILE.png or FILE.svg (no extension: both); default FIGURE.png")
    parser.add_argument("--huber-delta", type=positive_float, default=1.0, help="losses: Huber threshold δ (1.0)")
    parser.add_argument(
        "--mu-sigma",
        type=float_list,
        action="append",
        metavar="MU,SIGMA",
        help="normal: a (mean, std) pair; repeat for more (default: 0,1 0,2 3,1)",
    )
    parser.add_argument("--samples", type=int, default=200, help="regression: examples (200)")
    parser.add_argument("--noise", type=float, default=1.0, help="regression: noise std (1.0)")
    parser.add_argument("--seed", type=int, default=0, help="regression: random seed (0)")
    parser.add_argument("--n", type=int, default=10_000,
                        help=f"vectorization: vector length (10000, at most {VECTOR_LENGTH.high:,})")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check --out, draw the figure, write it atomically, print the path(s)."""
    from linear_nets import figures, plotting

    target = args.out or f"{args.figure}.png"
    plotting.figure_paths(target)  # fail on a bad --out before drawing anything
    if args.figure == "losses":
        fig = figures.losses_figure(delta=args.huber_delta)
    elif args.figure == "normal":
        fig = figures.normal_figure(mu_sigma_pairs(args.mu_sigma) if args.mu_sigma else figures.NORMAL_PARAMS)
    elif args.figure == "regression":  # one-feature synthetic data, fitted in closed form
        SEED.check(args.seed)  # checked before torch's import: a bad argument costs nothing
        data = validate(SyntheticData((2.0,), 4.2, args.samples, args.noise))  # its memory too
        import torch

        from linear_nets.closed_form import least_squares
        from linear_nets.data.synthetic import synthetic_data

        generator = torch.Generator().manual_seed(args.seed)
        X, y = synthetic_data(data.true_w, data.true_b, data.samples, noise=data.noise, generator=generator)
        w, b = least_squares(X, y)
        fig = figures.regression_figure(X, y, float(w[0]), float(b), data.true_w[0], data.true_b)
    else:
        VECTOR_LENGTH.check(args.n)
        import statistics

        from linear_nets.demonstrations import time_vector_addition

        runs = [time_vector_addition(args.n) for _ in range(5)]  # the median: one timing alone is mostly noise
        fig = figures.vectorization_figure({"for loop": statistics.median(r.loop_seconds for r in runs),
                                            "vectorised": statistics.median(r.vectorized_seconds for r in runs)})
    for path in plotting.save_figure(fig, target):
        print(path)
    return 0
