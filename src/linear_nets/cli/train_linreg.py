"""`linear-nets train linreg`: fit linear regression to synthetic data and compare with the truth (d2l 3.2, 3.3).

Generates y = Xw + b + ε from the true w and b, fits it with minibatch SGD (from scratch, with hand-derived
gradients, or concisely with torch.nn; any of the three losses) or by least squares (`--solver closed-form`: QR,
with the OLS summary a statistician reads; `normal-equations`: the book's formula), prints the training-set loss
after each epoch, then the estimated w and b and their errors (true minus estimated, as the book prints them). The
seed fixes the data, the initialisation and the shuffling, so the same command prints the same numbers. Every run
writes a run directory (`--out`, default `runs/linreg-<timestamp>`): config.json, metrics.csv/.jsonl,
curves.png/.svg (SGD), model.safetensors and summary.json with the estimates and their errors.

This module parses flags and prints; the fit itself (data-parallel least squares included) is `fit.fit_linreg`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from linear_nets.cli.common import add_train_arguments, read_table, standardize_tables, table_options
from linear_nets.pipeline.config import LEAST_SQUARES, LinregConfig, SyntheticData, add_arguments, from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `linreg` to the `train` group."""
    parser = subparsers.add_parser(
        "linreg", help="linear regression on synthetic data (d2l 3.2, 3.3)", description=__doc__.split("\n\n")[1]
    )
    add_arguments(parser, LinregConfig)
    add_arguments(parser.add_argument_group("synthetic data (d2l 3.2)"), SyntheticData)
    add_train_arguments(parser, run, resumable=False, tensorboard_help="also write TensorBoard events into the run "
                        "directory (the loss per epoch, the coefficients, the config)")  # fmt: skip


def _format(values: Any) -> str:
    return "[" + ", ".join(f"{v:.6f}" for v in values.tolist()) + "]"


def _book_loss(record: Any) -> float:
    """An epoch's loss over the whole training set where the fit measured it (in memory), else its minibatch mean."""
    return record.train_set_loss if record.train_set_loss is not None else record.train_loss


