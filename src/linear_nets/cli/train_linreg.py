"""`linear-nets train linreg`: fit linear regression to synthetic data and compare with the truth (d2l 3.2, 3.3).

Generates y = Xw + b + ε from the true w and b, fits it with minibatch SGD (from scratch, with hand-derived
gradients, or concisely with torch.nn; any of the three losses) or by least squares (`--solver closed-form`: QR,
with the OLS summary a statistician reads; `normal-equations`: the book's formula), prints the training-set loss
after each epoch, then the estimated w and b and their errors (true minus estimated, as the book prints them). The
seed fixes the data, the initialisation and the shuffling, so the same command prints the same numbers. Every run
writes a run directory (`--out`, default `runs/linreg-<timestamp>`): config.json, metrics.csv/.jsonl,
curves.png/.svg (SGD), model.safetensors and summary.json with the estimates and their errors.

Under torchrun least squares is data-parallel (each process folds its share of the rows into a triangular factor;
the factors are combined); SGD runs whole on every process. Rank 0 prints and writes the run directory.

This module parses flags and prints; the fit itself is `linear_nets.pipeline.fit.fit_linreg`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from linear_nets.cli.common import add_run_arguments, add_table_arguments, standardize_tables, table_options
from linear_nets.pipeline.config import LEAST_SQUARES, LinregConfig, SyntheticData, add_arguments, from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `linreg` to the `train` group."""
    parser = subparsers.add_parser(
        "linreg", help="linear regression on synthetic data (d2l 3.2, 3.3)", description=__doc__.split("\n\n")[1]
    )
    add_arguments(parser, LinregConfig)
    add_arguments(parser.add_argument_group("synthetic data (d2l 3.2)"), SyntheticData)
    add_table_arguments(parser)
    add_run_arguments(parser, resumable=False)
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write TensorBoard events into the run directory (the loss per epoch, the "
                             "coefficients, the config); needs pip install 'linear-nets[tensorboard]'")  # fmt: skip
    parser.set_defaults(func=run)


def _format(values: Any) -> str:
    return "[" + ", ".join(f"{v:.6f}" for v in values.tolist()) + "]"


def _book_loss(record: Any) -> float:
    """An epoch's loss over the whole training set where the fit measured it (in memory), else its minibatch mean."""
    return record.train_set_loss if record.train_set_loss is not None else record.train_loss