def _print_loss(record: Any) -> None:
    """The book's `epoch 1, loss 0.000219`."""
    print(f"epoch {record.epoch}, loss {_book_loss(record):f}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Generate the data (or read your table), fit, print the losses and the estimates (or the coefficients and the
    scores on the held-out rows), and record the run."""
    config = from_args(LinregConfig, standardize_tables(args, sgd=args.solver in (None, "sgd")))
    options = table_options(args)
    import torch

    from linear_nets.cli.common import check_tensorboard, data_parallel
    from linear_nets.pipeline.config import to_dict
    from linear_nets.pipeline.fit import fit_linreg
    from linear_nets.pipeline.recorder import open_run, start_run
    from linear_nets.pipeline.saved import synthetic_problem

    if args.tensorboard:  # before any work: a missing package is one line, and no run is left
        check_tensorboard()
    with data_parallel() as world:
        _, _, out = open_run("linreg", world, out=args.out)
        if world.launched and world.leader and config.solver == "sgd":
            print("linear-nets: note: under torchrun only the closed form is split; SGD fits the whole data on every "
                  "process", file=sys.stderr)  # fmt: skip
        if options is None:
            data = from_args(SyntheticData, args)  # checked (its memory too) before anything is drawn
            true_w, features, labels = synthetic_problem(data, config.seed)
            train, names, identity, given = (features, labels), None, {"synthetic": to_dict(data)}, {}
            print(f"linreg: {_method(config)}, {features.shape[0]} examples, {features.shape[1]} features")
        else:
            options = options.coding(config.solver in LEAST_SQUARES and not config.no_intercept)
            dtype = torch.float64 if config.solver in LEAST_SQUARES else torch.float32  # the file's values, unrounded
            table = read_table(options, "regression", config, dtype)
            spec, identity, given = table.spec, table.record(), {"table": options.to_dict()}
            train, names, rows = table, spec.feature_names, "streamed"
            if not options.stream:
                train = table.train
                rows = f"{len(train[1])} train / {0 if table.test is None else len(table.test[1])} test rows"
                if config.solver == "sgd" and len(train[1]) < spec.num_features:
                    print(f"linear-nets: warning: {len(train[1])} training rows for {spec.num_features} features: "
                          "SGD finds one of many exact fits; the closed form returns the minimum-norm one",
                          file=sys.stderr)  # fmt: skip
            print(f"linreg on {options.data} (target {options.target}): {_method(config)}, {rows}, "
                  f"{spec.num_features} features")  # fmt: skip
        recorder = start_run("linreg", config, identity, given, out, world)
        with recorder.removed_on_error():  # e.g. diverged: no half-recorded run is left behind
            result = fit_linreg(config, train, [_print_loss, recorder], world=world, names=names)
        if not world.leader:  # rank 0 reports and records
            return 0
        for message in result.warnings:  # one plain line, not Python's two-line warning with a source excerpt
            print(f"linear-nets: warning: {message}", file=sys.stderr)
        if options is None:
            summary = _estimates(result, data, true_w)
        else:
            summary = _scores(result, options, table, dtype, recorder)
        _finish(recorder, result, summary, args.tensorboard, names, curves=options is None)
    return 0


def _estimates(result: Any, data: SyntheticData, true_w: Any) -> dict[str, Any]:
    """Print the estimated w and b and their errors (true minus estimated, as the book prints them)."""
    import torch

    w, b = result.w, result.b.item()
    residual = true_w.to(torch.float64) - w
    if result.ols is not None:
        print(result.ols.summary())
    print(f"estimated w: {_format(w)}")
    print(f"estimated b: {b:.6f}")
    print(f"error in estimating w: {_format(residual)}")
    print(f"error in estimating b: {data.true_b - b:.6f}")
    return {"estimated_w": w.tolist(), "estimated_b": b, "error_w": residual.tolist(), "error_b": data.true_b - b}


def _scores(result: Any, options: Any, table: Any, dtype: Any, recorder: Any) -> dict[str, Any]:
    """Print the coefficients by feature name and the MSE (and R²) on the training and the held-out rows."""
    from linear_nets.pipeline.tables import RegressionScores, regression_scores

    if options.stream:
        with recorder.removed_on_error():  # a bad value in the test rows, read for the first time here
            # Least squares knows its training MSE (SSR / n): no pass over a large file for it, nor without test rows
            train_scores = (RegressionScores(result.ols.ssr / result.ols.nobs, result.ols.rsquared, result.ols.nobs)
                            if result.ols is not None else
                            regression_scores(table.batches("train", 1 << 16, shuffle=False, dtype=dtype), result.w,
                                              result.b))  # fmt: skip
            test = table.batches("test", 1 << 16, shuffle=False, dtype=dtype) if table.has_test else []
            test_scores = regression_scores(test, result.w, result.b)
    else:
        train_scores = regression_scores([table.train], result.w, result.b)
        test_scores = regression_scores([table.test] if table.test is not None else [], result.w, result.b)
    coefficients = dict(zip(table.spec.feature_names, result.w.tolist(), strict=True))
    if result.ols is not None:
        print(result.ols.summary(options.target))
    else:
        width = max(len(name) for name in [*coefficients, "intercept"])
        for name, value in coefficients.items():
            print(f"{name:<{width}}  {value: .6g}")
        print(f"{'intercept':<{width}}  {result.b.item(): .6g}")
    tested = f"; test MSE {test_scores.mse:.6g}, R² {test_scores.r2:.4f} ({test_scores.rows} rows)"
    print(f"train MSE {train_scores.mse:.6g} ({train_scores.rows} rows){tested if test_scores.rows else ''}")
    return {"coefficients": coefficients, "intercept": result.b.item(), "train_mse": train_scores.mse,
            "test_mse": test_scores.mse, "test_r2": test_scores.r2, "train_rows": train_scores.rows,
            "test_rows": test_scores.rows}  # fmt: skip


def _finish(recorder: Any, result: Any, summary: dict, tensorboard: bool, names: list[str] | None, *,
            curves: bool) -> None:  # fmt: skip
    """Write the loss curve (`curves`: synthetic data, when SGD ran epochs), the model (for least squares with the
    covariance prediction intervals need), summary.json (NaN as null) and with `--tensorboard` the events; print where
    they are."""
    import torch

    config, history, run_dir = result.config, result.history, recorder.run
    with recorder.removed_on_error():  # e.g. the disk is full: no run without its model and summary
        if curves and history.epochs:
            from linear_nets.plotting import plot, pyplot, save_figure

            losses = [_book_loss(record) for record in history.epochs]
            axes = plot(history.column("epoch"), [losses], xlabel="epoch", ylabel=f"{config.loss} loss", yscale="log")
            save_figure(axes.figure, run_dir.path / "curves")
            pyplot().close(axes.figure)
        summary = summary | {"final_train_loss": _book_loss(history.epochs[-1]) if history.epochs else None}
        summary |= {} if result.ols is None else result.ols.to_json()
        summary = {k: (None if isinstance(v, float) and v != v else v) for k, v in summary.items()}
        tensors = {"w": result.w, "b": result.b.reshape(())}
        meta: dict[str, Any] = {"model": "linreg", "solver": config.solver, "impl": config.impl}
        if names is not None:
            meta["features"] = names
        if result.ols is not None:
            tensors["cov"] = torch.from_numpy(result.ols.cov_params.copy())
            meta |= {"fit_intercept": not config.no_intercept, "df_resid": result.ols.df_resid,
                     "scale": result.ols.scale, "use_t": result.ols.use_t, "cov_type": config.cov}  # fmt: skip
        summary = recorder.finish(tensors, summary, meta)
        if tensorboard:
            from linear_nets.pipeline.tensorboard import log_linreg

            log_linreg(run_dir.path / "tensorboard", result, summary)
    print(f"run directory: {run_dir.path}")


def _method(config: LinregConfig) -> str:
    """What the command says it computes, truthfully."""
    if config.solver == "sgd":
        return f"{config.impl}, {config.loss} loss, SGD lr {config.lr} batch {config.batch_size}"
    solver = "QR, float64" if config.solver == "closed-form" else "the normal equations (AᵀA)⁻¹Aᵀy, float64"
    intercept = ", no intercept" if config.no_intercept else ""
    return f"least squares ({solver}{intercept})"