def _print_loss(record: Any) -> None:
    """The book's `epoch 1, loss 0.000219`."""
    print(f"epoch {record.epoch}, loss {_book_loss(record):f}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Generate the data (or read your table), fit, print the losses and the estimates, and record the run."""
    config = from_args(LinregConfig, standardize_tables(args, sgd=args.solver in (None, "sgd")))
    options = table_options(args)
    from linear_nets.cli.common import data_parallel
    from linear_nets.pipeline.recorder import open_run

    if args.tensorboard:  # before any work: a missing package is one line, and no run is left
        from linear_nets.cli.common import check_tensorboard

        check_tensorboard()

    with data_parallel() as world:
        _, _, out = open_run("linreg", world, out=args.out)
        if world.launched and world.leader and config.solver == "sgd":
            print("linear-nets: note: under torchrun only the closed form is split; SGD fits the whole data on every "
                  "process", file=sys.stderr)  # fmt: skip
        if options is not None:
            return run_table(config, options, out, world, args.tensorboard)
        return _run_synthetic(config, args, out, world)


def _run_synthetic(config: LinregConfig, args: argparse.Namespace, out: str | None, world: Any) -> int:
    import torch

    from linear_nets.pipeline.config import to_dict
    from linear_nets.pipeline.fit import fit_linreg
    from linear_nets.pipeline.recorder import start_run
    from linear_nets.pipeline.saved import synthetic_problem

    data = from_args(SyntheticData, args)  # checked (its memory too) before anything is drawn
    true_w, features, labels = synthetic_problem(data, config.seed)
    recorder = start_run("linreg", config, {"synthetic": to_dict(data)}, {}, out, world)
    n, d = features.shape
    print(f"linreg: {_method(config)}, {n} examples, {d} features")
    with recorder.removed_on_error():  # e.g. diverged: no half-recorded run is left behind
        result = fit_linreg(config, (features, labels), [_print_loss, recorder], world=world)
    if not world.leader:  # rank 0 reports and records
        return 0
    for message in result.warnings:  # one plain line, not Python's two-line warning with a source excerpt
        print(f"linear-nets: warning: {message}", file=sys.stderr)
    w, b = result.w, result.b
    residual = true_w.to(torch.float64) - w
    if result.ols is not None:
        print(result.ols.summary())
    print(f"estimated w: {_format(w)}")
    print(f"estimated b: {b.item():.6f}")
    print(f"error in estimating w: {_format(residual)}")
    print(f"error in estimating b: {data.true_b - b.item():.6f}")
    summary = {"estimated_w": w.tolist(), "estimated_b": b.item(), "error_w": residual.tolist(),
               "error_b": data.true_b - b.item()}  # fmt: skip
    _finish(recorder, result, summary, args.tensorboard, curves=True)
    return 0


def _finish(
    recorder: Any, result: Any, summary: dict, tensorboard: bool, names: list[str] | None = None, curves: bool = False
) -> None:
    """Write the loss curve (`curves`, when SGD ran epochs), the model (its feature `names`) and summary.json through
    the run's recorder, and with `--tensorboard` the fit's events (`pipeline.tensorboard.log_linreg`); print where
    they are. The summary gets the loss, epochs and wall time the recorder adds and the least-squares statistics
    (`ols.OLSResult.to_json`); NaN is written as null."""
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
        tensors, meta = _model(result, names)
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


def _model(result: Any, features: list[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """model.safetensors' tensors and description: w, b and, for least squares, the covariance of (w, b) that
    prediction intervals need."""
    import torch

    config = result.config
    tensors = {"w": result.w, "b": result.b.reshape(())}
    meta: dict[str, Any] = {"model": "linreg", "solver": config.solver, "impl": config.impl}
    if features is not None:
        meta["features"] = features
    if result.ols is not None:
        tensors["cov"] = torch.from_numpy(result.ols.cov_params.copy())
        meta |= {"fit_intercept": not config.no_intercept, "df_resid": result.ols.df_resid,
                 "scale": result.ols.scale, "use_t": result.ols.use_t, "cov_type": config.cov}  # fmt: skip
    return tensors, meta


def run_table(config: LinregConfig, options: Any, out: str | None, world: Any, tensorboard: bool = False) -> int:
    """Linear regression on your own table: coefficients by feature name, MSE and R² on the held-out rows."""
    import torch

    from linear_nets.pipeline.fit import check_streamable, fit_linreg
    from linear_nets.pipeline.recorder import start_run
    from linear_nets.pipeline.tables import RegressionScores, StreamedTable, load_in_memory, regression_scores

    options = options.coding(config.solver in LEAST_SQUARES and not config.no_intercept)
    if options.stream:
        check_streamable(config)  # before the table is read
        table = StreamedTable(options, config.seed)
        spec, record, train_data = table.spec, table.record(), table
        rows = "streamed"
    else:
        dtype = torch.float64 if config.solver in LEAST_SQUARES else torch.float32  # the file's values, unrounded
        data = load_in_memory(options, "regression", config.seed, dtype=dtype)
        spec, record, train_data = data.spec, data.record(), data.train
        rows = f"{len(data.train[1])} train / {0 if data.test is None else len(data.test[1])} test rows"
        if data.rows_dropped:
            print(f"dropped {data.rows_dropped} rows with a missing value (--drop-missing)")
        if config.solver == "sgd" and len(data.train[1]) < spec.num_features:
            print(f"linear-nets: warning: {len(data.train[1])} training rows for {spec.num_features} features: "
                  "SGD finds one of many exact fits; the closed form returns the minimum-norm one", file=sys.stderr)
    print(f"linreg on {options.data} (target {options.target}): {_method(config)}, {rows}, "
          f"{spec.num_features} features")  # fmt: skip
    recorder = start_run("linreg", config, record, {"table": options.to_dict()}, out, world)
    with recorder.removed_on_error():
        result = fit_linreg(config, train_data, [_print_loss, recorder], world=world, names=spec.feature_names)
    if not world.leader:
        return 0
    for message in result.warnings:
        print(f"linear-nets: warning: {message}", file=sys.stderr)
    if options.stream:
        with recorder.removed_on_error():  # a bad value in the test rows, read for the first time here
            dtype = torch.float64 if config.solver in LEAST_SQUARES else torch.float32
            # Least squares knows its training rows' mean squared error (SSR / n): no pass over them; and a run
            # without test rows reads nothing more. Each pass over a large file costs about one read of it.
            train_scores = (RegressionScores(result.ols.ssr / result.ols.nobs, result.ols.rsquared, result.ols.nobs)
                            if result.ols is not None else
                            regression_scores(table.batches("train", 1 << 16, shuffle=False, dtype=dtype), result.w,
                                              result.b))  # fmt: skip
            test = table.batches("test", 1 << 16, shuffle=False, dtype=dtype) if table.has_test else []
            test_scores = regression_scores(test, result.w, result.b)
    else:
        train_scores = regression_scores([data.train], result.w, result.b)
        test_scores = regression_scores([data.test] if data.test is not None else [], result.w, result.b)
    coefficients = dict(zip(spec.feature_names, result.w.tolist(), strict=True))
    if result.ols is not None:
        print(result.ols.summary(options.target))
    else:
        width = max(len(name) for name in [*coefficients, "intercept"])
        for name, value in coefficients.items():
            print(f"{name:<{width}}  {value: .6g}")
        print(f"{'intercept':<{width}}  {result.b.item(): .6g}")
    tested = f"; test MSE {test_scores.mse:.6g}, R² {test_scores.r2:.4f} ({test_scores.rows} rows)"
    print(f"train MSE {train_scores.mse:.6g} ({train_scores.rows} rows){tested if test_scores.rows else ''}")
    summary = {
        "coefficients": coefficients,
        "intercept": result.b.item(),
        "train_mse": train_scores.mse,
        "test_mse": test_scores.mse,
        "test_r2": test_scores.r2,
        "train_rows": train_scores.rows,
        "test_rows": test_scores.rows,
    }
    _finish(recorder, result, summary, tensorboard, spec.feature_names)
    return 0
